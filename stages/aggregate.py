"""Stage ``aggregate``: per-condition SDR mean / std / n over seeds, plus paired margins
(mean / std / n and a 95 % t-interval of the per-seed differences: clean_only and every cleaned
condition against contaminated, contaminated against reference_only, and every two methods at one
ratio against each other).

    python -m stages.aggregate --dataset mixed23 --runs metrics/runs/mixed23 \
        --out metrics/mixed23.json [--baselines metrics/runs/mixed23] \
        [--filtered data/filtered/mixed23 --truth data/truth/mixed23.json]

The random-removal control (``random_r<ratio>``, one run per draw ``d`` trained with seed ``d``;
every configured draw must be there) is compared without pairing: a draw is not a seed's pair
(``lib.aggregate.margins``).

Cleaned runs are read from ``<runs>/<mode>/<method>_r<ratio>.json`` and named ``<method>_r<ratio>``
(mode unified) or ``<method>_per_target_r<ratio>``. Conditions other than the three baselines also get the gap
closed, ``(SDR_cleaned − SDR_contaminated) / (SDR_clean_only − SDR_contaminated)``, and, given the
filtered lists and the truth, the share of clean songs kept and of each corruption removed.
"""

from __future__ import annotations

import logging

from .lib.aggregate import (
    BASELINES,
    aggregate,
    collect_cleaned_runs,
    collect_random_runs,
    collect_runs,
    compositions,
    gaps_closed,
    margins,
)
from .lib.cleaning import CleaningParams
from .lib.cleaning import cells as cleaning_cells
from .lib.cli import exit_on_user_error, resolve_params, setup_logging, stage_parser
from .lib.io import write_json
from .lib.params import load_base, load_section
from .lib.truth import read_truth

log = logging.getLogger("stages.aggregate")

KEYS = ("museval_sdr_db_avg", "mdx_sdr_db_avg")


def run(argv: list[str] | None = None) -> None:
    """Write the aggregate metrics JSON."""
    parser = stage_parser("aggregate", __doc__ or "")
    parser.add_argument("--dataset", required=True, choices=("mixed23", "effectsdb"))
    parser.add_input("--runs", required=True, help="root of <condition>.json run metrics (seed<k> entries)")
    parser.add_output("--out", required=True)
    parser.add_input("--baselines",
                     help="runs root for baseline conditions missing from --runs (EffectsDB "
                          "borrows Mixed23's clean_only: the same clean songs)")
    parser.add_input("--filtered", help="<mode>/<method>/r<ratio>.json filtered lists")
    parser.add_input("--truth", help="ground-truth manifest (for composition)")
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    seeds = load_base(resolve_params(args)).seeds
    cleaning = load_section(args.params, "cleaning", CleaningParams)
    cells = cleaning_cells(cleaning, args.dataset)
    runs = collect_runs(args.runs, seeds, BASELINES, required=False)
    runs.update(collect_cleaned_runs(args.runs, seeds, cells))
    randoms = tuple(r for r in cleaning.random_ratios if args.dataset in cleaning.datasets)
    runs.update(collect_random_runs(args.runs, randoms, cleaning.random_draws))
    if args.baselines is not None:
        missing = tuple(b for b in BASELINES if b not in runs)
        runs.update(collect_runs(args.baselines, seeds, missing) if missing else {})
    result: dict = {"conditions": aggregate(runs), "margins": margins(runs, KEYS)}
    if any(c not in BASELINES for c in runs):
        result["gap_closed"] = gaps_closed(runs, KEYS)
    if args.filtered is not None and args.truth is not None:
        result["composition"] = compositions(args.filtered, read_truth(args.truth), cells, randoms,
                                             cleaning.random_draws)
    write_json(args.out, result)
    for name, metrics in result["conditions"].items():
        avg = metrics.get("museval_sdr_db_avg", {})
        log.info("%-16s museval avg SDR %s ± %s dB (n=%s)", name, avg.get("mean"), avg.get("std"),
                 avg.get("n"))


def main(argv: list[str] | None = None) -> None:
    """Entry point."""
    exit_on_user_error("aggregate", run, argv)


if __name__ == "__main__":
    main()
