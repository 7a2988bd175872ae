"""Stage ``fuse``: a hybrid score table from several methods' tables (rank or z-score fusion).

    python -m stages.fuse --scores-root data/scores/mixed23 --hybrid unlearn+fad \
        --out data/scores/mixed23/unlearn+fad

The hybrid is one more method folder (``scores.csv``), so filtering, detection and the report treat
it like any other.
"""

from __future__ import annotations

import logging

from .lib.cli import exit_on_user_error, resolve_params, setup_logging, stage_parser
from .lib.filtering import mean_table
from .lib.fusion import FuseParams, fuse
from .lib.io import remove_stale, sidecar
from .lib.params import load_base, load_section
from .lib.scores import ScoreTable, method_tables, write_score_folder

log = logging.getLogger("stages.fuse")


def run(argv: list[str] | None = None) -> None:
    """Write ``--out/scores.csv`` and its sidecar."""
    parser = stage_parser("fuse", __doc__ or "")
    parser.add_input("--part", action="append", required=True,
                     help="a score folder <scores>/<method> (repeatable); those in --hybrid are used")
    parser.add_argument("--hybrid", required=True, help="methods joined by '+', from fuse.hybrids")
    parser.add_output("--out", folder=True, required=True)
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    params = load_section(resolve_params(args), "fuse", FuseParams)
    seeds = load_base(args.params).seeds
    if args.hybrid not in params.hybrids:
        raise ValueError(f"--hybrid {args.hybrid!r} is not in fuse.hybrids {list(params.hybrids)}")
    weights = params.parts(args.hybrid)
    folders = {p.name: p for p in args.part}
    missing = sorted(set(weights) - set(folders))
    if missing:
        raise ValueError(f"--hybrid {args.hybrid}: no --part folder for {missing}")
    remove_stale(args.out)
    tables = {m: mean_table([ScoreTable.read(p) for p in
                             method_tables(folders[m], seeds).values()])
              for m in weights}
    hybrid = fuse(tables, weights, params.normalize)
    write_score_folder(args.out, hybrid, sidecar(
            params, hybrid=args.hybrid, weights=weights, seeds=list(seeds)))
    log.info("%s: fused %d songs (%s)", args.hybrid, len(hybrid.songs), params.normalize)


def main(argv: list[str] | None = None) -> None:
    """Entry point."""
    exit_on_user_error("fuse", run, argv)


if __name__ == "__main__":
    main()
