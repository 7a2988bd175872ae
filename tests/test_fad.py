"""Per-song FAD: closed forms, identical sets, equality with the sqrtm reference."""

from __future__ import annotations

import numpy as np
import pytest

from stages.lib.fad import Gaussian, ReferenceFAD, fad_sqrtm_reference


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


@pytest.mark.parametrize("frames", [5, 40, 300])
def test_equals_sqrtm_reference(frames: int) -> None:
    rng = np.random.default_rng(frames)
    ref = Gaussian.fit(rng.standard_normal((400, 24)) @ rng.standard_normal((24, 24)))
    fad = ReferenceFAD(ref)
    for seed in range(3):
        song = Gaussian.fit(rng.standard_normal((frames, 24)) * (1 + seed) + seed)
        assert fad(song) == pytest.approx(fad_sqrtm_reference(song, ref), rel=1e-6)


def test_fad_is_non_negative_for_rank_deficient_songs() -> None:
    rng = np.random.default_rng(1)
    ref = ReferenceFAD(Gaussian.fit(rng.standard_normal((200, 16))))
    assert ref(Gaussian.fit(rng.standard_normal((3, 16)))) > 0


@pytest.mark.parametrize("frames", [np.zeros((1, 4)), np.full((5, 4), np.nan)])
def test_bad_frames_fail_with_the_name(frames: np.ndarray) -> None:
    with pytest.raises(ValueError, match="song_x"):
        Gaussian.fit(frames, name="song_x")
