"""Separation with trained target models and SDR scoring (BSSEval v4 and MDX global SDR).

The BSSEval v4 SDR (museval's ``evaluate(..., mode="v4")``) is the paper's metric: 1 s windows,
median over the windows of a song (windows where any reference or estimate is silent are NaN and
skipped, museval's rule), then median over songs per target. The MDX global SDR
(``10 log10(Σs² / Σ(s − ŝ)²)`` per song) is the challenge metric. Scoring runs in worker
processes, one song each; results equal a serial run.

BSSEval v4 *image* SDR needs none of museval's distortion filters: its true-source term is the
reference itself, and the three error terms sum to ``estimate − reference``, so per window
``SDR = 10 log10(Σ s² / Σ (ŝ − s)²)``. ``bsseval_v4_sdr`` computes exactly that with museval's
framing, padding and silence rules (tests compare it with museval on random signals to 1e-9 dB);
museval spends ≈ 95 % of its time on the projection filters that only ISR / SIR / SAR need.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .audio import Track
from .io import read_json
from .params import TARGETS, check
from .unmix import load_model, read_weights

log = logging.getLogger(__name__)

MDX_DELTA = 1e-7  # the MDX challenge's regulariser, keeps silent references finite


@dataclass(frozen=True)
class EvalParams:
    """``evaluate`` section: Wiener iterations and BSSEval scoring windows."""

    niter: int
    wiener_win_len: int
    window_seconds: float
    museval: bool

    def __post_init__(self) -> None:
        check(self.niter >= 0, "evaluate.niter", "must be >= 0")
        check(self.wiener_win_len >= 1, "evaluate.wiener_win_len", "must be >= 1")
        check(0 < self.window_seconds <= 600, "evaluate.window_seconds", "must be in (0, 600] s")


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


def bsseval_v4_sdr(references: np.ndarray, estimates: np.ndarray, win: int, hop: int) -> np.ndarray:
    """museval's ``evaluate(references, estimates, win, hop, mode="v4")[0]``: SDR ``[nsrc, nwin]``.

    ``references`` / ``estimates`` are ``[nsrc, nsampl, nchan]``; estimates are cut or zero-padded
    to the references' length; windows ``[t·hop, t·hop + win)`` (the incomplete tail is dropped
    unless the signal is shorter than one window); a window where any source of either side is
    silent (its channel sum is zero throughout) is NaN for every source. The one difference: a
    window reconstructed exactly gives +inf where museval's filters leave ≈ 340 dB of rounding.
    """
    refs = np.asarray(references, dtype=np.float64)
    ests = np.asarray(estimates, dtype=np.float64)
    n = refs.shape[1]
    if ests.shape[1] >= n:
        ests = ests[:, :n]
    else:
        ests = np.pad(ests, [(0, 0), (0, n - ests.shape[1]), (0, 0)])
    nwin = int(np.floor((n - win + hop) / hop)) if win < n else 1
    out = np.full((refs.shape[0], nwin), np.nan)
    for t in range(nwin):
        window = slice(t * hop, min(t * hop + win, n))
        ref, est = refs[:, window], ests[:, window]
        if _any_silent(ref) or _any_silent(est):
            continue
        num = np.sum(ref**2, axis=(1, 2))
        den = np.sum((est - ref) ** 2, axis=(1, 2))
        with np.errstate(divide="ignore"):
            out[:, t] = np.where(den == 0, np.inf, 10 * np.log10(num / np.where(den == 0, 1, den)))
    return out


def _any_silent(sources: np.ndarray) -> bool:
    """museval's rule: a source is silent when its channel sum is zero at every sample."""
    return bool(np.any(np.all(np.sum(sources, axis=2) == 0, axis=1)))


def museval_sdr(references: dict[str, np.ndarray], estimates: dict[str, np.ndarray],
                sample_rate: int, window_seconds: float = 1.0) -> dict[str, float | None]:
    """BSSEval v4 SDR per target: median over windows (silent windows are skipped).

    A target whose reference is silent throughout has no defined SDR and gets ``None``.
    """
    win = int(round(window_seconds * sample_rate))
    # museval refuses an all-zero reference; BSSEval v4 image SDR of a stem depends only on its
    # own reference, so silent stems are left out and reported as undefined.
    active = [t for t in TARGETS if np.any(references[t])]
    out: dict[str, float | None] = dict.fromkeys(TARGETS)
    if not active:
        return out
    refs = np.stack([references[t].T for t in active])
    ests = np.stack([estimates[t].T for t in active])
    sdr = bsseval_v4_sdr(refs, ests, win, win)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices
        for i, target in enumerate(active):
            out[target] = float(np.nanmedian(sdr[i])) if np.isfinite(sdr[i]).any() else None
    return out


@dataclass(frozen=True)
class ScoreJob:
    """One song to score: references and estimates ``{target: [2, samples]}``, and how."""

    name: str
    references: dict[str, np.ndarray]
    estimates: dict[str, np.ndarray]
    sample_rate: int
    window_seconds: float
    museval: bool  # the BSSEval v4 SDR as well as the MDX SDR


def score_song(job: ScoreJob) -> dict:
    """Both SDRs of one song: ``{"song", "mdx_sdr_db": {t: dB}, "museval_sdr_db": {t: dB|None}}``."""
    row: dict = {"song": job.name, "mdx_sdr_db": {t: mdx_sdr(job.references[t], job.estimates[t])
                                                  for t in TARGETS}}
    if job.museval:
        row["museval_sdr_db"] = museval_sdr(job.references, job.estimates, job.sample_rate,
                                            job.window_seconds)
    return row


def _score_in_worker(job: ScoreJob) -> dict:
    torch.set_num_threads(1)
    return score_song(job)


def score_songs(jobs: list[ScoreJob], workers: int) -> list[dict]:
    """Score songs, in parallel when ``workers > 1``.

    Results come back in job order and equal a serial run (each job is a pure function).
    """
    if workers <= 1 or len(jobs) <= 1:
        return [score_song(job) for job in jobs]
    with ProcessPoolExecutor(max_workers=min(workers, len(jobs))) as pool:
        return list(pool.map(_score_in_worker, jobs))


def score_tracks(tracks: Iterable[Track], separator: torch.nn.Module | None, params: EvalParams,
                 sample_rate: int, device: torch.device, workers: int) -> list[dict]:
    """Separate each test track with ``separator`` and score it; ``separator=None`` scores the
    mixture itself as every stem's estimate (the trivial lower bound)."""
    return score_songs(_jobs(tracks, separator, params, sample_rate, device), workers)


def _jobs(tracks: Iterable[Track], separator: torch.nn.Module | None, params: EvalParams,
          sample_rate: int, device: torch.device) -> list[ScoreJob]:
    return [ScoreJob(track.name, track.stems,
                     ({t: track.mixture for t in track.stems} if separator is None
                      else separate(separator, track.mixture, device)),
                     sample_rate, params.window_seconds, params.museval) for track in tracks]


def check_model_folder(folder: Path) -> None:
    """A trained model folder: ``model.json`` with a config and one readable weights file per
    target (checked for every model before any song is separated: a bad one fails first)."""
    needed = [folder / "model.json", *(folder / f"{t}.pth" for t in TARGETS)]
    missing = [path for path in needed if not path.is_file()]
    if missing:
        raise FileNotFoundError(f"{missing[0]}: not found (a trained model folder holds model.json "
                                f"and {', '.join(f'{t}.pth' for t in TARGETS)})")
    if not isinstance(read_json(folder / "model.json").get("config"), dict):
        raise ValueError(f"{folder / 'model.json'}: no 'config' mapping (not a model folder's)")
    for target in TARGETS:
        read_weights(folder / f"{target}.pth")


def score_models(models: Sequence[Path | None], tracks: Callable[[str], Iterable[Track]],
                 names: Sequence[str], params: EvalParams, sample_rate: int,
                 device: torch.device, workers: int) -> Iterator[list[dict]]:
    """Each model folder's song rows in turn (``None``: the trivial estimate), as
    :func:`score_tracks` gives them; ``tracks(name)`` reads the test songs for model ``name``.

    One pool of ``workers`` scoring processes serves every model, and a model separates its
    songs while the previous model's are scored (memory: two models' estimates). Each row is a
    pure function of its song and model, so the results equal a serial run.
    """
    pool = ProcessPoolExecutor(max_workers=workers) if workers > 1 else None
    pending: list[Future] | None = None
    try:
        for model, name in zip(models, names, strict=True):
            separator = (None if model is None else
                         load_separator(model, params.niter, params.wiener_win_len, device))
            jobs = _jobs(tracks(name), separator, params, sample_rate, device)
            if pool is None:  # nothing to overlap: score now, hold one model's estimates
                yield [score_song(job) for job in jobs]
                continue
            current = [pool.submit(_score_in_worker, job) for job in jobs]
            if pending is not None:
                yield _rows(pending)
            pending = current
        if pending is not None:
            yield _rows(pending)
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)


def _rows(pending: list[Future]) -> list[dict]:
    """Rows of submitted jobs, in job order."""
    return [future.result() for future in pending]


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
