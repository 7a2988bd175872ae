"""Training-length study (issue #18): SDR against epochs for baselines and cleaned sets.

    python -m stages.tools.length_study --epochs 5 10 20 30 --seeds 0 1 \
        --condition mixed23/contaminated=data/lists/mixed23/contaminated.json \
        --condition mixed23/clean_only=data/lists/mixed23/clean_only.json \
        --condition mixed23/unlearn_r0.5=data/filtered/mixed23/unified/unlearn/r0.5.json \
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

from pathlib import Path

from ..lib.cli import check_paths, exit_on_user_error, resolve_params, setup_logging, stage_parser
from ..lib.evaluation import EvalParams
from ..lib.io import output_folder
from ..lib.lengths import (
    KEY,
    check_epochs,
    check_study,
    compare_committed,
    length_report,
    parse_conditions,
    read_conditions,
    score_snapshots,
    snapshot_jobs,
    snapshot_keys,
    sync_keys,
    train_snapshots,
    write_study,
)
from ..lib.params import load_base, load_runtime, load_section, select_device
from ..lib.readers import iter_folder_dataset, list_track_folders
from ..lib.songs import song_digest
from ..lib.unmix import TrainParams


def run(argv: list[str] | None = None) -> None:
    parser = stage_parser("tools.length_study", __doc__ or "", progress=True)
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
    conditions = parse_conditions(args.condition)
    check_study(args.seeds, evaluation, args.committed)
    check_paths(args, parser, {f"--condition {c}": p for c, p in conditions.items()})
    epochs = check_epochs(args.epochs, params, runtime.device)
    valid = tuple(str(p) for p in list_track_folders(args.valid))
    lists = read_conditions(conditions, params, base.sample_rate)
    check_paths(args, parser, {f"--condition {c}[{i}]": Path(f)
                               for c, songs in lists.items()
                               for i, f in enumerate(songs.all_folders())})
    test = [song_digest(p) for p in list_track_folders(args.test)]  # the test songs by content
    work = output_folder(args.work)
    sync_keys(work, snapshot_keys(lists, valid, args.seeds, params, evaluation, test,
                                  base.sample_rate, runtime))

    jobs = snapshot_jobs(conditions, args.seeds, valid, epochs, params, base.sample_rate, runtime,
                         work)
    train_snapshots(jobs, runtime.workers, args.quiet)

    tracks = list(iter_folder_dataset(args.test, base.sample_rate))
    runs = score_snapshots(work, list(conditions), epochs, args.seeds, params, evaluation, tracks,
                           base.sample_rate, select_device(runtime.device), runtime.workers)
    identical = ({} if args.committed is None or params.epochs not in epochs else
                 compare_committed(work, args.committed, list(conditions), args.seeds,
                                   params.epochs))
    report = length_report(runs, epochs, "contaminated", KEY, identical)
    write_study(args.out, runs, epochs, args.seeds, conditions, report)
    print(report)


def main(argv: list[str] | None = None) -> None:
    """Entry point."""
    exit_on_user_error("length_study", run, argv)


if __name__ == "__main__":
    main()
