"""Stage ``report``: the paper's Table 1 / Table 2 layout in markdown, with the paper's numbers beside.

    python -m stages.report --mixed23 metrics/mixed23.json --effectsdb-runs metrics/runs/effectsdb \
        --detection metrics/detection --trivial metrics/trivial.json --cost metrics/cost \
        --out metrics/report.md
"""

from __future__ import annotations

import logging
from pathlib import Path

from .lib.aggregate import aggregate, collect_runs
from .lib.cli import exit_on_user_error, setup_logging, stage_parser
from .lib.io import atomic_path, read_json
from .lib.params import TARGETS

log = logging.getLogger("stages.report")

# The paper's Table 1 (avg SDR, % of the clean songs kept) and Table 2 (avg SDR), for comparison.
PAPER_T1 = {"contaminated": (4.85, "50% of set"), "clean_only": (4.94, "100%"),
            "reference_only": (4.61, "100%"), "unlearn_r0.75": (4.91, "62%"),
            "unlearn-pt_r0.75": (4.91, "—"), "fad_r0.5": (4.90, "70% (MERT) / 72% (CLAP)"),
            "mlp_r0.5": (5.00, "77%")}
PAPER_T2 = {"clean_only": 4.63, "contaminated": 4.25, "mlp_r0.9": 4.26, "unlearn_r0.9": 4.35,
            "fad_r0.9": 4.44}
KEY = "museval_sdr_db"


def _ms(stats: dict | None, digits: int = 2) -> str:
    if not stats or stats.get("mean") is None:
        return "—"
    return f"{stats['mean']:.{digits}f} ± {stats['std']:.{digits}f}"


def table1(data: dict, trivial: dict | None) -> list[str]:
    """Markdown rows of the Mixed23 table."""
    lines = ["| training data / cleaning | vocals | bass | drums | other | **avg** | clean kept "
             "| gap closed | n | paper avg | paper clean kept |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    conditions = data["conditions"]
    order = [c for c in ("contaminated", "clean_only", "reference_only") if c in conditions]
    order += sorted(c for c in conditions if c not in order)
    for cond in order:
        m = conditions[cond]
        comp = data.get("composition", {}).get(cond, {})
        kept = f"{comp['pct_clean_kept']:.0f}%" if "pct_clean_kept" in comp else (
            "100%" if cond in ("clean_only", "reference_only") else
            "50% of set" if cond == "contaminated" else "—")
        gap = _ms(data.get("gap_closed", {}).get(cond, {}).get(f"{KEY}_avg"), 2)
        paper = PAPER_T1.get(cond, (None, ""))
        cells = [_ms(m.get(f"{KEY}_{t}")) for t in TARGETS]
        lines.append(f"| {cond} | {' | '.join(cells)} | **{_ms(m.get(f'{KEY}_avg'))}** | {kept} "
                     f"| {gap} | {m.get(f'{KEY}_avg', {}).get('n', 0)} "
                     f"| {paper[0] if paper[0] is not None else '—'} | {paper[1]} |")
    if trivial:
        cells = [f"{trivial.get(f'{KEY}_{t}', float('nan')):.2f}" for t in TARGETS]
        lines.append(f"| mixture as estimate | {' | '.join(cells)} | "
                     f"{trivial.get(f'{KEY}_avg', float('nan')):.2f} | — | — | 1 | — | — |")
    return lines


def detection_table(detection: dict[str, dict]) -> list[str]:
    """Unified-score AUROC per corruption kind, one row per (set, method)."""
    lines = ["| set | score | AUROC any | per kind | best per-target AUROC |", "|---|---|---|---|---|"]
    for dataset, tables in sorted(detection.items()):
        for name, cols in sorted(tables.items()):
            uni = cols["unified"]
            kinds = ", ".join(f"{k} {v['auroc']:.2f}" for k, v in uni.items() if k != "any")
            best = max(TARGETS, key=lambda t: cols[t]["any"]["auroc"] or 0)
            lines.append(f"| {dataset} | {name} | {uni['any']['auroc']:.3f} | {kinds} | "
                         f"{best} {cols[best]['any']['auroc']:.2f} |")
    return lines


def cost_table(cost_root: Path) -> list[str]:
    """Wall time per stage family (sum and count of cells)."""
    families: dict[str, list[float]] = {}
    for path in sorted(cost_root.rglob("*.json")):
        family = path.relative_to(cost_root).parts[0].removesuffix(".json")
        families.setdefault(family, []).append(float(read_json(path)["wall_s"]))
    lines = ["| stage family | cells | total wall [s] | mean per cell [s] |", "|---|---|---|---|"]
    for family, values in families.items():
        lines.append(f"| {family} | {len(values)} | {sum(values):.0f} | "
                     f"{sum(values) / len(values):.1f} |")
    return lines


def run(argv: list[str] | None = None) -> None:
    """Write the markdown report."""
    parser = stage_parser(__doc__ or "")
    parser.add_argument("--mixed23", type=Path, required=True)
    parser.add_argument("--effectsdb-runs", type=Path, required=True)
    parser.add_argument("--detection", type=Path, required=True)
    parser.add_argument("--trivial", type=Path)
    parser.add_argument("--cost", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    mixed = read_json(args.mixed23)
    trivial = read_json(args.trivial) if args.trivial else None
    edb = aggregate(collect_runs(args.effectsdb_runs))
    clean = mixed["conditions"].get("clean_only", {})
    detection = {p.stem: read_json(p) for p in sorted(args.detection.glob("*.json"))}
    lines = ["# Benchmark report", "",
             "SDR = museval BSSEval v4 (median over 1 s windows, then over test songs), mean ± std "
             "over seeds; avg = mean of the four targets. Paper columns: the paper's Table 1/2 "
             "(MUSDB18-scale data, 500 epochs); absolute values are not comparable, the ordering "
             "and the gap closed are.", "", "## Table 1 — Mixed23", "",
             *table1(mixed, trivial), "",
             "## Table 2 — EffectsDB (clean baseline = the shared clean songs, Mixed23 clean_only)",
             "", "| training data | avg SDR | n | paper avg |", "|---|---|---|---|",
             f"| clean_only | {_ms(clean.get(f'{KEY}_avg'))} | "
             f"{clean.get(f'{KEY}_avg', {}).get('n', 0)} | {PAPER_T2['clean_only']} |"]
    for cond, metrics in sorted(edb.items()):
        lines.append(f"| {cond} | {_ms(metrics.get(f'{KEY}_avg'))} | "
                     f"{metrics.get(f'{KEY}_avg', {}).get('n', 0)} | {PAPER_T2.get(cond, '—')} |")
    lines += ["", "## Detection of the corrupted songs (unified score)", "",
              *detection_table(detection), "", "## Cost (this machine)", "",
              *cost_table(args.cost), ""]
    with atomic_path(args.out) as tmp:
        tmp.write_text("\n".join(lines))


def main(argv: list[str] | None = None) -> None:
    """Entry point."""
    exit_on_user_error("report", run, argv)


if __name__ == "__main__":
    main()
