"""SDR functions against closed forms and against museval itself; parallel scoring, and scoring
several models through one pool, equal serial scoring."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from stages.lib.audio import Track
from stages.lib.evaluation import (
    EvalParams,
    ScoreJob,
    bsseval_v4_sdr,
    mdx_sdr,
    median_or_none,
    museval_sdr,
    score_models,
    score_songs,
    score_tracks,
    summarize,
)
from stages.lib.params import TARGETS

SR = 8000


def _signals(seed: int = 0, seconds: float = 2.0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {t: rng.standard_normal((2, int(seconds * SR))).astype(np.float32) * 0.1
            for t in TARGETS}


def test_mdx_sdr_of_a_scaled_copy() -> None:
    ref = _signals()["vocals"]
    assert mdx_sdr(ref, 0.5 * ref) == pytest.approx(10 * np.log10(4.0), abs=1e-4)


def test_mdx_sdr_at_a_known_snr() -> None:
    ref = _signals()["bass"].astype(np.float64)
    noise = np.random.default_rng(1).standard_normal(ref.shape)
    noise *= np.sqrt(np.sum(ref**2) / np.sum(noise**2) / 100.0)  # exactly 20 dB below
    assert mdx_sdr(ref, ref + noise) == pytest.approx(20.0, abs=1e-3)


def test_museval_perfect_and_noisy_estimates() -> None:
    refs = _signals()
    rng = np.random.default_rng(2)
    near = {t: a + 1e-4 * rng.standard_normal(a.shape).astype(np.float32) for t, a in refs.items()}
    assert all(v > 50 for v in museval_sdr(refs, near, SR).values())  # 60 dB SNR
    noisy = {t: a + 0.1 * rng.standard_normal(a.shape).astype(np.float32) for t, a in refs.items()}
    scores = museval_sdr(refs, noisy, SR)
    assert all(-5 < v < 5 for v in scores.values())  # 0 dB SNR, within the projection's slack


@pytest.mark.parametrize("case", ["plain", "silent_windows", "longer_estimate", "shorter_estimate",
                                  "short_signal", "hop_overlap", "perfect_window"])
def test_bsseval_v4_sdr_equals_museval(case: str) -> None:
    """The closed form equals museval's BSSEval v4 (images, v4 filters) window by window,
    including its framing, padding and silence rules."""
    import museval

    rng = np.random.default_rng(len(case))
    n, win, hop = 2500, 400, 400
    refs = rng.standard_normal((3, n, 2))
    ests = 0.7 * refs + 0.3 * refs[[1, 2, 0]] + 0.2 * rng.standard_normal((3, n, 2))
    ests[0] = np.convolve(refs[0, :, 0], [0.5, 0.3, 0.2], mode="same")[:, None]  # filtered
    if case == "silent_windows":
        refs[1, 400:800] = 0.0                  # a silent reference window
        ests[2, 1200:1600] = 0.0                # a silent estimate window
        refs[0, 1600:2000, 1] = -refs[0, 1600:2000, 0]  # channel sum zero: museval calls it silent
    elif case == "longer_estimate":
        ests = np.concatenate([ests, rng.standard_normal((3, 300, 2))], axis=1)
    elif case == "shorter_estimate":
        ests = ests[:, :2100]
    elif case == "short_signal":
        win = hop = 4000                        # one window longer than the signal
    elif case == "hop_overlap":
        hop = 250
    elif case == "perfect_window":
        ests[:, 0:400] = refs[:, 0:400]         # error exactly zero (see the end)
    expected = museval.evaluate(refs, ests, win=win, hop=hop, mode="v4")[0]
    got = bsseval_v4_sdr(refs, ests, win, hop)
    assert got.shape == expected.shape
    if case == "perfect_window":  # the one difference: museval's filters leave rounding noise
        assert np.isinf(got[:, 0]).all() and (expected[:, 0] > 300).all()
        got, expected = got[:, 1:], expected[:, 1:]
    np.testing.assert_array_equal(np.isnan(got), np.isnan(expected))
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-9)
    if case == "silent_windows":
        assert np.isnan(got[:, [1, 3, 4]]).all() and np.isfinite(got[:, [0, 2, 5]]).all()


def test_silent_stem_gives_none_not_nan() -> None:
    refs = _signals()
    refs["drums"] = np.zeros_like(refs["drums"])
    rng = np.random.default_rng(3)
    ests = {t: a + 0.01 * rng.standard_normal(a.shape).astype(np.float32)
            for t, a in refs.items()}
    scores = museval_sdr(refs, ests, SR)
    assert scores["drums"] is None and all(scores[t] is not None for t in ("vocals", "bass"))
    rows = [{"song": "a", "museval_sdr_db": scores, "mdx_sdr_db": {t: 1.0 for t in TARGETS}}]
    summary = summarize(rows)
    assert summary["museval_sdr_db_drums"] is None and summary["museval_sdr_db_avg"] is None
    assert summary["mdx_sdr_db_avg"] == 1.0


def test_median_skips_undefined() -> None:
    assert median_or_none([1.0, None, float("nan"), 3.0]) == 2.0
    assert median_or_none([None]) is None


def test_parallel_scoring_equals_serial() -> None:
    jobs = []
    for i in range(3):
        refs = _signals(seed=i, seconds=1.5)
        ests = {t: 0.9 * a for t, a in refs.items()}
        jobs.append(ScoreJob(f"song{i}", refs, ests, SR, 1.0, True))
    assert score_songs(jobs, workers=2) == score_songs(jobs, workers=1)


def test_several_models_through_one_pool_equal_each_scored_alone() -> None:
    params = EvalParams(niter=0, wiener_win_len=300, window_seconds=0.5, museval=True)
    cpu = torch.device("cpu")

    def tracks(name: str) -> list[Track]:  # each "model" sees other songs: rows must not mix
        seed = int(name[4:])
        return [Track(f"{name}-song{i}", _signals(seed=10 * seed + i, seconds=1.0), SR)
                for i in range(2)]

    names = ["seed0", "seed1", "seed2"]
    alone = [score_tracks(tracks(n), None, params, SR, cpu, workers=1) for n in names]
    for workers in (1, 2):
        assert list(score_models([None] * 3, tracks, names, params, SR, cpu, workers)) == alone
