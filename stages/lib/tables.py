"""The report's tables and plots: Tables 1 and 2 beside the paper's numbers, detection, the
automatic ratio against the grid, the attribution sanity check, cost; SDR-vs-r, ROC and score
plots as CSV + PNG (used by the ``report`` stage)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from .cleaning import CleaningParams, parse_condition
from .filtering import auto_ratio, kept_songs, mean_table
from .io import read_json
from .params import TARGETS
from .plots import roc_points, save_png, write_csv
from .scores import read_method_tables, zscore
from .truth import read_truth

log = logging.getLogger(__name__)


# The paper's Table 1 (avg SDR, % of the clean songs kept) and Table 2 (avg SDR), for comparison.
PAPER_T1 = {"contaminated": (4.85, "50% of set"), "clean_only": (4.94, "100%"),
            "reference_only": (4.61, "100%"), "unlearn_r0.75": (4.91, "62%"),
            "unlearn_per_target_r0.75": (4.91, "—"), "fad_r0.5": (4.90, "70% (MERT) / 72% (CLAP)"),
            "mlp_r0.5": (5.00, "77%")}
PAPER_T2 = {"clean_only": (4.63, ""), "contaminated": (4.25, ""), "mlp_r0.9": (4.26, ""),
            "unlearn_r0.9": (4.35, ""), "fad_r0.9": (4.44, "")}
KEY = "museval_sdr_db"


def _ms(stats: dict | None, digits: int = 2) -> str:
    if not stats or stats.get("mean") is None:
        return "—"
    return f"{stats['mean']:.{digits}f} ± {stats['std']:.{digits}f}"


def sdr_table(data: dict, trivial: dict | None, paper_numbers: dict[str, tuple]) -> list[str]:
    """Markdown rows of a Table 1 / Table 2 layout: per-target and avg SDR beside the paper's."""
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
        paper = paper_numbers.get(cond, (None, ""))
        cells = [_ms(m.get(f"{KEY}_{t}")) for t in TARGETS]
        lines.append(f"| {cond} | {' | '.join(cells)} | **{_ms(m.get(f'{KEY}_avg'))}** | {kept} "
                     f"| {gap} | {m.get(f'{KEY}_avg', {}).get('n', 0)} "
                     f"| {paper[0] if paper[0] is not None else '—'} | {paper[1]} |")
    if trivial:
        cells = [f"{trivial.get(f'{KEY}_{t}', float('nan')):.2f}" for t in TARGETS]
        lines.append(f"| mixture as estimate | {' | '.join(cells)} | "
                     f"{trivial.get(f'{KEY}_avg', float('nan')):.2f} | — | — | 1 | — | — |")
    return lines


def difference_table(data: dict) -> list[str]:
    """Markdown rows: each paired margin of museval avg SDR with its 95 % t-interval over seeds,
    marked when the interval holds 0 (the difference is inside the seed noise)."""
    lines = ["| difference (paired by seed) | museval avg, dB | 95 % interval | n | |",
             "|---|---|---|---|---|"]
    suffix = f"_{KEY}_avg"
    for name, stats in data.get("margins", {}).items():
        if not name.endswith(suffix) or stats.get("mean") is None:
            continue
        low, high = stats.get("ci95_low"), stats.get("ci95_high")
        interval = "—" if low is None else f"[{low:+.2f}, {high:+.2f}]"
        noise = "" if low is None else ("inside the noise" if low <= 0 <= high else "")
        label = name.removesuffix(suffix).replace("_minus_", " − ")
        n = stats["n"] if "n_other" not in stats else f"{stats['n']} vs {stats['n_other']}"
        lines.append(f"| {label} | {stats['mean']:+.2f} ± {stats['std']:.2f} | {interval} "
                     f"| {n} | {noise} |")
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


def auto_ratio_table(scores_root: Path, truth_root: Path, seeds: tuple[int, ...],
                     min_ratio: float, fixed: float = 0.5) -> list[str]:
    """``ratio: auto`` per set and method (no retraining): the r it picks and what it keeps,
    beside a fixed r and the oracle r (the true share of clean songs)."""
    lines = ["| set | method | auto r | clean kept (auto) | corrupted removed (auto) "
             f"| clean kept (r={fixed}) | corrupted removed (r={fixed}) | oracle r |",
             "|---|---|---|---|---|---|---|---|"]
    for truth_path in sorted(truth_root.glob("*.json")):
        truth = read_truth(truth_path)
        oracle = sum(k == "clean" for k in truth.values()) / len(truth)
        tables = read_method_tables(scores_root / truth_path.stem, seeds)
        for method, members in tables.items():
            table = mean_table(list(members.values()))
            r = auto_ratio(table.unified, min_ratio)
            cells = []
            for ratio in (r, fixed):
                kept = set(kept_songs(table, ratio, "unified")["vocals"])
                clean = sum(truth[s] == "clean" for s in kept)
                n_clean = sum(k == "clean" for k in truth.values())
                cells += [f"{100 * clean / n_clean:.0f}%",
                          f"{100 * (1 - (len(kept) - clean) / (len(truth) - n_clean)):.0f}%"]
            lines.append(f"| {truth_path.stem} | {method} | {r:.2f} | {' | '.join(cells)} "
                         f"| {oracle:.2f} |")
    return lines


def cell(condition: str) -> tuple[str, str] | None:
    """``(method, ratio)`` of a cleaned condition such as ``fad_r0.5`` / ``fad_rauto``, else None
    (the method keeps a mode's suffix: ``fad_per_target``); parsed by ``parse_condition``."""
    parsed = parse_condition(condition)
    return None if parsed is None else (condition.rsplit("_r", 1)[0], parsed[2])


def _cell_wall(cost_root: Path, dataset: str, cond: str, seeds: tuple[int, ...]) -> float | None:
    """Mean measured retraining wall time of one cleaned condition over the seeds, if recorded."""
    parsed = parse_condition(cond)
    if parsed is None:
        return None
    method, mode, ratio = parsed
    folder = cost_root / "retrain" / dataset / mode / f"{method}_r{ratio}"
    walls = [float(read_json(p)["wall_s"]) for s in seeds
             if (p := folder / f"seed{s}.json").is_file()]
    return sum(walls) / len(walls) if walls else None


def auto_vs_grid_table(sets: dict[str, dict], cost_root: Path, seeds: tuple[int, ...]) -> list[str]:
    """``ratio: auto`` beside the best fixed ratio of the grid, per set and method that has both.

    Success criterion (the issue's bar): auto's mean avg SDR ≥ the grid's best mean minus that
    cell's seed std. Cost per seed: the grid needs one retraining per ratio, auto needs one
    retraining (the mixture fit on the scores takes milliseconds); every training has the same
    number of optimiser steps, so "trainings" is the cost in units of one baseline training.
    """
    lines = ["| set | method | grid r | best r | SDR at best r | auto r | SDR at auto r "
             "| auto ≥ best − std | cost grid (trainings, wall/seed) | cost auto (trainings, wall/seed) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for dataset, data in sets.items():
        conditions, composition = data["conditions"], data.get("composition", {})
        cells = {c: parts for c in conditions if (parts := cell(c))}
        for auto, (method, _) in sorted((c, p) for c, p in cells.items() if p[1] == "auto"):
            grid = {float(r): c for c, (m, r) in cells.items() if m == method and r != "auto"}
            if not grid:
                continue
            best_r = max(grid, key=lambda r: conditions[grid[r]][f"{KEY}_avg"]["mean"])
            best, chosen = conditions[grid[best_r]][f"{KEY}_avg"], conditions[auto][f"{KEY}_avg"]
            ok = chosen["mean"] >= best["mean"] - best["std"]
            walls = [_cell_wall(cost_root, dataset, grid[r], seeds) for r in sorted(grid)]
            grid_wall = f"{sum(walls):.0f} s" if None not in walls else "—"
            auto_wall = _cell_wall(cost_root, dataset, auto, seeds)
            auto_r = composition.get(auto, {}).get("ratio_retained", float("nan"))
            lines.append(
                f"| {dataset} | {method} | {', '.join(f'{r:g}' for r in sorted(grid))} "
                f"| {best_r:g} | {_ms(best)} | {auto_r:.2f} "
                f"| {_ms(chosen)} | {'yes' if ok else '**no**'} | {len(grid)}, {grid_wall} "
                f"| 1, {f'{auto_wall:.0f} s' if auto_wall is not None else '—'} |")
    return lines


def is_current_cell(relative: Path, seeds: tuple[int, ...], cleaning: CleaningParams) -> bool:
    """Whether a cost file belongs to the current grid: files of other seeds (draws, for the
    random control) or of cleaned conditions no longer in ``cleaning`` (DVC never deletes outputs
    of removed stages) are not; cleaned cells live at ``<family>/<set>/<mode>/<method>_r<r>``."""
    cells = {f"{m}_r{r}" for m in cleaning.methods for r in cleaning.ratios}
    randoms = {f"random_r{r}" for r in cleaning.random_ratios}
    parts = relative.with_suffix("").parts
    wanted = cleaning.random_draws if randoms & set(parts) else seeds
    for index, part in enumerate(parts):
        if part.startswith("seed") and part[4:].isdigit() and int(part[4:]) not in wanted:
            return False
        if part in randoms:
            continue
        if cell(part) and (part not in cells or index == 0
                           or parts[index - 1] not in cleaning.modes):
            return False  # a cleaned cell counts only in a current mode's folder (not the
            # pre-mode layout <family>/<set>/<method>_r<r> an older run left behind)
    return True


def cost_table(cost_root: Path, seeds: tuple[int, ...], cleaning: CleaningParams) -> list[str]:
    """Wall time per stage family (sum and count of the current grid's cells)."""
    families: dict[str, list[float]] = {}
    for path in sorted(cost_root.rglob("*.json")):
        relative = path.relative_to(cost_root)
        if not is_current_cell(relative, seeds, cleaning):
            continue
        family = relative.parts[0].removesuffix(".json")
        families.setdefault(family, []).append(float(read_json(path)["wall_s"]))
    lines = ["| stage family | cells | total wall [s] | mean per cell [s] |", "|---|---|---|---|"]
    for family, values in families.items():
        lines.append(f"| {family} | {len(values)} | {sum(values):.0f} | "
                     f"{sum(values) / len(values):.1f} |")
    return lines


def sdr_vs_ratio_rows(data: dict) -> list[list]:
    """``[method, ratio, mean, std]`` per cleaned condition; the contaminated set is r = 1."""
    rows = []
    for cond, metrics in sorted(data["conditions"].items()):
        if parts := cell(cond):
            method, ratio = parts
            if ratio == "auto":  # plotted at the ratio it chose, as its own series
                method, ratio = f"{method} (auto)", data["composition"][cond]["ratio_retained"]
            rows.append([method, float(ratio), metrics[f"{KEY}_avg"]["mean"],
                         metrics[f"{KEY}_avg"]["std"]])
    base = data["conditions"].get("contaminated", {}).get(f"{KEY}_avg", {})
    if base.get("mean") is not None:
        rows += [[m, 1.0, base["mean"], base["std"]] for m in sorted({r[0] for r in rows})]
    return sorted(rows)


def write_plots(folder: Path, sets: dict[str, dict], scores_root: Path | None,
                truth_root: Path | None, seeds: tuple[int, ...] = (0,)) -> None:
    """SDR vs r per set (the paper's Fig. 2), ROC curves and score distributions: CSV + PNG."""
    for dataset, data in sets.items():
        rows = sdr_vs_ratio_rows(data)
        write_csv(folder / f"sdr_vs_ratio_{dataset}.csv", ["method", "ratio", "sdr_db", "std_db"],
                  rows)

        def draw_sdr(ax, rows=rows, data=data, dataset=dataset) -> None:  # noqa: ANN001
            for method in sorted({r[0] for r in rows}):
                pts = [r for r in rows if r[0] == method]
                ax.errorbar([p[1] for p in pts], [p[2] for p in pts], [p[3] for p in pts],
                            marker="o", capsize=3, label=method)
            clean = data["conditions"].get("clean_only", {}).get(f"{KEY}_avg", {}).get("mean")
            if clean is not None:
                ax.axhline(clean, ls="--", c="k", lw=1, label="clean_only")
            ax.set_xlabel("ratio r retained")
            ax.set_ylabel("avg SDR [dB]")
            ax.legend()
            ax.set_title(f"{dataset}: SDR vs cleaning ratio")

        save_png(folder / f"sdr_vs_ratio_{dataset}.png", draw_sdr)
    if scores_root is None or truth_root is None:
        return
    for truth_path in sorted(truth_root.glob("*.json")):
        dataset = truth_path.stem
        truth = read_truth(truth_path)
        tables = {m: mean_table(list(members.values()))
                  for m, members in read_method_tables(scores_root / dataset, seeds).items()}
        roc_rows, dist_rows = [], []
        for method, table in tables.items():
            kinds = np.array([truth[s] for s in table.songs])
            fpr, tpr = roc_points(table.unified, kinds != "clean")
            roc_rows += [[method, float(f), float(t)] for f, t in zip(fpr, tpr, strict=True)]
            z = zscore(table.unified)
            dist_rows += [[method, s, k, float(v)] for s, k, v in
                          zip(table.songs, kinds, z, strict=True)]
        write_csv(folder / f"roc_{dataset}.csv", ["method", "fpr", "tpr"], roc_rows)
        write_csv(folder / f"scores_{dataset}.csv", ["method", "song", "kind", "zscore"], dist_rows)

        def draw_roc(ax, rows=roc_rows) -> None:  # noqa: ANN001
            for method in sorted({r[0] for r in rows}):
                pts = [r for r in rows if r[0] == method]
                ax.plot([p[1] for p in pts], [p[2] for p in pts], label=method)
            ax.plot([0, 1], [0, 1], ls=":", c="grey")
            ax.set_xlabel("false-positive rate")
            ax.set_ylabel("true-positive rate")
            ax.legend()

        def draw_dist(ax, rows=dist_rows) -> None:  # noqa: ANN001
            methods = sorted({r[0] for r in rows})
            kinds = sorted({r[2] for r in rows})
            for k, kind in enumerate(kinds):
                for m, method in enumerate(methods):
                    vals = [r[3] for r in rows if r[0] == method and r[2] == kind]
                    ax.scatter(np.full(len(vals), m) + 0.12 * (k - len(kinds) / 2), vals, s=12,
                               label=kind if m == 0 else None, color=f"C{k}")
            ax.set_xticks(range(len(methods)), methods)
            ax.set_ylabel("unified score (z)")
            ax.legend()

        save_png(folder / f"roc_{dataset}.png", draw_roc)
        save_png(folder / f"scores_{dataset}.png", draw_dist)




def sanity_lines(sanity: dict) -> list[str]:
    """The attribution sanity check, stated plainly (it belongs on the report's first screen)."""
    met = sanity["copy_above_clean_median"] >= 1 and sanity["noise_below_all_clean"] >= 1
    return [f"**Attribution sanity check: {'met' if met else 'NOT met'}.** An exact copy of a "
            f"reference song ranks {int(sanity['copy_rank_own_reference'])} in its own "
            f"reference's column but {int(sanity['copy_rank'])}/{int(sanity['n_songs'])} in the "
            f"unified score ({'above' if sanity['copy_above_clean_median'] >= 1 else 'below'} "
            "the clean songs' median); a pure-noise song ranks "
            f"{int(sanity['noise_rank'])}/{int(sanity['n_songs'])} "
            f"({'below' if sanity['noise_below_all_clean'] >= 1 else 'not below'} every clean "
            "song). The unified score averages over references, so one reference's strong vote "
            "is diluted (`metrics/sanity.json`).", ""]


def report_lines(sets: dict[str, dict], trivial: dict | None, detection: dict[str, dict],
                 sanity: dict | None, auto_rows: list[str], auto_vs_grid: list[str],
                 cost: list[str]) -> list[str]:
    """The whole markdown report, first screen first: what was measured, the sanity check,
    Tables 1 and 2, detection, the automatic ratio, cost."""
    lines = ["# Benchmark report", "",
             "SDR = museval BSSEval v4 (median over 1 s windows, then over test songs), mean ± std "
             "over seeds; avg = mean of the four targets. Paper columns: the paper's Table 1/2 "
             "(MUSDB18-scale data, 500 epochs); absolute values are not comparable, the ordering "
             "and the gap closed are.", "",
             "**One corpus, one severity.** This report is the Bach-chorale corpus at the paper's "
             "corruption strengths. Which method beats random removal on a second corpus and at "
             "milder corruptions (with intervals): `metrics/studies/summary/summary.md` "
             "(`.ci/summary`, from the committed studies).", ""]
    if sanity is not None:
        lines += sanity_lines(sanity)
    if any(cond.startswith("random_r") for data in sets.values() for cond in data["conditions"]):
        lines += ["`random_r<r>` is the random-removal control: a random fraction r of the "
                  "songs kept, one draw per run (trained with seed = draw), n = the number of "
                  "draws. A method beats removing songs blindly only where its margin against "
                  "it (Welch interval, unpaired) lies above 0.", ""]
    if any(name in ("unlearn-naive", "loss") for tables in detection.values() for name in tables):
        lines += ["Score controls in the detection table: `unlearn-naive` is unlearning without "
                  "the Fisher (in linear mode TracIn's gradient similarity), `loss` the small-loss "
                  "heuristic (each song's loss under the contaminated baseline).", ""]
    lines += ["## Table 1 — Mixed23", "", *sdr_table(sets["mixed23"], trivial, PAPER_T1), "",
              "## Table 2 — EffectsDB (clean_only and reference_only are Mixed23's: the same "
              "songs)", "", *sdr_table(sets["effectsdb"], None, PAPER_T2), "",
              "## Paired differences over seeds (museval avg SDR, 95 % t-interval)", "",
              "Per seed, condition minus the other (same seed's models); with 3 seeds the "
              "interval is wide (t = 4.30): a difference whose interval holds 0 is not shown "
              "to exist. The seeds of a cleaned condition share one kept set, so the interval "
              "does not cover the variation of the filter itself. Margins involving "
              "`random_r<r>` are unpaired (n = runs of each side, Welch's interval).", "",
              *[row for name in ("mixed23", "effectsdb") for row in
                (f"**{name}**", "", *difference_table(sets[name]), "")],
              "## Detection of the corrupted songs (unified score)", "",
              *detection_table(detection), ""]
    if auto_rows:
        lines += ["## `ratio: auto` — the ratio chosen from the score distribution (no "
                  "retraining)", "", *auto_rows, ""]
    if len(auto_vs_grid) > 2:
        lines += ["## `ratio: auto` against the ratio grid (retrained, museval avg SDR)", "",
                  *auto_vs_grid, ""]
    return lines + ["## Cost (this machine)", "", *cost, ""]
