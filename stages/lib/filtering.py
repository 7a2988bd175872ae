"""Keep the top fraction r of a training set by score: unified or per target.

r ∈ (0, 1] is the proportion *retained* (the paper's convention): ``ceil(r · N)`` songs with the
highest scores are kept, ties broken by song name so the result is deterministic.

``auto_ratio`` picks r from the score distribution alone, at no training cost: a two-component
Gaussian mixture on the scores (EM, deterministic start) is compared with one Gaussian by BIC;
with no evidence of a second population everything is kept (r = 1), otherwise r is the share of
songs more likely to belong to the higher-scoring component (at least ``min_ratio``).
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np

from .params import TARGETS
from .rng import keyed_rng
from .scores import ScoreTable

Mode = Literal["unified", "per_target"]


def check_ratio(ratio: float, where: str = "ratio") -> None:
    """Raise unless ``0 < ratio <= 1``."""
    if not (0.0 < ratio <= 1.0):
        raise ValueError(f"{where}: {ratio} is outside (0, 1] (r is the proportion retained)")


def parse_ratio(text: str) -> float | Literal["auto"]:
    """A ``--ratio`` argument: ``auto`` or a proportion in (0, 1]; anything else is one error."""
    if text == "auto":
        return "auto"
    try:
        ratio = float(text)
    except ValueError:
        raise ValueError(f"--ratio {text!r}: a number in (0, 1] or 'auto'") from None
    check_ratio(ratio, "--ratio")
    return ratio


def chosen_ratio(spec: float | Literal["auto"], scores: np.ndarray, auto_min_ratio: float) -> float:
    """The proportion retained: ``spec`` itself, or :func:`auto_ratio` of ``scores``."""
    return spec if spec != "auto" else auto_ratio(scores, auto_min_ratio)


def keep_top(songs: list[str], scores: np.ndarray, ratio: float) -> list[str]:
    """The ``ceil(ratio · N)`` highest-scoring songs, sorted by name."""
    check_ratio(ratio)
    n_keep = max(1, math.ceil(ratio * len(songs) - 1e-9))
    order = sorted(range(len(songs)), key=lambda i: (-scores[i], songs[i]))
    return sorted(songs[i] for i in order[:n_keep])


def _gauss_logpdf(x: np.ndarray, mean: float, var: float) -> np.ndarray:
    return -0.5 * (np.log(2 * np.pi * var) + (x - mean) ** 2 / var)


def two_gaussians(x: np.ndarray, iters: int = 500, var_floor: float = 1e-3
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """EM for a 1-D two-component mixture on standardised ``x``.

    Returns ``(weights, means, vars, log-likelihood)``, component 1 the higher mean. Starts from
    the quartiles, so the fit is deterministic.
    """
    w = np.array([0.5, 0.5])
    mu = np.quantile(x, [0.25, 0.75]).astype(np.float64)
    var = np.full(2, max(float(np.var(x)) / 2, var_floor))
    log_lik = -np.inf
    for _ in range(iters):
        logp = np.stack([np.log(w[k]) + _gauss_logpdf(x, mu[k], var[k]) for k in range(2)])
        top = logp.max(0)
        total = top + np.log(np.exp(logp - top).sum(0))
        resp = np.exp(logp - total)
        new_log_lik = float(total.sum())
        nk = resp.sum(1) + 1e-12
        w = nk / len(x)
        mu = (resp * x).sum(1) / nk
        var = np.maximum((resp * (x - mu[:, None]) ** 2).sum(1) / nk, var_floor)
        if new_log_lik - log_lik < 1e-9:
            log_lik = new_log_lik
            break
        log_lik = new_log_lik
    order = np.argsort(mu)
    return w[order], mu[order], var[order], log_lik


def auto_ratio(scores: np.ndarray, min_ratio: float = 0.25) -> float:
    """Proportion retained chosen from the scores alone (see the module docstring)."""
    check_ratio(min_ratio, "min_ratio")
    x = np.asarray(scores, dtype=np.float64)
    if len(x) < 4 or float(np.std(x)) == 0.0:
        return 1.0
    x = (x - x.mean()) / x.std()
    n = len(x)
    one = float(_gauss_logpdf(x, 0.0, 1.0).sum())
    w, mu, var, two = two_gaussians(x)
    bic_one, bic_two = 2 * np.log(n) - 2 * one, 5 * np.log(n) - 2 * two
    if bic_two >= bic_one:
        return 1.0
    logp = np.stack([np.log(w[k]) + _gauss_logpdf(x, mu[k], var[k]) for k in range(2)])
    kept = int((logp[1] >= logp[0]).sum())
    return max(min_ratio, kept / n)


def random_table(songs: list[str], draw: int) -> ScoreTable:
    """The random-removal control: every song scored by its own uniform draw, keyed by
    ``(draw, song name)``, so a draw's kept set does not depend on the order songs are listed in,
    and the sets kept at two ratios are nested."""
    unified = np.array([keyed_rng(draw, "random removal", s).random() for s in songs])
    return ScoreTable(list(songs), {t: unified for t in TARGETS}, unified)


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
