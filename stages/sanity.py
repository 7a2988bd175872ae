"""Stage ``sanity``: plant two known songs in Mixed23 and check where attribution ranks them
(:mod:`stages.lib.sanity` says what is planted and what is expected).

    python -m stages.sanity plant --songs data/lists/mixed23/contaminated.json \
        --reference data/rendered/reference --out data/sanity
    (train + attribute on data/sanity/songs.json with the ordinary stages)
    python -m stages.sanity check --scores data/sanity/scores --truth data/truth/mixed23.json \
        --metrics metrics/sanity.json
"""

from __future__ import annotations

import logging
from pathlib import Path

from .lib.cli import check_paths, exit_on_user_error, resolve_params, setup_logging, stage_parser
from .lib.io import read_json, write_json
from .lib.params import load_base
from .lib.sanity import NOISE, plant, planted_ranks
from .lib.songs import SongList
from .lib.truth import read_truth

log = logging.getLogger("stages.sanity")


def run(argv: list[str] | None = None) -> None:
    """``plant`` or ``check``."""
    parser = stage_parser("sanity", __doc__ or "")
    parser.add_argument("action", choices=("plant", "check"))
    parser.add_input("--songs", help="plant: the contaminated song list")
    parser.add_input("--reference", help="plant: clean reference folder")
    parser.add_output("--out", folder=True, help="plant: output folder")
    parser.add_input("--scores", help="check: the attribute stage's output folder")
    parser.add_input("--truth", help="check: Mixed23 ground truth (clean songs)")
    parser.add_output("--metrics", help="check: ranks JSON")
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    sample_rate = load_base(resolve_params(args)).sample_rate
    needed = {"plant": ("songs", "reference", "out"), "check": ("scores", "truth", "metrics")}
    missing = [f"--{k}" for k in needed[args.action] if getattr(args, k) is None]
    if missing:
        raise ValueError(f"{args.action} needs {' '.join(missing)}")
    if args.action == "plant":
        check_paths(args, parser, {f"--songs[{i}]": Path(f)
                                   for i, f in enumerate(SongList.read(args.songs).all_folders())})
        log.info("planted %s and %s", plant(args.songs, args.reference, args.out, sample_rate),
                 NOISE)
        return
    result = planted_ranks(read_json(args.scores / "delta.json"), read_truth(args.truth))
    write_json(args.metrics, result)
    for suffix, label in (("", "mean"), ("_zscore", "zscore")):
        log.info("%s: copy rank %d/%d (own column %d), noise rank %d/%d, below every clean "
                 "song: %s", label, result[f"copy_rank{suffix}"], result["n_songs"],
                 result["copy_rank_own_reference"], result[f"noise_rank{suffix}"],
                 result["n_songs"], bool(result[f"noise_below_all_clean{suffix}"]))


def main(argv: list[str] | None = None) -> None:
    """Entry point."""
    exit_on_user_error("sanity", run, argv)


if __name__ == "__main__":
    main()
