"""Stage ``evaluate``: separate the test songs with every seed's model of a condition and score
SDR (one stage per condition: the test songs, the scoring workers and the start-up are shared).

    python -m stages.evaluate --models data/models/mixed23/contaminated --seeds-from base.seeds \
        --test data/rendered/test --scores data/eval/mixed23/contaminated.json \
        --metrics metrics/runs/mixed23/contaminated.json
    python -m stages.evaluate --trivial --test data/rendered/test \
        --scores data/eval/trivial.json --metrics metrics/trivial.json

``--models`` holds one model folder ``seed<k>`` per ``k`` of the params list ``--seeds-from``
(``base.seeds``, or the random control's ``cleaning.random_draws``: draw ``d`` trains with seed
``d``). The outputs hold one entry ``seed<k>`` per model: per-song scores and the run's metrics.
"""

from __future__ import annotations

import logging
from pathlib import Path

from tqdm import tqdm

from .lib.cleaning import CleaningParams
from .lib.cli import exit_on_user_error, resolve_params, setup_logging, stage_parser, timed
from .lib.evaluation import EvalParams, check_model_folder, score_models, summarize
from .lib.io import write_json
from .lib.params import load_base, load_runtime, load_section
from .lib.readers import iter_folder_dataset, list_track_folders
from .lib.unmix import select_device

log = logging.getLogger("stages.evaluate")

SEED_LISTS = ("base.seeds", "cleaning.random_draws")


def _seeds(params: Path, key: str) -> tuple[int, ...]:
    """The numbers ``k`` of the model folders ``seed<k>``: the params list ``key``."""
    if key == "cleaning.random_draws":
        return load_section(params, "cleaning", CleaningParams).random_draws
    return load_base(params).seeds


def run(argv: list[str] | None = None) -> None:
    """Write per-song scores (``--scores``) and the small metrics JSON (``--metrics``)."""
    parser = stage_parser("evaluate", __doc__ or "", cost=True, progress=True)
    parser.add_input("--models", help="folder of trained model folders seed<k>")
    parser.add_argument("--seeds-from", choices=SEED_LISTS,
                        help="params list numbering the model folders (with --models)")
    parser.add_argument("--trivial", action="store_true",
                        help="score the mixture itself as every stem's estimate (lower bound)")
    parser.add_input("--test", required=True)
    parser.add_output("--scores", required=True)
    parser.add_output("--metrics", required=True)
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    base = load_base(resolve_params(args))
    params = load_section(args.params, "evaluate", EvalParams)
    runtime = load_runtime(args.params)
    if args.trivial == (args.models is not None):
        raise ValueError("give exactly one of --models or --trivial")
    if (args.models is not None) != (args.seeds_from is not None):
        raise ValueError("--models goes with --seeds-from (which params list numbers its "
                         "seed<k> folders), --trivial without it")
    runs = ({"trivial": None} if args.trivial else
            {f"seed{k}": args.models / f"seed{k}" for k in _seeds(args.params, args.seeds_from)})
    if not runs:
        raise ValueError(f"{args.seeds_from}: an empty list: no model to evaluate")
    for folder in runs.values():
        if folder is not None:
            check_model_folder(folder)
    device = select_device(runtime.device)

    with timed(args.cost, "evaluate", models=len(runs)):
        n = len(list_track_folders(args.test))

        def tracks(name: str):  # read again for each model: memory is one model's songs
            return tqdm(iter_folder_dataset(args.test, base.sample_rate), total=n,
                        desc=f"separate {name}", unit="song", disable=args.quiet)

        rows = dict(zip(runs, score_models(list(runs.values()), tracks, list(runs), params,
                                           base.sample_rate, device, runtime.workers),
                        strict=True))
        if args.trivial:
            write_json(args.scores, {"songs": rows["trivial"]})
            write_json(args.metrics, summarize(rows["trivial"]))
        else:
            write_json(args.scores, {name: {"songs": r} for name, r in rows.items()})
            write_json(args.metrics, {name: summarize(r) for name, r in rows.items()})


def main(argv: list[str] | None = None) -> None:
    """Entry point."""
    exit_on_user_error("evaluate", run, argv)


if __name__ == "__main__":
    main()
