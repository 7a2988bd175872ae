"""Hybrid scores: rank or z-score fusion of several methods' score tables.

Each part's scores (per target and unified) are normalized over the songs — ``rank``: the rank
mapped to [0, 1] (1 = best), robust to scale and outliers; ``zscore``: centred and scaled — and
the hybrid is their weighted mean. A method with several tables (unlearning: one per baseline
seed) is averaged first, as the filter does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy.stats import rankdata

from .params import TARGETS, check
from .scores import ScoreTable, zscore

Normalize = Literal["rank", "zscore"]


@dataclass(frozen=True)
class FuseParams:
    """``fuse`` section: hybrid names (parts joined by ``+``), part weights, normalization."""

    hybrids: tuple[str, ...]
    weights: dict[str, float]
    normalize: Normalize

    def __post_init__(self) -> None:
        for hybrid in self.hybrids:
            parts = hybrid.split("+")
            check(len(parts) >= 2 and len(set(parts)) == len(parts), "fuse.hybrids",
                  f"{hybrid!r}: join two or more different methods with '+'")
            for part in parts:
                check(part in self.weights, "fuse.weights", f"no weight for {part!r} ({hybrid})")
        for name, weight in self.weights.items():
            check(weight >= 0, f"fuse.weights.{name}", "must be >= 0")

    def parts(self, hybrid: str) -> dict[str, float]:
        """``{method: weight}`` of one hybrid."""
        return {part: self.weights[part] for part in hybrid.split("+")}


def normalize(values: np.ndarray, how: Normalize) -> np.ndarray:
    """Scores made comparable across methods; higher stays better."""
    values = np.asarray(values, dtype=np.float64)
    if how == "rank":
        return (rankdata(values) - 1.0) / max(len(values) - 1, 1)
    return zscore(values)


def fuse(tables: dict[str, ScoreTable], weights: dict[str, float], how: Normalize) -> ScoreTable:
    """Weighted mean of the normalized scores of ``tables`` (aligned by song name)."""
    names = sorted(tables)
    songs = sorted(tables[names[0]].songs)
    for name in names:
        if sorted(tables[name].songs) != songs:
            extra = set(tables[name].songs) ^ set(songs)
            raise ValueError(f"fuse: {name} scores other songs than {names[0]} "
                             f"(e.g. {sorted(extra)[:3]})")
    total = sum(weights[n] for n in names)
    if total <= 0:
        raise ValueError(f"fuse: weights of {names} sum to zero")

    def column(get) -> np.ndarray:  # noqa: ANN001
        out = np.zeros(len(songs))
        for name in names:
            order = [tables[name].songs.index(s) for s in songs]
            out += weights[name] * normalize(get(tables[name])[order], how)
        return out / total

    return ScoreTable(songs, {t: column(lambda tb, t=t: tb.per_target[t]) for t in TARGETS},
                      column(lambda tb: tb.unified))
