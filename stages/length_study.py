"""Training-length study (issue #18): SDR against epochs for baselines and cleaned sets.

    python -m stages.length_study --epochs 5 10 20 30 --seeds 0 1 \
        --condition mixed23/contaminated=data/lists/mixed23/contaminated.json \
        --condition mixed23/clean_only=data/lists/mixed23/clean_only.json \
        --condition mixed23/unlearn_r0.5=data/filtered/mixed23/unlearn/r0.5.json \
        --valid data/rendered/reference --test data/rendered/test \
        --committed data/models --work data/length_study --out metrics/studies/length

Each (condition, seed, target) model trains once, to the largest epoch count, and is saved at each
smaller one (the best-validation weights so far: what a run of that length keeps; see
``stages/lib/lengths.py``). The cleaned sets are the default's filtered lists, chosen from the
10-epoch baselines' scores. ``--work`` keeps the snapshots, so an interrupted study resumes.
``--committed`` (optional): the default's model folder root; the snapshot at
``train.epochs`` is compared bit for bit with ``<committed>/<condition>/seed<k>``.
Outputs: ``length.json`` (metrics per condition, epochs, seed), ``report.md``, ``sdr_vs_epochs.png``.
"""

from __future__ import annotations

import logging
import multiprocessing
from pathlib import Path

from tqdm import tqdm

from .lib.cli import exit_on_user_error, resolve_params, setup_logging, stage_parser
from .lib.evaluation import EvalParams, load_separator, score_tracks, summarize
from .lib.io import atomic_path, dumps_json, output_folder, read_json
from .lib.lengths import (
    SnapshotJob,
    check_epochs,
    length_report,
    run_snapshot_job,
    same_weights,
    write_model_json,
)
from .lib.params import TARGETS, ParamsError, load_base, load_runtime, load_section, select_device
from .lib.plots import save_png
from .lib.readers import iter_folder_dataset, list_track_folders
from .lib.unmix import TrainParams

log = logging.getLogger("stages.length_study")
KEY = "museval_sdr_db_avg"


def _conditions(specs: list[str]) -> dict[str, Path]:
    out = {}
    for spec in specs:
        name, sep, path = spec.partition("=")
        if not sep or name.count("/") != 1 or not path:
            raise ParamsError(f"--condition {spec!r}: expected <dataset>/<name>=<song-list.json>")
        if not Path(path).is_file():
            raise ParamsError(f"--condition {name}: {path}: song list not found")
        out[name] = Path(path)
    return out


def run(argv: list[str] | None = None) -> None:
    parser = stage_parser("length_study", __doc__ or "", progress=True)
    parser.add_argument("--condition", action="append", required=True,
                        help="<dataset>/<name>=<song-list.json> (repeatable; the baseline is "
                        "<dataset>/contaminated)")
    parser.add_argument("--epochs", type=int, nargs="+", required=True)
    parser.add_argument("--seeds", type=int, nargs="+", required=True)
    parser.add_input("--valid", required=True)
    parser.add_input("--test", required=True)
    parser.add_input("--committed", help="the default's model root (optional)")
    parser.add_output("--work", folder=True, required=True)
    parser.add_output("--out", folder=True, required=True)
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    base = load_base(resolve_params(args))
    params = load_section(args.params, "train", TrainParams)
    evaluation = load_section(args.params, "evaluate", EvalParams)
    runtime = load_runtime(args.params)
    conditions = _conditions(args.condition)
    epochs = check_epochs(args.epochs, params)
    valid = tuple(str(p) for p in list_track_folders(args.valid))
    list_track_folders(args.test)  # a bad test folder fails now, not after hours of training
    work = output_folder(args.work)

    jobs = [SnapshotJob(condition=c, songs=songs, valid=valid, target=t, seed=s, epochs=epochs,
                        params=params, sample_rate=base.sample_rate,
                        threads=runtime.worker_threads, device=runtime.device, work=work)
            for c, songs in conditions.items() for s in args.seeds for t in TARGETS]
    todo = [j for j in jobs if not all(j.snapshot(e).is_file() for e in epochs)]
    log.info("length study: %d conditions x %d seeds x %d targets, %d models to train (%d epochs "
             "each, saved at %s)", len(conditions), len(args.seeds), len(TARGETS), len(todo),
             epochs[-1], list(epochs))
    with multiprocessing.get_context("spawn").Pool(max(1, runtime.workers)) as pool:
        for _ in tqdm(pool.imap_unordered(run_snapshot_job, todo), total=len(todo),
                      desc="train", unit="model", disable=args.quiet):
            pass

    runs: dict[str, dict[int, dict[int, dict]]] = {}
    device = select_device(runtime.device)
    test = list(iter_folder_dataset(args.test, base.sample_rate))
    for condition in conditions:
        for epoch in epochs:
            for seed in args.seeds:
                folder = work / condition / f"seed{seed}" / f"e{epoch}"
                metrics = folder / "metrics.json"
                if not metrics.is_file():
                    write_model_json(folder, params, base.sample_rate)
                    separator = load_separator(folder, evaluation.niter,
                                               evaluation.wiener_win_len, device)
                    rows = score_tracks(test, separator, evaluation, base.sample_rate, device,
                                        runtime.workers)
                    metrics.write_text(dumps_json(summarize(rows)))
                runs.setdefault(condition, {}).setdefault(epoch, {})[seed] = read_json(metrics)
    identical = {}
    if args.committed is not None and params.epochs in epochs:
        for condition in conditions:
            for seed in args.seeds:
                committed = args.committed / condition / f"seed{seed}"
                if committed.is_dir():
                    identical[f"{condition} seed {seed}, {params.epochs} epochs"] = same_weights(
                        work / condition / f"seed{seed}" / f"e{params.epochs}", committed, TARGETS)
    report = length_report(runs, epochs, "contaminated", KEY, identical)
    with atomic_path(args.out) as tmp:
        tmp.mkdir()
        (tmp / "length.json").write_text(dumps_json(
            {"epochs": list(epochs), "seeds": args.seeds, "metric": KEY,
             "conditions": {c: str(p) for c, p in conditions.items()},
             "runs": {c: {str(e): {str(s): m for s, m in r.items()} for e, r in by.items()}
                      for c, by in runs.items()}}))
        (tmp / "report.md").write_text(report)
        save_png(tmp / "sdr_vs_epochs.png", lambda fig: _plot(fig, runs, epochs))
    print(report)


def _plot(ax, runs: dict, epochs: tuple[int, ...]) -> None:  # noqa: ANN001
    import numpy as np

    datasets = sorted({c.split("/")[0] for c in runs})
    styles = dict(zip(datasets, ("-", "--", ":", "-."), strict=False))
    for condition, by_epoch in runs.items():
        means = [np.mean([m[KEY] for m in by_epoch[e].values()]) for e in epochs]
        ax.plot(epochs, means, marker="o", linestyle=styles.get(condition.split("/")[0], "-"),
                label=condition)
    ax.set(xlabel="epochs (log scale)", ylabel="museval SDR avg (dB), mean over seeds",
           xscale="log", xticks=list(epochs), xticklabels=[str(e) for e in epochs])
    ax.legend(fontsize=7)


def main(argv: list[str] | None = None) -> None:
    """Entry point."""
    exit_on_user_error("length_study", run, argv)


if __name__ == "__main__":
    main()
