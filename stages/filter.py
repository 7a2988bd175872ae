"""Stage ``filter``: a filtered song list from one or more score tables (no audio is copied).

    python -m stages.filter --dataset data/mixed23 --ratio 0.75 \
        --method unlearn --scores-root data/scores/mixed23 --out data/filtered/mixed23/unlearn/r0.75.json

``--ratio auto`` picks r from the score distribution (``filtering.auto_ratio``).
``--method NAME`` reads every ``scores.csv`` under ``<scores-root>/NAME`` (one per baseline seed
for unlearning; they are averaged) and keeps one list for all targets; ``NAME-pt`` (e.g.
``unlearn-pt``) ranks each target by its own score and keeps one list per target model.
Explicit ``--scores FILE --mode MODE`` also works. The random-removal control is the stage
``random_filter``.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from .lib.cleaning import CleaningParams
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
    parser.add_input("--scores", action="append", default=[])
    parser.add_argument("--method", help="score folder name, '-pt' suffix for per-target")
    parser.add_input("--scores-root", help="folder holding <method>/.../scores.csv")
    parser.add_argument("--ratio", required=True,
                        help="proportion retained, (0, 1], or 'auto' (chosen from the scores)")
    parser.add_argument("--mode", choices=("unified", "per_target"), default="unified")
    parser.add_output("--out", required=True)
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    spec = parse_ratio(args.ratio)
    seeds = load_base(resolve_params(args)).seeds
    auto_min_ratio = load_section(args.params, "cleaning", CleaningParams).auto_min_ratio
    folders = {p.name: str(p) for p in list_track_folders(args.dataset)}
    paths, mode = score_paths(args, seeds)
    table = mean_table([ScoreTable.read(p) for p in paths])
    missing = [s for s in table.songs if s not in folders]
    if missing or len(table.songs) != len(folders):
        raise ValueError(f"{paths[0]}: scores do not cover {args.dataset} "
                         f"(missing folders for {missing[:3]})")
    ratio = chosen_ratio(spec, table.unified, auto_min_ratio)
    log.info("ratio: %.3f (%s)", ratio, "auto" if spec == "auto" else "fixed")
    kept = kept_songs(table, ratio, mode)
    lists = song_lists({t: [folders[s] for s in names] for t, names in kept.items()}, args.out)
    write_json(args.out, {**lists, "ratio": ratio, "rule": "auto" if spec == "auto" else "fixed",
                          "mode": mode, "n_total": len(table.songs), "n_tables": len(paths)})
    log.info("kept %s of %d songs", {t: len(v) for t, v in kept.items()}, len(table.songs))


def score_paths(args: argparse.Namespace, seeds: tuple[int, ...]) -> tuple[list[Path], str]:
    """The score tables and mode named by ``--scores``/``--mode`` or ``--method``/``--scores-root``."""
    paths, mode = list(args.scores), args.mode
    if args.method:
        if args.scores_root is None:
            raise ValueError("--method needs --scores-root")
        name, per_target = args.method.removesuffix("-pt"), args.method.endswith("-pt")
        mode = "per_target" if per_target else "unified"
        if (args.scores_root / name).is_dir():
            paths += list(method_tables(args.scores_root / name, seeds).values())
        if not paths:
            raise ValueError(f"{args.scores_root / name}: no scores.csv for method {args.method!r}")
    if not paths:
        raise ValueError("give --scores FILE or --method NAME --scores-root DIR")
    return paths, mode


def main(argv: list[str] | None = None) -> None:
    """Entry point."""
    exit_on_user_error("filter", run, argv)


if __name__ == "__main__":
    main()
