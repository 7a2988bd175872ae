"""Per-song Fréchet Audio Distance against a clean reference set (the paper's Method 2).

``FAD(s, r) = ‖μ_s − μ_r‖² + Tr Σ_s + Tr Σ_r − 2 Tr (Σ_s Σ_r)^{1/2}``, where (s) is the Gaussian
of one song's embedding frames and (r) the Gaussian of all frames of all reference songs.

Numerics: the reference statistics, including ``Σ_r^{1/2}`` (symmetric, from ``eigh``), are
computed once; then per song ``Tr (Σ_s Σ_r)^{1/2} = Σ_k sqrt(λ_k)`` over the eigenvalues of the
symmetric PSD matrix ``Σ_r^{1/2} Σ_s Σ_r^{1/2}`` (similar to ``Σ_s Σ_r``), negative round-off
eigenvalues clipped to 0. Both covariances get ``eps · I`` added (documented regulariser: a song
has few frames, so ``Σ_s`` is often rank-deficient). That is one ``eigvalsh`` per song instead of
a general ``sqrtm`` of a non-symmetric product.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from .params import TARGETS, check
from .scores import ScoreTable, zscore

DEFAULT_EPS = 1e-6


@dataclass
class Gaussian:
    """Mean ``[D]`` and covariance ``[D, D]`` (float64) of a set of frames."""

    mean: np.ndarray
    cov: np.ndarray

    @classmethod
    def fit(cls, frames: np.ndarray, eps: float = DEFAULT_EPS, name: str = "frames") -> Gaussian:
        """Fit to ``[T, D]`` frames (T ≥ 2); ``eps · I`` is added to the covariance."""
        frames = np.asarray(frames, dtype=np.float64)
        if frames.ndim != 2 or frames.shape[0] < 2:
            raise ValueError(f"{name}: need at least 2 embedding frames, got {frames.shape[0]}")
        if not np.isfinite(frames).all():
            raise ValueError(f"{name}: NaN or infinite embedding values")
        cov = np.cov(frames, rowvar=False)
        cov = (cov + cov.T) / 2 + eps * np.eye(frames.shape[1])
        return cls(frames.mean(axis=0), cov)


class ReferenceFAD:
    """FAD of many songs against one reference Gaussian, with ``Σ_r^{1/2}`` precomputed."""

    def __init__(self, reference: Gaussian):
        self.ref = reference
        vals, vecs = np.linalg.eigh(reference.cov)
        self.sqrt_cov = (vecs * np.sqrt(np.clip(vals, 0, None))) @ vecs.T
        self.trace_ref = float(np.trace(reference.cov))

    def __call__(self, song: Gaussian) -> float:
        """FAD of one song's Gaussian."""
        inner = self.sqrt_cov @ song.cov @ self.sqrt_cov
        eig = np.linalg.eigvalsh((inner + inner.T) / 2)
        trace_sqrt = float(np.sqrt(np.clip(eig, 0, None)).sum())
        diff = song.mean - self.ref.mean
        return float(diff @ diff + np.trace(song.cov) + self.trace_ref - 2.0 * trace_sqrt)


def fad_sqrtm_reference(song: Gaussian, ref: Gaussian) -> float:
    """The textbook computation with ``scipy.linalg.sqrtm(Σ_s Σ_r)`` (slow; for tests/benchmarks)."""
    from scipy.linalg import sqrtm

    covmean = sqrtm(song.cov @ ref.cov)
    covmean = np.real(covmean)
    diff = song.mean - ref.mean
    return float(diff @ diff + np.trace(song.cov) + np.trace(ref.cov) - 2.0 * np.trace(covmean))


@dataclass(frozen=True)
class FADParams:
    """``fad_scores`` section."""

    eps: float = DEFAULT_EPS
    normalize: Literal["zscore", "none"] = "zscore"

    def __post_init__(self) -> None:
        check(self.eps >= 0, "fad_scores.eps", "must be >= 0")


def unify(per_target: dict[str, np.ndarray], normalize: str) -> np.ndarray:
    """Mean over targets, optionally of per-target z-scores."""
    cols = []
    for t in TARGETS:
        cols.append(zscore(per_target[t]) if normalize == "zscore" else per_target[t])
    return np.mean(cols, axis=0)


def fad_score_table(train: dict[str, dict[str, np.ndarray]], reference: dict[str, dict[str, np.ndarray]],
                    params: FADParams) -> ScoreTable:
    """Score = −FAD of each song's stem frames against all reference frames of that stem."""
    songs = sorted(train)
    per_target = {}
    for target in TARGETS:
        frames = np.concatenate([reference[s][target] for s in sorted(reference)])
        fad = ReferenceFAD(Gaussian.fit(frames, params.eps, f"reference/{target}"))
        per_target[target] = -np.array([
            fad(Gaussian.fit(train[s][target], params.eps, f"{s}/{target}")) for s in songs])
    return ScoreTable(songs, per_target, unify(per_target, params.normalize))
