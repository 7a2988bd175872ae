"""Per-song Fréchet Audio Distance against a clean reference set (the paper's Method 2).

``FAD(s, r) = ‖μ_s − μ_r‖² + Tr Σ_s + Tr Σ_r − 2 Tr (Σ_s Σ_r)^{1/2}``, where (s) is the Gaussian
of one song's embedding frames and (r) the Gaussian of all frames of all reference songs.

Conventions are fadtk's (``fadtk.fad.calc_frechet_distance``): means, ``np.cov`` with ddof 1,
no regulariser, ``Tr (Σ_s Σ_r)^{1/2}`` = real part of ``Σ_k sqrt(λ_k)`` over the eigenvalues of
``Σ_s Σ_r``. fadtk adds ``1e-6 · I`` to both covariances only when its eigenvector route returns a
non-finite matrix (an overflowing inverse of the eigenvector matrix); the route used here has no
such inverse and is finite whenever the matrix products are, so there is no regulariser at all, and
a non-finite result (only from overflowing covariances) is an error naming the song. See
docs/embeddings.md.

Numerics: the reference statistics, including ``Σ_r^{1/2}`` (symmetric, from ``eigh``), are
computed once; then per song the eigenvalues of ``Σ_s Σ_r`` are those of the symmetric PSD matrix
``Σ_r^{1/2} Σ_s Σ_r^{1/2}`` (similar to it), from one ``eigvalsh``. Negative round-off eigenvalues
count 0, which is the real part of their complex square root, as in fadtk. Equality with the
textbook ``scipy.linalg.sqrtm`` and with fadtk's eigenvalue route is tested (tests/test_fad.py);
the speed is measured in tests/benchmarks/bench_fad.py.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from .params import TARGETS
from .scores import ScoreTable, zscore


@dataclass
class Gaussian:
    """Mean ``[D]`` and covariance ``[D, D]`` (float64) of a set of frames."""

    mean: np.ndarray
    cov: np.ndarray

    @classmethod
    def fit(cls, frames: np.ndarray, name: str = "frames") -> Gaussian:
        """Fit to ``[T, D]`` frames (T ≥ 2): mean and ``np.cov`` (ddof 1), no regulariser."""
        frames = np.asarray(frames, dtype=np.float64)
        if frames.ndim != 2 or frames.shape[0] < 2:
            got = frames.shape[0] if frames.ndim else 0
            raise ValueError(f"{name}: need at least 2 embedding frames, got {got}")
        if not np.isfinite(frames).all():
            raise ValueError(f"{name}: NaN or infinite embedding values")
        cov = np.cov(frames, rowvar=False).reshape(frames.shape[1], frames.shape[1])
        return cls(frames.mean(axis=0), (cov + cov.T) / 2)


def _sym_sqrt(cov: np.ndarray) -> np.ndarray:
    vals, vecs = np.linalg.eigh(cov)
    return (vecs * np.sqrt(np.clip(vals, 0, None))) @ vecs.T


def _trace_sqrt_product(sqrt_ref: np.ndarray, song_cov: np.ndarray) -> float:
    """``Re Tr (Σ_s Σ_r)^{1/2}`` from the eigenvalues of ``Σ_r^{1/2} Σ_s Σ_r^{1/2}``."""
    inner = sqrt_ref @ song_cov @ sqrt_ref
    if not np.isfinite(inner).all():
        return math.nan
    eig = np.linalg.eigvalsh((inner + inner.T) / 2)
    return float(np.sqrt(np.clip(eig, 0, None)).sum())


class ReferenceFAD:
    """FAD of many songs against one reference Gaussian, with ``Σ_r^{1/2}`` precomputed."""

    def __init__(self, reference: Gaussian, name: str = "reference"):
        self.ref = reference
        if not np.isfinite(reference.cov).all():
            raise ValueError(f"{name}: covariance is not finite (embedding values overflow)")
        self.sqrt_cov = _sym_sqrt(reference.cov)
        self.trace_ref = float(np.trace(reference.cov))

    def __call__(self, song: Gaussian, name: str = "song") -> float:
        """FAD of one song's Gaussian (fadtk's conventions)."""
        trace_sqrt = _trace_sqrt_product(self.sqrt_cov, song.cov)
        if not math.isfinite(trace_sqrt):
            raise ValueError(f"{name}: FAD is not finite (covariances overflow?)")
        diff = song.mean - self.ref.mean
        return float(diff @ diff + np.trace(song.cov) + self.trace_ref - 2.0 * trace_sqrt)


def fad_sqrtm_reference(song: Gaussian, ref: Gaussian) -> float:
    """The textbook computation with ``scipy.linalg.sqrtm(Σ_s Σ_r)``, real part (slow; tests)."""
    from scipy.linalg import sqrtm

    covmean = np.real(sqrtm(song.cov @ ref.cov))
    diff = song.mean - ref.mean
    return float(diff @ diff + np.trace(song.cov) + np.trace(ref.cov) - 2.0 * np.trace(covmean))


@dataclass(frozen=True)
class FADParams:
    """``fad_scores`` section (every key required). There is no regulariser key: see above."""

    normalize: Literal["zscore", "none"]


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
        fad = ReferenceFAD(Gaussian.fit(frames, f"reference/{target}"), f"reference/{target}")
        per_target[target] = -np.array([
            fad(Gaussian.fit(train[s][target], f"{s}/{target}"), f"{s}/{target}") for s in songs])
    return ScoreTable(songs, per_target, unify(per_target, params.normalize))
