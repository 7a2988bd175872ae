"""Stage ``filter``: a filtered song list from one method's score tables (no audio is copied).

    python -m stages.filter --dataset data/mixed23 --ratio 0.75 --mode unified \
        --scores data/scores/mixed23/unlearn --out data/filtered/mixed23/unified/unlearn/r0.75.json

``--scores`` is a ``scores.csv`` or a method's score folder (one table per baseline seed of
``base.seeds`` for unlearning; one table for FAD and the MLP); every table given is averaged.
``--mode unified`` keeps one list for all targets by the unified score; ``per_target`` ranks each
target by its own score and keeps one list per target model. ``--ratio auto`` picks r from the
distribution of the unified score (``filtering.auto_ratio``), in either mode. The random-removal
control is the stage ``random_filter``.
"""

from __future__ import annotations

import logging
from pathlib import Path

from .lib.cleaning import MODES, CleaningParams
from .lib.cli import exit_on_user_error, resolve_params, setup_logging, stage_parser
from .lib.filtering import chosen_ratio, kept_songs, mean_table, parse_ratio
from .lib.io import write_json
from .lib.params import load_base, load_section
from .lib.readers import list_track_folders
from .lib.scores import ScoreTable, method_tables
from .lib.songs import song_lists

log = logging.getLogger("stages.filter")


def run(argv: list[str] | None = None) -> None:
    """Write a song list (the train stage's input format) with the kept songs."""
    parser = stage_parser("filter", __doc__ or "")
    parser.add_input("--dataset", required=True)
    parser.add_input("--scores", action="append", required=True,
                     help="a scores.csv, or a method's score folder (repeat: tables averaged)")
    parser.add_argument("--ratio", required=True,
                        help="proportion retained, (0, 1], or 'auto' (chosen from the scores)")
    parser.add_argument("--mode", choices=MODES, default="unified")
    parser.add_output("--out", required=True)
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    spec = parse_ratio(args.ratio)
    seeds = load_base(resolve_params(args)).seeds
    auto_min_ratio = load_section(args.params, "cleaning", CleaningParams).auto_min_ratio
    folders = {p.name: str(p) for p in list_track_folders(args.dataset)}
    paths = [p for scores in args.scores for p in score_paths(scores, seeds)]
    table = mean_table([ScoreTable.read(p) for p in paths])
    missing = [s for s in table.songs if s not in folders]
    if missing or len(table.songs) != len(folders):
        raise ValueError(f"{paths[0]}: scores do not cover {args.dataset} "
                         f"(missing folders for {missing[:3]})")
    ratio = chosen_ratio(spec, table.unified, auto_min_ratio)
    log.info("ratio: %.3f (%s)", ratio, "auto" if spec == "auto" else "fixed")
    kept = kept_songs(table, ratio, args.mode)
    lists = song_lists({t: [folders[s] for s in names] for t, names in kept.items()}, args.out)
    write_json(args.out, {**lists, "ratio": ratio, "rule": "auto" if spec == "auto" else "fixed",
                          "mode": args.mode, "n_total": len(table.songs), "n_tables": len(paths)})
    log.info("kept %s of %d songs", {t: len(v) for t, v in kept.items()}, len(table.songs))


def score_paths(scores: Path, seeds: tuple[int, ...]) -> list[Path]:
    """The tables ``--scores`` names: the file itself, or a method folder's tables of ``seeds``."""
    if scores.is_file():
        return [scores]
    paths = list(method_tables(scores, seeds).values()) if scores.is_dir() else []
    if not paths:
        raise ValueError(f"--scores: {scores}: no scores.csv there")
    return paths


def main(argv: list[str] | None = None) -> None:
    """Entry point."""
    exit_on_user_error("filter", run, argv)


if __name__ == "__main__":
    main()
