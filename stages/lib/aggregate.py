"""Reduce per-run metrics (one JSON per condition and seed) to mean, std and n over seeds."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np

from .io import read_json

SEED_FILE = re.compile(r"^seed(\d+)\.json$")


def collect_runs(root: Path) -> dict[str, dict[int, dict]]:
    """``{condition: {seed: metrics}}`` from ``<root>/<condition>/seed<k>.json`` files."""
    runs: dict[str, dict[int, dict]] = {}
    for path in sorted(root.glob("*/seed*.json")):
        match = SEED_FILE.match(path.name)
        if match:
            runs.setdefault(path.parent.name, {})[int(match.group(1))] = read_json(path)
    if not runs:
        raise ValueError(f"{root}: no <condition>/seed<k>.json run metrics found")
    return runs


def mean_std(values: list[float | None]) -> dict[str, float | int | None]:
    """Mean, sample std (ddof=1; 0 for one value) and n of the defined values."""
    finite = [float(v) for v in values if v is not None and math.isfinite(v)]
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


def paired_difference(runs: dict[str, dict[int, dict]], better: str, worse: str,
                      key: str) -> dict[str, float | int | None]:
    """Mean / std / n over seeds of ``better − worse`` for one metric, paired by seed."""
    seeds = sorted(set(runs.get(better, {})) & set(runs.get(worse, {})))
    diffs = []
    for seed in seeds:
        a, b = runs[better][seed].get(key), runs[worse][seed].get(key)
        diffs.append(None if a is None or b is None else a - b)
    return mean_std(diffs)
