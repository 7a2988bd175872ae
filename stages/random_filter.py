"""Stage ``random_filter``: the random-removal control's song lists, one per draw.

    python -m stages.random_filter --dataset data/mixed23 --ratio 0.5 \
        --out data/filtered/mixed23/random/r0.5

Writes ``<out>/draw<d>.json`` for every draw ``d`` of ``cleaning.random_draws``: a random
fraction r of the songs, every song scored by its own draw keyed by ``(d, song name)``
(``filtering.random_table``), so the sets kept at two ratios are nested. The lists have the
format of ``filter``'s (one list shared by every target).
"""

from __future__ import annotations

import logging

from .lib.cleaning import CleaningParams
from .lib.cli import exit_on_user_error, resolve_params, setup_logging, stage_parser
from .lib.filtering import kept_songs, parse_ratio, random_table
from .lib.io import atomic_path, dumps_json
from .lib.params import load_section
from .lib.readers import list_track_folders
from .lib.songs import song_lists

log = logging.getLogger("stages.random_filter")


def run(argv: list[str] | None = None) -> None:
    """Write one song list per draw into the ``--out`` folder."""
    parser = stage_parser("random_filter", __doc__ or "")
    parser.add_input("--dataset", required=True)
    parser.add_argument("--ratio", required=True, help="proportion retained, in (0, 1]")
    parser.add_output("--out", required=True, folder=True)
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    ratio = parse_ratio(args.ratio)
    if ratio == "auto":
        raise ValueError("--ratio auto needs scores; the random control takes a proportion in "
                         "(0, 1]")
    draws = load_section(resolve_params(args), "cleaning", CleaningParams).random_draws
    if not draws:
        raise ValueError("cleaning.random_draws: an empty list: no list to write")
    folders = {p.name: str(p) for p in list_track_folders(args.dataset)}
    with atomic_path(args.out) as tmp:
        tmp.mkdir()
        for draw in draws:
            table = random_table(sorted(folders), draw)
            kept = kept_songs(table, ratio, "unified")
            lists = song_lists({t: [folders[s] for s in names] for t, names in kept.items()},
                               args.out / f"draw{draw}.json")  # paths relative to the final place
            (tmp / f"draw{draw}.json").write_text(dumps_json({
                **lists, "ratio": ratio, "rule": "random", "mode": "unified",
                "n_total": len(table.songs), "n_tables": 0, "draw": draw}))
            log.info("draw %d: kept %d of %d songs", draw, len(kept["vocals"]), len(folders))


def main(argv: list[str] | None = None) -> None:
    """Entry point."""
    exit_on_user_error("random_filter", run, argv)


if __name__ == "__main__":
    main()
