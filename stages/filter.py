"""Stage ``filter``: a filtered song list from one or more score tables (no audio is copied).

    python -m stages.filter --dataset data/mixed23 --ratio 0.75 --mode unified \
        --scores data/scores/mixed23/unlearn/seed0/scores.csv [--scores ...seed1/scores.csv] \
        --out data/filtered/mixed23/unlearn_unified/r0.75.json

Several tables (e.g. one per baseline seed) are averaged first.
"""

from __future__ import annotations

import logging
from pathlib import Path

from .lib.cli import exit_on_user_error, setup_logging, stage_parser
from .lib.filtering import kept_songs, mean_table
from .lib.io import write_json
from .lib.readers import list_track_folders
from .lib.scores import ScoreTable

log = logging.getLogger("stages.filter")


def run(argv: list[str] | None = None) -> None:
    """Write a song list (the train stage's input format) with the kept songs."""
    parser = stage_parser(__doc__ or "")
    parser.add_argument("--dataset", type=Path, required=True)
    parser.add_argument("--scores", type=Path, action="append", required=True)
    parser.add_argument("--ratio", type=float, required=True, help="proportion retained, (0, 1]")
    parser.add_argument("--mode", choices=("unified", "per_target"), required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    table = mean_table([ScoreTable.read(p) for p in args.scores])
    folders = {p.name: str(p) for p in list_track_folders(args.dataset)}
    missing = [s for s in table.songs if s not in folders]
    if missing or len(table.songs) != len(folders):
        raise ValueError(f"{args.scores[0]}: scores do not cover {args.dataset} "
                         f"(missing folders for {missing[:3]})")
    kept = kept_songs(table, args.ratio, args.mode)
    write_json(args.out, {"songs": {t: [folders[s] for s in names] for t, names in kept.items()},
                          "ratio": args.ratio, "mode": args.mode, "n_total": len(table.songs)})
    log.info("kept %s of %d songs", {t: len(v) for t, v in kept.items()}, len(table.songs))


def main(argv: list[str] | None = None) -> None:
    """Entry point."""
    exit_on_user_error("filter", run, argv)


if __name__ == "__main__":
    main()
