"""Keep the top fraction r of a training set by score: unified or per target.

r ∈ (0, 1] is the proportion *retained* (the paper's convention): ``ceil(r · N)`` songs with the
highest scores are kept, ties broken by song name so the result is deterministic.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np

from .params import TARGETS
from .scores import ScoreTable

Mode = Literal["unified", "per_target"]


def check_ratio(ratio: float, where: str = "ratio") -> None:
    """Raise unless ``0 < ratio <= 1``."""
    if not (0.0 < ratio <= 1.0):
        raise ValueError(f"{where}: {ratio} is outside (0, 1] (r is the proportion retained)")


def keep_top(songs: list[str], scores: np.ndarray, ratio: float) -> list[str]:
    """The ``ceil(ratio · N)`` highest-scoring songs, sorted by name."""
    check_ratio(ratio)
    n_keep = max(1, math.ceil(ratio * len(songs) - 1e-9))
    order = sorted(range(len(songs)), key=lambda i: (-scores[i], songs[i]))
    return sorted(songs[i] for i in order[:n_keep])


def mean_table(tables: list[ScoreTable]) -> ScoreTable:
    """Average several score tables over the same songs (e.g. one per baseline seed)."""
    songs = tables[0].songs
    for table in tables[1:]:
        if table.songs != songs:
            raise ValueError("score tables to average must list the same songs in the same order")
    return ScoreTable(songs,
                      {t: np.mean([tb.per_target[t] for tb in tables], axis=0) for t in TARGETS},
                      np.mean([tb.unified for tb in tables], axis=0))


def kept_songs(table: ScoreTable, ratio: float, mode: Mode) -> dict[str, list[str]]:
    """Kept song names per target: one shared list (unified) or one list per target model."""
    if mode == "unified":
        kept = keep_top(table.songs, table.unified, ratio)
        return {t: kept for t in TARGETS}
    return {t: keep_top(table.songs, table.per_target[t], ratio) for t in TARGETS}
