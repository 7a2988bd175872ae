"""Separation with trained target models and SDR scoring (museval BSSEval v4 and MDX global SDR).

``museval`` SDR is the paper's metric: BSSEval v4 on 1 s windows, median over the windows of a
song (windows where the reference is silent are NaN and skipped, museval's rule), then median over
songs per target. The MDX global SDR (``10 log10(Σs² / Σ(s − ŝ)²)`` per song) is the challenge
metric and far cheaper. Scoring runs in worker processes, one song each; results equal a serial run.
"""

from __future__ import annotations

import logging
import math
import warnings
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .io import read_json
from .params import TARGETS, check
from .unmix import load_model

log = logging.getLogger(__name__)

MDX_DELTA = 1e-7  # the MDX challenge's regulariser, keeps silent references finite


@dataclass(frozen=True)
class EvalParams:
    """``evaluate`` section: Wiener iterations, scoring windows and worker processes."""

    niter: int = 1
    wiener_win_len: int = 300
    window_seconds: float = 1.0
    workers: int = 2
    museval: bool = True
    device: str = "auto"

    def __post_init__(self) -> None:
        check(self.niter >= 0, "evaluate.niter", "must be >= 0")
        check(self.wiener_win_len >= 1, "evaluate.wiener_win_len", "must be >= 1")
        check(self.window_seconds > 0, "evaluate.window_seconds", "must be > 0")
        check(self.workers >= 1, "evaluate.workers", "must be >= 1")


def load_separator(model_dir: Path, niter: int, wiener_win_len: int,
                   device: torch.device) -> torch.nn.Module:
    """An ``openunmix.model.Separator`` over the four saved target models of ``model_dir``."""
    from openunmix.model import Separator

    info = read_json(model_dir / "model.json")
    config = info["config"]
    models = {t: load_model(model_dir / f"{t}.pth", config) for t in TARGETS}
    separator = Separator(models, niter=niter, softmask=False, residual=False,
                          sample_rate=float(config["sample_rate"]), n_fft=config["n_fft"],
                          n_hop=config["hop"], nb_channels=2, wiener_win_len=wiener_win_len)
    separator.freeze()
    return separator.to(device)


def separate(separator: torch.nn.Module, mixture: np.ndarray,
             device: torch.device) -> dict[str, np.ndarray]:
    """Estimate the four stems ``[2, samples]`` of a ``[2, samples]`` mixture."""
    with torch.no_grad():
        out = separator(torch.from_numpy(np.ascontiguousarray(mixture))[None].to(device))
    estimates = out[0].cpu().numpy().astype(np.float32)
    return {t: estimates[i] for i, t in enumerate(TARGETS)}


def mdx_sdr(reference: np.ndarray, estimate: np.ndarray) -> float:
    """MDX global SDR in dB: ``10 log10((δ + Σs²) / (δ + Σ(s − ŝ)²))`` over the whole song."""
    ref = reference.astype(np.float64)
    err = ref - estimate.astype(np.float64)
    return float(10.0 * np.log10((MDX_DELTA + np.sum(ref**2)) / (MDX_DELTA + np.sum(err**2))))


def museval_sdr(references: dict[str, np.ndarray], estimates: dict[str, np.ndarray],
                sample_rate: int, window_seconds: float = 1.0) -> dict[str, float | None]:
    """BSSEval v4 SDR per target: median over windows (silent-reference windows are skipped).

    A target whose reference is silent throughout has no defined SDR and gets ``None``.
    """
    import museval

    win = int(round(window_seconds * sample_rate))
    # museval refuses an all-zero reference; BSSEval v4 image SDR of a stem depends only on its
    # own reference, so silent stems are left out and reported as undefined.
    active = [t for t in TARGETS if np.any(references[t])]
    out: dict[str, float | None] = dict.fromkeys(TARGETS)
    if not active:
        return out
    refs = np.stack([references[t].T for t in active]).astype(np.float64)
    ests = np.stack([estimates[t].T for t in active]).astype(np.float64)
    sdr, _, _, _ = museval.evaluate(refs, ests, win=win, hop=win, mode="v4")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices
        for i, target in enumerate(active):
            out[target] = float(np.nanmedian(sdr[i])) if np.isfinite(sdr[i]).any() else None
    return out


def score_song(name: str, references: dict[str, np.ndarray], estimates: dict[str, np.ndarray],
               sample_rate: int, window_seconds: float, use_museval: bool) -> dict:
    """Both SDRs of one song: ``{"song", "mdx_sdr_db": {t: dB}, "museval_sdr_db": {t: dB|None}}``."""
    row: dict = {"song": name,
                 "mdx_sdr_db": {t: mdx_sdr(references[t], estimates[t]) for t in TARGETS}}
    if use_museval:
        row["museval_sdr_db"] = museval_sdr(references, estimates, sample_rate, window_seconds)
    return row


def _score_job(job: tuple) -> dict:
    torch.set_num_threads(1)
    return score_song(*job)


def score_songs(jobs: list[tuple], workers: int) -> list[dict]:
    """Score ``(name, refs, ests, sr, window, museval)`` jobs, in parallel when ``workers > 1``.

    Results come back in job order and equal a serial run (each job is a pure function).
    """
    if workers <= 1 or len(jobs) <= 1:
        return [score_song(*job) for job in jobs]
    with ProcessPoolExecutor(max_workers=min(workers, len(jobs))) as pool:
        return list(pool.map(_score_job, jobs))


def median_or_none(values: list[float | None]) -> float | None:
    """Median of the defined values (``None`` and NaN skipped); ``None`` when none is defined."""
    finite = [v for v in values if v is not None and math.isfinite(v)]
    return float(np.median(finite)) if finite else None


def summarize(rows: list[dict]) -> dict[str, float | None]:
    """Per-target median over songs, and ``avg`` = mean of the four targets, for each metric."""
    metrics: dict[str, float | None] = {}
    for metric in ("museval_sdr_db", "mdx_sdr_db"):
        if not rows or metric not in rows[0]:
            continue
        per_target = {t: median_or_none([r[metric][t] for r in rows]) for t in TARGETS}
        for target, value in per_target.items():
            metrics[f"{metric}_{target}"] = value
        defined = [v for v in per_target.values() if v is not None]
        metrics[f"{metric}_avg"] = float(np.mean(defined)) if len(defined) == len(TARGETS) else None
    metrics["n_songs"] = len(rows)
    return metrics
