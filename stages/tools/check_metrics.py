"""Regression gate: compare the workspace's aggregate metrics with a git revision's.

    python -m stages.tools.check_metrics --against HEAD~1 [--file metrics/mixed23.json ...]
    python -m stages.tools.check_metrics --baseline .ci/smoke-metrics   # a folder of the same files

Every ``*_sdr_db_avg`` mean of every condition present in both is compared; a drop larger than
``check_metrics.tolerance_db`` (params) is a regression. Prints a markdown table (like
``dvc metrics diff --md``) and exits 1 on any regression, 0 otherwise — wire it into CI after
``dvc repro`` (see README).
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from ..lib.cli import exit_on_user_error, resolve_params, setup_logging, stage_parser
from ..lib.gate import CheckParams, compare, metrics_at, revision_exists
from ..lib.io import read_json
from ..lib.params import load_section

log = logging.getLogger("stages.tools.check_metrics")

DEFAULT_FILES = (Path("metrics/mixed23.json"), Path("metrics/effectsdb.json"))


def run(argv: list[str] | None = None) -> int:
    """Print the comparison table; return the exit status."""
    parser = stage_parser("tools.check_metrics", __doc__ or "")
    parser.add_argument("--against", help="git revision to compare with")
    parser.add_argument("--baseline", type=Path,
                        help="or: a folder holding baseline copies of the --file names")
    parser.add_argument("--file", type=Path, action="append",
                        help="aggregate metrics JSON (repeatable; default: "
                             f"{', '.join(str(f) for f in DEFAULT_FILES)})")
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    params = load_section(resolve_params(args), "check_metrics", CheckParams)
    if (args.against is None) == (args.baseline is None):
        raise ValueError("give exactly one of --against REV or --baseline FOLDER")
    failed = False
    print(f"| set | condition | metric | {args.against or args.baseline} | workspace | change "
          "| allowed drop | status |")
    print("|---|---|---|---|---|---|---|---|")
    for path in args.file or DEFAULT_FILES:
        if not path.is_file():
            raise ValueError(f"{path}: no such metrics file in the workspace (run dvc repro)")
        try:
            old = (metrics_at(args.against, path) if args.against
                   else read_json(args.baseline / path.name))
        except (ValueError, FileNotFoundError):
            if args.against and not revision_exists(args.against):
                raise
            print(f"| {path.stem} | (all) | — | not in {args.against or args.baseline} | — | — "
                  "| — | new |")
            continue
        rows, bad = compare(old, read_json(path), params)
        failed |= bad
        for cond, key, a, b, change, allowed, status in rows:
            print(f"| {path.stem} | {cond} | {key} | {a:.3f} | {b:.3f} | {change:+.3f} "
                  f"| {allowed:.3f} | {status} |")
    print(f"\nallowed drop: max({params.tolerance_db} dB, {params.noise_sigmas} x seed std x "
          f"sqrt(2/n)); {'FAILED' if failed else 'passed'}")
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> None:
    """Entry point: exit status 1 on a regression beyond tolerance."""
    sys.exit(exit_on_user_error("check_metrics", run, argv))


if __name__ == "__main__":
    main()
