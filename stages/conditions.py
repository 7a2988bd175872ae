"""Stage ``conditions``: the baseline song lists (contaminated, clean_only, reference_only).

    python -m stages.conditions --dataset data/mixed23 --truth data/truth/mixed23.json \
        --reference data/rendered/reference --out data/lists/mixed23

``clean_only`` is an oracle (the paper's MUSDB18-train upper bound): it is the one place besides
the report that reads the ground truth, to know which songs are clean.
"""

from __future__ import annotations

import logging
from pathlib import Path

from .lib.cli import exit_on_user_error, setup_logging, stage_parser
from .lib.io import atomic_path, dumps_json, remove_stale
from .lib.readers import list_track_folders
from .lib.songs import song_list_for
from .lib.truth import read_truth

log = logging.getLogger("stages.conditions")


def run(argv: list[str] | None = None) -> None:
    """Write ``<out>/{contaminated,clean_only,reference_only}.json``."""
    parser = stage_parser("conditions", __doc__ or "")
    parser.add_input("--dataset", required=True)
    parser.add_input("--truth", required=True)
    parser.add_input("--reference", required=True)
    parser.add_output("--out", folder=True, required=True)
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    remove_stale(args.out)
    folders = [str(p) for p in list_track_folders(args.dataset)]
    truth = read_truth(args.truth)
    missing = [Path(f).name for f in folders if Path(f).name not in truth]
    if missing:
        raise ValueError(f"{args.truth}: no ground truth for {missing[:3]}")
    lists = {
        "contaminated": folders,
        "clean_only": [f for f in folders if truth[Path(f).name] == "clean"],
        "reference_only": [str(p) for p in list_track_folders(args.reference)],
    }
    with atomic_path(args.out) as tmp:
        tmp.mkdir()
        for name, songs in lists.items():
            (tmp / f"{name}.json").write_text(dumps_json(song_list_for(
                songs, args.out / f"{name}.json")))
    log.info("conditions: %s", {k: len(v) for k, v in lists.items()})


def main(argv: list[str] | None = None) -> None:
    """Entry point."""
    exit_on_user_error("conditions", run, argv)


if __name__ == "__main__":
    main()
