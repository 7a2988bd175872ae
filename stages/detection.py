"""Stage ``detection``: AUROC and average precision of every score table against the truth.

    python -m stages.detection --truth data/truth/mixed23.json \
        --scores-root data/scores/mixed23 --out metrics/detection/mixed23.json

Every ``scores.csv`` under the root is evaluated, named by its folder (``unlearn/seed0``, ``fad``);
tables sharing a method folder (one per seed) are also averaged (``unlearn/mean``), as the filter
stage averages them.

For each table: the unified score and each per-target score, against "any corruption" and each
corruption kind separately (a low score should mean corrupted). Like the report, this stage may
read the ground truth; no scoring stage does.
"""

from __future__ import annotations

import logging

from .lib.cli import exit_on_user_error, resolve_params, setup_logging, stage_parser
from .lib.detection import detection_report
from .lib.filtering import mean_table
from .lib.io import write_json
from .lib.params import TARGETS, load_base
from .lib.scores import read_method_tables
from .lib.truth import read_truth

log = logging.getLogger("stages.detection")


def run(argv: list[str] | None = None) -> None:
    """Write ``{table: {column: {kind: {auroc, average_precision}}}}``."""
    parser = stage_parser("detection", __doc__ or "")
    parser.add_input("--truth", required=True)
    parser.add_input("--scores-root", required=True)
    parser.add_output("--out", required=True)
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    seeds = load_base(resolve_params(args)).seeds
    truth = read_truth(args.truth)
    tables = {}
    for method, members in read_method_tables(args.scores_root, seeds).items():
        for sub, table in members.items():
            tables[f"{method}/{sub}" if sub else method] = table
        if len(members) > 1 or "" not in members:
            tables[f"{method}/mean"] = mean_table(list(members.values()))
    if not tables:
        raise ValueError(f"{args.scores_root}: no scores.csv found")
    result = {}
    for name, table in sorted(tables.items()):
        unknown = [s for s in table.songs if s not in truth]
        if unknown:
            raise ValueError(f"{name}: songs without ground truth in {args.truth}: {unknown[:3]}")
        columns = {"unified": table.unified, **table.per_target}
        result[name] = {col: detection_report(dict(zip(table.songs, values, strict=True)), truth)
                        for col, values in columns.items() if col in ("unified", *TARGETS)}
        log.info("%-20s unified AUROC %s", name, result[name]["unified"]["any"]["auroc"])
    write_json(args.out, result)


def main(argv: list[str] | None = None) -> None:
    """Entry point."""
    exit_on_user_error("detection", run, argv)


if __name__ == "__main__":
    main()
