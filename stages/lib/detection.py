"""How well a score separates clean from corrupted songs: AUROC and average precision.

Convention: a *low* score marks a song for removal, so the positive class (corrupted) should get
low scores; AUROC = P(score of a random corrupted song < score of a random clean song), ties 1/2.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata


def auroc(scores: np.ndarray, corrupted: np.ndarray) -> float | None:
    """Mann–Whitney AUROC of ``-scores`` for the corrupted class; ``None`` if a class is empty."""
    scores = np.asarray(scores, dtype=np.float64)
    corrupted = np.asarray(corrupted, dtype=bool)
    n_pos, n_neg = int(corrupted.sum()), int((~corrupted).sum())
    if n_pos == 0 or n_neg == 0:
        return None
    ranks = rankdata(-scores)  # average ranks handle ties
    return float((ranks[corrupted].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def average_precision(scores: np.ndarray, corrupted: np.ndarray) -> float | None:
    """Average precision of ranking songs by ascending score for the corrupted class."""
    scores = np.asarray(scores, dtype=np.float64)
    corrupted = np.asarray(corrupted, dtype=bool)
    if not corrupted.any():
        return None
    order = np.argsort(scores, kind="stable")
    hits = corrupted[order]
    precision = np.cumsum(hits) / np.arange(1, len(hits) + 1)
    return float(precision[hits].mean())


def detection_report(scores: dict[str, float], truth: dict[str, str]) -> dict[str, dict]:
    """AUROC / AP of one score table against the truth: all corruptions, then each kind vs clean."""
    names = sorted(scores)
    values = np.array([scores[n] for n in names])
    kinds = np.array([truth[n] for n in names])
    report = {"any": {"auroc": auroc(values, kinds != "clean"),
                      "average_precision": average_precision(values, kinds != "clean")}}
    for kind in sorted(set(kinds) - {"clean"}):
        keep = (kinds == kind) | (kinds == "clean")
        report[kind] = {"auroc": auroc(values[keep], kinds[keep] == kind),
                        "average_precision": average_precision(values[keep], kinds[keep] == kind)}
    return report
