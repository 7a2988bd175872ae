"""Per-song FAD: closed forms, identical sets, and equality with fadtk's procedure written
independently from the formula (means, np.cov ddof 1, Tr of the square root of Σ_s Σ_r, real part)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from numpy.lib.scimath import sqrt as complex_sqrt
from scipy import linalg

from stages.lib.fad import FADParams, Gaussian, ReferenceFAD, fad_score_table, fad_sqrtm_reference
from stages.lib.params import TARGETS, ParamsError, from_dict, load_section

ROOT = Path(__file__).resolve().parents[1]


def _params(**changes: object) -> FADParams:
    base = load_section(ROOT / "params.yaml", "fad_scores", FADParams)
    return dataclasses.replace(base, **changes)


def fad_from_formula(song_frames: np.ndarray, ref_frames: np.ndarray, method: str) -> float:
    """FAD written from the formula, as fadtk computes it: ``μ``, ``np.cov`` (ddof 1), no
    regulariser; ``Tr (Σ_s Σ_r)^{1/2}`` through ``scipy.linalg.sqrtm`` or through the eigenvalues
    of the (non-symmetric) product ``Σ_s Σ_r`` with a complex square root; the real part."""
    mu_s, mu_r = song_frames.mean(axis=0), ref_frames.mean(axis=0)
    cov_s = np.cov(song_frames, rowvar=False, ddof=1)
    cov_r = np.cov(ref_frames, rowvar=False, ddof=1)
    product = cov_s @ cov_r
    if method == "sqrtm":
        trace_sqrt = np.trace(linalg.sqrtm(product)).real
    else:
        trace_sqrt = np.sum(complex_sqrt(linalg.eigvals(product))).real
    diff = mu_s - mu_r
    return float(diff @ diff + np.trace(cov_s) + np.trace(cov_r) - 2.0 * trace_sqrt)


def _structured(rng: np.random.Generator, n: int, dim: int, mix: np.ndarray, shift: float = 0.0
                ) -> np.ndarray:
    """Correlated frames with a decaying spectrum, like learned embeddings."""
    return (rng.standard_normal((n, dim)) * np.linspace(1.0, 0.05, dim)) @ mix + shift


def test_identical_gaussians_give_zero() -> None:
    frames = np.random.default_rng(0).standard_normal((500, 8))
    g = Gaussian.fit(frames)
    assert ReferenceFAD(g)(g) == pytest.approx(0.0, abs=1e-8)


def test_closed_form_for_analytic_gaussians() -> None:
    # diagonal covariances: FAD = |mu1-mu2|^2 + sum (sqrt(a) - sqrt(b))^2
    a, b = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 1.0])
    g1 = Gaussian(np.array([0.0, 1.0, 2.0]), np.diag(a))
    g2 = Gaussian(np.array([1.0, 1.0, 0.0]), np.diag(b))
    expected = 1.0 + 0.0 + 4.0 + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    assert ReferenceFAD(g2)(g1) == pytest.approx(expected, rel=1e-12)
    # scalar case: FAD = (m1-m2)^2 + (s1 - s2)^2
    s1 = Gaussian(np.array([2.0]), np.array([[9.0]]))
    s2 = Gaussian(np.array([-1.0]), np.array([[1.0]]))
    assert ReferenceFAD(s2)(s1) == pytest.approx(9.0 + 4.0)


def test_fit_is_mean_and_unbiased_covariance_without_regulariser() -> None:
    frames = np.random.default_rng(3).standard_normal((7, 5))
    g = Gaussian.fit(frames)
    np.testing.assert_array_equal(g.mean, frames.mean(axis=0))
    np.testing.assert_allclose(g.cov, np.cov(frames, rowvar=False, ddof=1), rtol=0, atol=1e-15)


@pytest.mark.parametrize(("dim", "frames", "ref_frames"), [
    (24, 5, 400), (24, 40, 400), (24, 300, 400),
    (768, 899, 7192),   # MERT-95M: a 12 s song (899 frames) vs 8 reference songs
    (512, 12, 96),      # CLAP: 12 frames per 12 s song, rank-deficient song and reference
])
def test_default_fad_equals_fadtks_procedure(dim: int, frames: int, ref_frames: int) -> None:
    """With the default params (no regulariser) the fast path equals both formula routes to 1e-6."""
    rng = np.random.default_rng(dim + frames)
    mix = np.linalg.qr(rng.standard_normal((dim, dim)))[0]
    ref = _structured(rng, ref_frames, dim, mix)
    fad = ReferenceFAD(Gaussian.fit(ref))
    for seed in range(2 if dim > 100 else 3):
        song = _structured(rng, frames, dim, mix, shift=0.1 * seed) * (1 + 0.2 * seed)
        ours = fad(Gaussian.fit(song))
        assert ours == pytest.approx(fad_from_formula(song, ref, "eig"), rel=1e-6)
        assert ours == pytest.approx(fad_from_formula(song, ref, "sqrtm"), rel=1e-6)
        assert ours == pytest.approx(fad_sqrtm_reference(Gaussian.fit(song), Gaussian.fit(ref)),
                                     rel=1e-6)


def test_fad_is_non_negative_for_rank_deficient_songs() -> None:
    rng = np.random.default_rng(1)
    ref = ReferenceFAD(Gaussian.fit(rng.standard_normal((200, 16))))
    assert ref(Gaussian.fit(rng.standard_normal((3, 16)))) > 0


def test_non_finite_covariances_fail_with_the_name() -> None:
    rng = np.random.default_rng(2)
    ref = Gaussian.fit(rng.standard_normal((50, 4)))
    song = Gaussian.fit(rng.standard_normal((10, 4)))
    broken = Gaussian(song.mean, song.cov.copy())
    broken.cov[0, 0] = np.inf
    with pytest.raises(ValueError, match="song_y: FAD is not finite"):
        ReferenceFAD(ref)(broken, "song_y")
    with pytest.raises(ValueError, match="reference/vocals: covariance is not finite"):
        ReferenceFAD(broken, "reference/vocals")


@pytest.mark.parametrize("frames", [np.zeros((1, 4)), np.full((5, 4), np.nan)])
def test_bad_frames_fail_with_the_name(frames: np.ndarray) -> None:
    with pytest.raises(ValueError, match="song_x"):
        Gaussian.fit(frames, name="song_x")


def test_params_are_required() -> None:
    with pytest.raises(ParamsError, match="fad_scores.normalize: missing required key"):
        from_dict(FADParams, {}, "fad_scores")
    with pytest.raises(ParamsError, match="fad_scores.eps: unknown key"):  # the old regulariser
        from_dict(FADParams, {"eps": 1e-6, "normalize": "none"}, "fad_scores")


def test_score_table_is_minus_fad_per_stem() -> None:
    rng = np.random.default_rng(4)
    store = {f"s{i}": {t: rng.standard_normal((30, 6)) + i for t in TARGETS} for i in range(3)}
    ref = {"r0": {t: rng.standard_normal((60, 6)) for t in TARGETS}}
    table = fad_score_table(store, ref, _params(normalize="none"))
    for t in TARGETS:
        want = [-fad_from_formula(store[s][t], ref["r0"][t], "eig") for s in sorted(store)]
        np.testing.assert_allclose(table.per_target[t], want, rtol=1e-6)
