"""Summarise runs of the pipeline across corpora and severities (issue #18's question: which
method helps, on which corpus, at which severity, against random removal):

    python -m stages.tools.summarise --out metrics/studies/summary \\
        --run bach/severe=metrics --run bach/moderate=metrics/studies/severity-moderate \\
        --run bach/mild=metrics/studies/severity-mild --run palestrina/severe=metrics/studies/corpus2 \\
        --run bach/minimal=metrics/studies/severity-minimal#effectsdb

Each ``--run corpus/setting=folder`` names a folder laid out like ``metrics/`` (``<set>.json``,
``detection/<set>.json``); ``#effectsdb`` (or ``#mixed23``) limits a run to the set its label
describes. Settings are tabulated in the order given; the severity levels (severe, moderate,
mild, minimal) are also plotted, strongest first. Writes ``summary.md``,
``summary.json`` and ``severity.png`` into ``--out``. ``.ci/summary`` runs exactly this.
"""

from __future__ import annotations

import logging

from ..lib.cli import check_paths, exit_on_user_error, setup_logging, stage_parser
from ..lib.io import atomic_path
from ..lib.studies import parse_run, write_summary

log = logging.getLogger("stages.tools.summarise")


def run(argv: list[str] | None = None) -> None:
    """Read every run, then write the summary folder."""
    parser = stage_parser("tools.summarise", __doc__ or "")
    parser.add_argument("--run", action="append", required=True,
                        help="corpus/setting=folder[#set,...] of results (repeat)")
    parser.add_output("--out", folder=True, required=True, help="summary folder to write")
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    runs = [parse_run(spec) for spec in args.run]
    check_paths(args, parser, {k: v for r in runs for k, v in r.inputs().items()})
    with atomic_path(args.out) as tmp:
        rows = write_summary(tmp, runs)
    log.info("summarise: %d runs, %d rows -> %s", len(runs), len(rows), args.out)


def main(argv: list[str] | None = None) -> None:
    """Entry point."""
    exit_on_user_error("summarise", run, argv)


if __name__ == "__main__":
    main()
