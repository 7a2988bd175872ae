"""Stage ``evaluate``: separate the test songs with a trained model folder and score SDR.

    python -m stages.evaluate --models data/models/mixed23/contaminated/seed0 \
        --test data/rendered/test --scores data/eval/.../seed0.json \
        --metrics metrics/runs/mixed23/contaminated/seed0.json
"""

from __future__ import annotations

import logging

from tqdm import tqdm

from .lib.cli import exit_on_user_error, resolve_params, setup_logging, stage_parser, timed
from .lib.evaluation import EvalParams, load_separator, score_tracks, summarize
from .lib.io import write_json
from .lib.params import load_base, load_runtime, load_section
from .lib.readers import iter_folder_dataset, list_track_folders
from .lib.unmix import select_device

log = logging.getLogger("stages.evaluate")


def run(argv: list[str] | None = None) -> None:
    """Write per-song scores (``--scores``) and the run's small metrics JSON (``--metrics``)."""
    parser = stage_parser("evaluate", __doc__ or "", cost=True, progress=True)
    parser.add_input("--models", help="trained model folder")
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
    device = select_device(runtime.device)

    with timed(args.cost, "evaluate"):
        if args.trivial == (args.models is not None):
            raise ValueError("give exactly one of --models or --trivial")
        separator = None if args.trivial else load_separator(args.models, params.niter,
                                                             params.wiener_win_len, device)
        n = len(list_track_folders(args.test))
        tracks = tqdm(iter_folder_dataset(args.test, base.sample_rate), total=n,
                      desc="separate", unit="song", disable=args.quiet)
        rows = score_tracks(tracks, separator, params, base.sample_rate, device, runtime.workers)
        write_json(args.scores, {"songs": rows})
        write_json(args.metrics, summarize(rows))


def main(argv: list[str] | None = None) -> None:
    """Entry point."""
    exit_on_user_error("evaluate", run, argv)


if __name__ == "__main__":
    main()
