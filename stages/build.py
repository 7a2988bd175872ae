"""Stage ``build``: a contaminated training set (Mixed23 or EffectsDB) with its ground truth.

    python -m stages.build --dataset mixed23 --pool data/rendered/train \
        --exclude data/rendered/reference --exclude data/rendered/test \
        --out data/mixed23 --truth data/truth/mixed23.json

Mixed23 = clean songs + label noise + bleeding; EffectsDB = clean songs + songs processed with
distortion / reverb / low-pass (pedalboard). Simulated from the rendered pool, or read from real
folders (``build_<dataset>.mode: real``). The truth manifest is written apart from the audio.
"""

from __future__ import annotations

import logging

from .lib.build import BUILDERS, PoolParams, build_set, pool_names, real_roots
from .lib.cli import check_paths, exit_on_user_error, resolve_params, setup_logging, stage_parser, timed
from .lib.params import load_base, load_section

log = logging.getLogger("stages.build")


def run(argv: list[str] | None = None) -> None:
    """Build ``--dataset`` into ``--out`` and its manifest into ``--truth``."""
    parser = stage_parser("build", __doc__ or "", cost=True, progress=True)
    parser.add_argument("--dataset", required=True, choices=sorted(BUILDERS))
    parser.add_input("--pool", help="rendered training pool (simulated mode)")
    parser.add_input("--exclude", action="append", default=[],
                     help="a dataset folder whose song names must not appear (reference, test)")
    parser.add_output("--out", folder=True, required=True, help="output track folder")
    parser.add_output("--truth", required=True, help="ground-truth manifest JSON")
    parser.add_output("--examples", folder=True, help="also write before/after listening examples")
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    params_cls, make_jobs, count = BUILDERS[args.dataset]
    base = load_base(resolve_params(args))
    pool = load_section(args.params, "pool", PoolParams)
    params = load_section(args.params, f"build_{args.dataset}", params_cls)
    check_paths(args, parser, {f"build_{args.dataset}.{k}": v
                               for k, v in real_roots(params).items()})
    exclude = frozenset(name for folder in args.exclude for name in pool_names(folder))
    with timed(args.cost, f"build_{args.dataset}") as cost:
        counts = build_set(make_jobs(params, pool, args.pool, base.sample_rate), count(pool),
                           params.seed, args.out, args.truth, args.dataset, args.quiet,
                           args.examples, exclude=exclude)
        cost["songs"] = sum(counts.values())
    log.info("%s: %d songs %s", args.dataset, sum(counts.values()), counts)


def main(argv: list[str] | None = None) -> None:
    """Entry point."""
    exit_on_user_error("build", run, argv)


if __name__ == "__main__":
    main()
