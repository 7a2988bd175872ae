"""Make a song list (what ``python -m stages.train --songs`` reads) from a folder of tracks.

    python -m stages.tools.songlist --songs /data/my_multitracks --out all.json
    python -m stages.tools.songlist --songs /data/my_multitracks --only song1 --only song7 --out two.json
    python -m stages.tools.songlist --songs /data/my_multitracks --exclude bad_song --out kept.json

Every target model trains on the same songs; folders are stored relative to the list's own
folder, so the list works from any directory.
"""

from __future__ import annotations

import logging

from ..lib.cli import exit_on_user_error, setup_logging, stage_parser
from ..lib.io import write_json
from ..lib.readers import list_track_folders
from ..lib.songs import song_list_for

log = logging.getLogger("stages.tools.songlist")


def run(argv: list[str] | None = None) -> None:
    """Write the list; unknown ``--only`` / ``--exclude`` names are an error, never ignored."""
    parser = stage_parser("tools.songlist", __doc__ or "")
    parser.add_input("--songs", required=True, help="a folder of track folders")
    parser.add_argument("--only", action="append", default=[], help="keep just this song")
    parser.add_argument("--exclude", action="append", default=[], help="leave this song out")
    parser.add_output("--out", required=True, help="song-list JSON to write")
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    folders = {p.name: p for p in list_track_folders(args.songs)}
    unknown = sorted(set(args.only + args.exclude) - set(folders))
    if unknown:
        raise ValueError(f"{args.songs}: no song named {unknown[0]!r} (found {len(folders)})")
    names = [n for n in sorted(folders) if (not args.only or n in args.only)
             and n not in args.exclude]
    if not names:
        raise ValueError("no songs left after --only / --exclude")
    write_json(args.out, song_list_for([str(folders[n]) for n in names], args.out))
    log.info("songlist: %d of %d songs of %s -> %s", len(names), len(folders), args.songs,
             args.out)


def main(argv: list[str] | None = None) -> None:
    """Entry point."""
    exit_on_user_error("songlist", run, argv)


if __name__ == "__main__":
    main()
