"""Reduce per-run metrics (one JSON per condition and seed) to mean, std and n over seeds."""

from __future__ import annotations

import itertools
import math
import re
from pathlib import Path

import numpy as np

from .cleaning import condition as condition_name
from .io import read_json

SEED_KEY = re.compile(r"seed(\d+)")


def collect_runs(root: Path, seeds: tuple[int, ...] | None = None,
                 conditions: tuple[str, ...] | None = None,
                 required: bool = True) -> dict[str, dict[int, dict]]:
    """``{condition: {seed: metrics}}`` from ``<root>/<condition>.json`` files (an evaluate
    stage's metrics: one entry ``seed<k>`` per model).

    Only the given ``seeds`` and ``conditions`` are read when given: files and entries left by an
    earlier configuration (DVC does not delete outputs of stages that no longer exist) are
    ignored.
    """
    runs: dict[str, dict[int, dict]] = {}
    for path in sorted(root.glob("*.json")):
        if conditions is not None and path.stem not in conditions:
            continue
        for key, metrics in read_json(path).items():
            match = SEED_KEY.fullmatch(key)
            if match is None:
                raise ValueError(f"{path}: entry '{key}' is not a run seed<k>")
            if seeds is None or int(match.group(1)) in seeds:
                runs.setdefault(path.stem, {})[int(match.group(1))] = metrics
    if not runs and required:
        raise ValueError(f"{root}: no <condition>.json run metrics found")
    return runs


def collect_cleaned_runs(root: Path, seeds: tuple[int, ...],
                         cells: list[tuple[str, str, float | str]]) -> dict[str, dict[int, dict]]:
    """The cleaned conditions' runs, ``{condition name: {seed: metrics}}``, from
    ``<root>/<mode>/<method>_r<ratio>.json``; every cell of the grid must be there."""
    runs: dict[str, dict[int, dict]] = {}
    for method, mode, ratio in cells:
        path = root / mode / f"{method}_r{ratio}.json"
        if not path.is_file():
            raise FileNotFoundError(f"{path}: run metrics of a cleaned condition not found")
        found = collect_runs(path.parent, seeds, (path.stem,))
        runs[condition_name(method, mode, ratio)] = found[path.stem]
    return runs


def finite_values(values: list[float | None]) -> list[float]:
    """The defined, finite values as floats (a run without a metric, or a NaN, is left out)."""
    return [float(v) for v in values if v is not None and math.isfinite(v)]


def mean_std(values: list[float | None]) -> dict[str, float | int | None]:
    """Mean, sample std (ddof=1; 0 for one value) and n of the defined values."""
    finite = finite_values(values)
    if not finite:
        return {"mean": None, "std": None, "n": 0}
    std = float(np.std(finite, ddof=1)) if len(finite) > 1 else 0.0
    return {"mean": float(np.mean(finite)), "std": std, "n": len(finite)}


def aggregate(runs: dict[str, dict[int, dict]]) -> dict[str, dict[str, dict]]:
    """Per condition and metric key: mean / std / n over seeds (``n_songs`` is passed through)."""
    out: dict[str, dict[str, dict]] = {}
    for condition, by_seed in sorted(runs.items()):
        keys = sorted({k for metrics in by_seed.values() for k in metrics if k != "n_songs"})
        out[condition] = {k: mean_std([m.get(k) for m in by_seed.values()]) for k in keys}
    return out


def t_interval(values: list[float | None], level: float = 0.95) -> tuple[float | None, ...]:
    """Student-t confidence interval of the mean of ``values`` (``None`` below two values)."""
    from scipy.stats import t

    finite = finite_values(values)
    if len(finite) < 2:
        return None, None
    half = float(t.ppf((1 + level) / 2, len(finite) - 1) * np.std(finite, ddof=1)
                 / math.sqrt(len(finite)))
    return float(np.mean(finite)) - half, float(np.mean(finite)) + half


def paired_difference(runs: dict[str, dict[int, dict]], better: str, worse: str,
                      key: str) -> dict[str, float | int | None]:
    """Mean / std / n over seeds of ``better − worse`` for one metric, paired by seed, and its 95 %
    t-interval (``ci95_low`` / ``ci95_high``: ``None`` below two seeds)."""
    seeds = sorted(set(runs.get(better, {})) & set(runs.get(worse, {})))
    diffs = []
    for seed in seeds:
        a, b = runs[better][seed].get(key), runs[worse][seed].get(key)
        diffs.append(None if a is None or b is None else a - b)
    low, high = t_interval(diffs)
    return {**mean_std(diffs), "ci95_low": low, "ci95_high": high}


def unpaired_difference(runs: dict[str, dict[int, dict]], better: str, worse: str,
                        key: str) -> dict[str, float | int | None]:
    """``better − worse`` for runs that are not pairs (the random control: each run is its own
    draw): difference of the means, ``std`` = the spread of one run's difference
    ``sqrt(s_a² + s_b²)``, ``n`` / ``n_other`` the runs of each side, and Welch's 95 % t-interval
    (``None`` below two runs a side)."""
    from scipy.stats import ttest_ind

    values = [finite_values([m.get(key) for m in runs.get(c, {}).values()]) for c in (better, worse)]
    a, b = (mean_std(v) for v in values)
    out: dict[str, float | int | None] = {"mean": None, "std": None, "n": a["n"],
                                          "n_other": b["n"], "ci95_low": None, "ci95_high": None}
    if a["mean"] is None or b["mean"] is None:
        return out
    out.update(mean=a["mean"] - b["mean"], std=math.hypot(a["std"], b["std"]))
    if min(len(v) for v in values) >= 2 and max(np.std(v) for v in values) > 0:
        interval = ttest_ind(*values, equal_var=False).confidence_interval(0.95)
        out.update(ci95_low=float(interval.low), ci95_high=float(interval.high))
    return out


def gap_closed_unpaired(runs: dict[str, dict[int, dict]], condition: str, key: str,
                        low: str = "contaminated", high: str = "clean_only"
                        ) -> dict[str, float | int | None]:
    """Gap closed by each run of ``condition`` against the baselines' means over seeds (the
    random control's draws are not paired with the baselines' seeds), then mean / std / n."""
    lo, hi = (mean_std([m.get(key) for m in runs.get(c, {}).values()])["mean"] for c in (low, high))
    if lo is None or hi is None or hi == lo:
        return mean_std([])
    return mean_std([None if m.get(key) is None else (m[key] - lo) / (hi - lo)
                     for m in runs.get(condition, {}).values()])


BASELINES = ("contaminated", "clean_only", "reference_only")


def gap_closed(runs: dict[str, dict[int, dict]], condition: str, key: str,
               low: str = "contaminated", high: str = "clean_only") -> dict[str, float | int | None]:
    """``(cleaned − low) / (high − low)`` per seed (paired), then mean / std / n over seeds."""
    seeds = sorted(set(runs.get(condition, {})) & set(runs.get(low, {})) & set(runs.get(high, {})))
    ratios = []
    for seed in seeds:
        c, lo, hi = (runs[name][seed].get(key) for name in (condition, low, high))
        ok = None not in (c, lo, hi) and hi != lo
        ratios.append((c - lo) / (hi - lo) if ok else None)
    return mean_std(ratios)


def composition(kept: dict[str, list[str]], truth: dict[str, str]) -> dict[str, float]:
    """Percent of the clean songs kept and of each corruption kind removed (mean over targets)."""
    kinds = sorted(set(truth.values()))
    out: dict[str, float] = {}
    for kind in kinds:
        total = sum(1 for k in truth.values() if k == kind)
        kept_frac = np.mean([sum(1 for s in songs if truth[s] == kind) / total
                             for songs in kept.values()])
        if kind == "clean":
            out["pct_clean_kept"] = float(100 * kept_frac)
        else:
            out[f"pct_{kind}_removed"] = float(100 * (1 - kept_frac))
    return out


def mean_composition(parts: list[dict[str, float]]) -> dict[str, float]:
    """The mean of several :func:`composition` results (the random control's draws)."""
    return {k: float(np.mean([p[k] for p in parts])) for k in parts[0]}


MARGINS = (("clean_only", "contaminated"), ("contaminated", "reference_only"))
RANDOM = "random_r"  # prefix of the random-removal control's conditions


def _ratio(condition: str) -> str:
    return condition.rpartition("_r")[2]


def margins(runs: dict[str, dict[int, dict]], keys: tuple[str, ...]) -> dict[str, dict]:
    """Every margin ``<better>_minus_<worse>_<key>``: the baselines' (:data:`MARGINS`), each
    cleaned condition against contaminated, every two methods at one ratio (all paired by seed),
    and each method against the random control at its ratio, which, like the control against
    contaminated, is unpaired (:func:`unpaired_difference`: a draw is not a seed's pair)."""
    randoms = sorted(c for c in runs if c.startswith(RANDOM))
    cleaned = sorted(c for c in runs if c not in BASELINES and c not in randoms)
    paired = [(b, w) for b, w in MARGINS if b in runs and w in runs]
    paired += [(c, "contaminated") for c in cleaned if "contaminated" in runs]
    paired += [(a, b) for a, b in itertools.combinations(cleaned, 2) if _ratio(a) == _ratio(b)]
    unpaired = [(r, "contaminated") for r in randoms if "contaminated" in runs]
    unpaired += [(c, r) for r in randoms for c in cleaned if _ratio(c) == _ratio(r)]
    out = {}
    for pairs, difference in ((paired, paired_difference), (unpaired, unpaired_difference)):
        for (better, worse), key in itertools.product(pairs, keys):
            out[f"{better}_minus_{worse}_{key}"] = difference(runs, better, worse, key)
    return out


def gaps_closed(runs: dict[str, dict[int, dict]], keys: tuple[str, ...]) -> dict[str, dict]:
    """Gap closed by every cleaned condition (the random control's draws against the baselines'
    means, the others paired by seed)."""
    return {c: {k: (gap_closed_unpaired if c.startswith(RANDOM) else gap_closed)(runs, c, k)
                for k in keys} for c in runs if c not in BASELINES}


def kept_names(filtered: dict) -> dict[str, list[str]]:
    """Kept song names per target of a filtered list (its ``songs`` hold folder paths)."""
    return {t: [Path(f).name for f in v] for t, v in filtered["songs"].items()}


def collect_random_runs(root: Path, ratios: tuple[float, ...],
                        draws: tuple[int, ...]) -> dict[str, dict[int, dict]]:
    """The random-removal control's runs, ``{random_r<ratio>: {draw: metrics}}`` (one run per
    draw, trained with seed = draw); every configured draw must be there."""
    runs: dict[str, dict[int, dict]] = {}
    for ratio in ratios:
        path = root / f"{RANDOM}{ratio}.json"
        found = read_json(path) if path.is_file() else {}
        missing = [d for d in draws if f"seed{d}" not in found]
        if missing:
            raise FileNotFoundError(f"{path}: run seed{missing[0]} of a random-control draw "
                                    "not found")
        runs.update(collect_runs(root, draws, (path.stem,)))
    return runs


def compositions(filtered: Path, truth: dict[str, str],
                 cells: list[tuple[str, str, float | str]],
                 random_ratios: tuple[float, ...],
                 draws: tuple[int, ...]) -> dict[str, dict[str, float]]:
    """What each cleaned condition kept (``<filtered>/<mode>/<method>/r<ratio>.json``) and,
    averaged over the draws, what the random control kept, against the ground truth."""
    result: dict[str, dict[str, float]] = {}
    for method, mode, ratio in cells:
        kept = read_json(filtered / mode / method / f"r{ratio}.json")
        result[condition_name(method, mode, ratio)] = {**composition(kept_names(kept), truth),
                                                  "ratio_retained": float(kept["ratio"])}
    for ratio in random_ratios:
        parts = [composition(kept_names(read_json(
            filtered / "random" / f"r{ratio}" / f"draw{d}.json")), truth) for d in draws]
        result[f"{RANDOM}{ratio}"] = {**mean_composition(parts), "ratio_retained": float(ratio)}
    return result
