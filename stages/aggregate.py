"""Stage ``aggregate``: per-condition SDR mean / std / n over seeds, plus paired margins.

    python -m stages.aggregate --runs metrics/runs/mixed23 --out metrics/mixed23_baselines.json
"""

from __future__ import annotations

import logging
from pathlib import Path

from .lib.aggregate import aggregate, collect_runs, paired_difference
from .lib.cli import exit_on_user_error, setup_logging, stage_parser
from .lib.io import write_json

log = logging.getLogger("stages.aggregate")

MARGINS = (("clean_only", "contaminated"), ("contaminated", "reference_only"))
KEYS = ("museval_sdr_db_avg", "mdx_sdr_db_avg")


def run(argv: list[str] | None = None) -> None:
    """Write the aggregate metrics JSON."""
    parser = stage_parser(__doc__ or "")
    parser.add_argument("--runs", type=Path, required=True, help="<condition>/seed<k>.json root")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    runs = collect_runs(args.runs)
    result: dict = {"conditions": aggregate(runs), "margins": {}}
    for better, worse in MARGINS:
        if better in runs and worse in runs:
            for key in KEYS:
                result["margins"][f"{better}_minus_{worse}_{key}"] = paired_difference(
                    runs, better, worse, key)
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
