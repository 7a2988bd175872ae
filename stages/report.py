"""Stage ``report``: the paper's Table 1 / Table 2 layout in markdown, with the paper's numbers beside.

    python -m stages.report --mixed23 metrics/mixed23.json --effectsdb metrics/effectsdb.json \
        --detection metrics/detection --trivial metrics/trivial.json --cost metrics/cost \
        --out metrics/report.md
"""

from __future__ import annotations

import logging

from .lib.cleaning import CleaningParams
from .lib.cli import exit_on_user_error, resolve_params, setup_logging, stage_parser
from .lib.io import atomic_path, output_folder, read_json, remove_stale
from .lib.params import load_base, load_section
from .lib.tables import auto_ratio_table, auto_vs_grid_table, cost_table, report_lines, write_plots

log = logging.getLogger("stages.report")


def run(argv: list[str] | None = None) -> None:
    """Write the markdown report and the plots."""
    parser = stage_parser("report", __doc__ or "")
    parser.add_input("--mixed23", required=True)
    parser.add_input("--effectsdb", required=True)
    parser.add_input("--detection", required=True)
    parser.add_input("--trivial")
    parser.add_input("--sanity", help="the attribution sanity check's metrics")
    parser.add_input("--cost", required=True)
    parser.add_input("--scores-root", help="data/scores (per-set score tables)")
    parser.add_input("--truth-root", help="data/truth (ground-truth manifests)")
    parser.add_output("--out", required=True)
    parser.add_output("--plots", folder=True, help="folder for plot CSVs and PNGs")
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    seeds = load_base(resolve_params(args)).seeds
    cleaning = load_section(args.params, "cleaning", CleaningParams)
    sets = {"mixed23": read_json(args.mixed23), "effectsdb": read_json(args.effectsdb)}
    auto_rows = (auto_ratio_table(args.scores_root, args.truth_root, seeds,
                                  cleaning.auto_min_ratio)
                 if args.scores_root is not None and args.truth_root is not None else [])
    lines = report_lines(sets, read_json(args.trivial) if args.trivial else None,
                         {p.stem: read_json(p) for p in sorted(args.detection.glob("*.json"))},
                         read_json(args.sanity) if args.sanity else None, auto_rows,
                         auto_vs_grid_table(sets, args.cost, seeds),
                         cost_table(args.cost, seeds, cleaning))
    with atomic_path(args.out) as tmp:
        tmp.write_text("\n".join(lines))
    if args.plots is not None:
        remove_stale(args.plots)
        output_folder(args.plots)
        write_plots(args.plots, sets, args.scores_root, args.truth_root, seeds)
    log.info("report: %s (%d lines)", args.out, len(lines))


def main(argv: list[str] | None = None) -> None:
    """Entry point."""
    exit_on_user_error("report", run, argv)


if __name__ == "__main__":
    main()
