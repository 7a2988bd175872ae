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
import os
import re
from pathlib import Path

import numpy as np
from tqdm import tqdm

from .lib.cli import check_paths, exit_on_user_error, resolve_params, setup_logging, stage_parser
from .lib.data import SongList, SongTable, song_digest
from .lib.evaluation import EvalParams
from .lib.io import atomic_path, dumps_json, output_folder
from .lib.lengths import (
    SnapshotJob,
    check_epochs,
    compare_committed,
    length_report,
    run_snapshot_job,
    score_snapshots,
    sync_keys,
)
from .lib.params import (
    TARGETS,
    ParamsError,
    RuntimeParams,
    as_plain,
    load_base,
    load_runtime,
    load_section,
    select_device,
)
from .lib.plots import save_png
from .lib.readers import iter_folder_dataset, list_track_folders
from .lib.unmix import TrainParams, check_song_lengths, die_with_parent, loading, training_key

log = logging.getLogger("stages.length_study")
KEY = "museval_sdr_db_avg"


NAME = re.compile(r"[A-Za-z0-9_.-]+")


def _conditions(specs: list[str]) -> dict[str, Path]:
    """``<dataset>/<name>=<song-list.json>`` specs; names become folders under ``--work``."""
    out: dict[str, Path] = {}
    for spec in specs:
        name, sep, path = spec.partition("=")
        parts = name.split("/")
        if (not sep or not path or len(parts) != 2
                or not all(NAME.fullmatch(p) and p not in (".", "..") for p in parts)):
            raise ParamsError(f"--condition {spec!r}: expected <dataset>/<name>=<song-list.json> "
                              "(names of letters, digits, '_', '-', '.')")
        if name in out:
            raise ParamsError(f"--condition {name}: given twice")
        out[name] = Path(path)
    return out


def _check_inputs(conditions: dict[str, Path], params: TrainParams,
                  sample_rate: int) -> dict[str, SongList]:
    """Every song list, song and stem readable and long enough: found now, not after hours."""
    lists = {}
    for name, path in conditions.items():
        try:
            lists[name] = SongList.read(path)
            table = SongTable.open(lists[name].all_folders(), sample_rate)
            check_song_lengths(table, np.arange(len(table)), params.model.n_fft)
        except (OSError, ValueError) as err:
            raise ParamsError(f"--condition {name}: {err}") from err
    return lists


def _keys(conditions: dict[str, SongList], valid: tuple[str, ...], seeds: list[int],
          params: TrainParams, evaluation: EvalParams, test: list[str], base_rate: int,
          runtime: RuntimeParams) -> dict[tuple[str, int], dict]:
    """What each (condition, seed) folder's snapshots and scores depend on."""
    return {(c, s): {"training": training_key(songs.songs, valid, params, s, base_rate,
                                              runtime.device, runtime.worker_threads),
                     "evaluate": as_plain(evaluation), "test": test}
            for c, songs in conditions.items() for s in seeds}


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
    if len(set(args.seeds)) != len(args.seeds):
        raise ParamsError(f"--seeds {args.seeds}: a seed given twice")
    if not evaluation.museval:
        raise ParamsError("evaluate.museval: the length study reports museval SDR; set it to true")
    if args.committed is not None and not args.committed.is_dir():
        raise ParamsError(f"--committed {args.committed}: not a folder")
    check_paths(args, parser, {f"--condition {c}": p for c, p in conditions.items()})
    epochs = check_epochs(args.epochs, params, runtime.device)
    valid = tuple(str(p) for p in list_track_folders(args.valid))
    lists = _check_inputs(conditions, params, base.sample_rate)
    check_paths(args, parser, {f"--condition {c}[{i}]": Path(f)
                               for c, songs in lists.items()
                               for i, f in enumerate(songs.all_folders())})
    test = [song_digest(p) for p in list_track_folders(args.test)]  # the test songs by content
    work = output_folder(args.work)
    sync_keys(work, _keys(lists, valid, args.seeds, params, evaluation, test, base.sample_rate,
                          runtime))

    jobs = [SnapshotJob(condition=c, songs=songs, valid=valid, target=t, seed=s, epochs=epochs,
                        params=params, sample_rate=base.sample_rate,
                        threads=runtime.worker_threads, device=runtime.device,
                        loading=loading(runtime), work=work)
            for c, songs in conditions.items() for s in args.seeds for t in TARGETS]
    todo = [j for j in jobs if not all(j.snapshot(e).is_file() for e in epochs)]
    log.info("length study: %d conditions x %d seeds x %d targets, %d models to train (%d epochs "
             "each, saved at %s)", len(conditions), len(args.seeds), len(TARGETS), len(todo),
             epochs[-1], list(epochs))
    context = multiprocessing.get_context("spawn")
    with context.Pool(max(1, runtime.workers), initializer=die_with_parent,
                      initargs=(os.getpid(),)) as pool:
        for _ in tqdm(pool.imap_unordered(run_snapshot_job, todo), total=len(todo),
                      desc="train", unit="model", disable=args.quiet):
            pass

    tracks = list(iter_folder_dataset(args.test, base.sample_rate))
    runs = score_snapshots(work, list(conditions), epochs, args.seeds, params, evaluation, tracks,
                           base.sample_rate, select_device(runtime.device), runtime.workers)
    identical = ({} if args.committed is None or params.epochs not in epochs else
                 compare_committed(work, args.committed, list(conditions), args.seeds,
                                   params.epochs))
    report = length_report(runs, epochs, "contaminated", KEY, identical)
    with atomic_path(args.out) as tmp:
        tmp.mkdir()
        (tmp / "length.json").write_text(dumps_json(
            {"epochs": list(epochs), "seeds": args.seeds, "metric": KEY,
             "conditions": {c: str(p) for c, p in conditions.items()},
             "runs": {c: {str(e): {str(s): m for s, m in r.items()} for e, r in by.items()}
                      for c, by in runs.items()}}))
        (tmp / "report.md").write_text(report)
        save_png(tmp / "sdr_vs_epochs.png", lambda ax: _plot(ax, runs, epochs))
    print(report)


def _plot(ax, runs: dict, epochs: tuple[int, ...]) -> None:  # noqa: ANN001
    from matplotlib.ticker import NullFormatter

    datasets = sorted({c.split("/")[0] for c in runs})
    styles = dict(zip(datasets, ("-", "--", ":", "-."), strict=False))
    for condition, by_epoch in runs.items():
        means = [np.mean([m[KEY] for m in by_epoch[e].values() if m.get(KEY) is not None])
                 for e in epochs]
        ax.plot(epochs, means, marker="o", linestyle=styles.get(condition.split("/")[0], "-"),
                label=condition)
    ax.set(xlabel="epochs (log scale)", ylabel="museval SDR avg (dB), mean over seeds",
           xscale="log", xticks=list(epochs), xticklabels=[str(e) for e in epochs])
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.legend(fontsize=7)


def main(argv: list[str] | None = None) -> None:
    """Entry point."""
    exit_on_user_error("length_study", run, argv)


if __name__ == "__main__":
    main()
