"""Open-Unmix training: one independent model per target, checkpointed every epoch.

The training loop follows ``openunmix/train.py``: magnitude spectrograms from openunmix's own
STFT (``center=False``) and ``ComplexNorm``, an input scaler fitted on the training mixtures, MSE
on magnitudes, Adam + ReduceLROnPlateau, and no early stopping: every configured epoch runs and
the weights with the best validation loss on the clean reference set are kept (the paper's
protocol). A checkpoint (model, optimiser, scheduler, RNG states, history) is written atomically
after every epoch; a re-run with the same configuration resumes from it and ends bit-identical
to an uninterrupted run on the CPU.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from openunmix.model import OpenUnmix
from openunmix.transforms import ComplexNorm, make_filterbanks
from openunmix.utils import bandwidth_to_max_bin
from tqdm import tqdm

from .data import ExcerptSampler, SamplerParams, StemBank
from .io import atomic_path
from .params import TARGETS, as_plain, check

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelParams:
    """Open-Unmix architecture and STFT (paper profile: 4096 / 1024 / 512 / 3 layers / 16 kHz)."""

    n_fft: int = 2048
    hop: int = 512
    hidden_size: int = 64
    nb_layers: int = 1
    bandwidth_hz: float = 16000.0
    unidirectional: bool = False

    def __post_init__(self) -> None:
        check(self.n_fft >= 64 and self.n_fft & (self.n_fft - 1) == 0, "train.model.n_fft",
              "must be a power of two >= 64")
        check(0 < self.hop <= self.n_fft, "train.model.hop", "must be in (0, n_fft]")
        check(self.hidden_size >= 2 and self.hidden_size % 2 == 0, "train.model.hidden_size",
              "must be an even number >= 2")
        check(self.nb_layers >= 1, "train.model.nb_layers", "must be >= 1")
        check(self.bandwidth_hz > 0, "train.model.bandwidth_hz", "must be > 0")


@dataclass(frozen=True)
class TrainParams:
    """``train`` section: optimisation, schedule and data augmentation."""

    model: ModelParams = field(default_factory=ModelParams)
    sampler: SamplerParams = field(default_factory=SamplerParams)
    epochs: int = 20
    batch_size: int = 16
    steps_per_epoch: int | None = None
    lr: float = 1e-3
    weight_decay: float = 1e-5
    lr_decay_patience: int = 80
    lr_decay_gamma: float = 0.3
    device: Literal["auto", "cpu", "cuda"] = "auto"
    threads: int = 1
    workers: int = 2

    def __post_init__(self) -> None:
        check(self.epochs >= 1, "train.epochs", "must be >= 1")
        check(self.batch_size >= 1, "train.batch_size", "must be >= 1")
        check(self.steps_per_epoch is None or self.steps_per_epoch >= 1, "train.steps_per_epoch",
              "must be null (Open-Unmix: samples_per_track per song) or >= 1")
        check(self.lr > 0, "train.lr", "must be > 0")
        check(self.weight_decay >= 0, "train.weight_decay", "must be >= 0")
        check(0 < self.lr_decay_gamma <= 1, "train.lr_decay_gamma", "must be in (0, 1]")
        check(self.threads >= 1, "train.threads", "must be >= 1")
        check(self.workers >= 1, "train.workers", "must be >= 1")


def select_device(preference: str = "auto") -> torch.device:
    """``cuda`` when asked for or available (``auto``), else the CPU."""
    if preference == "cuda" and not torch.cuda.is_available():
        raise ValueError("train.device: 'cuda' requested but no CUDA device is available")
    if preference == "auto":
        preference = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(preference)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch, and ask torch for deterministic kernels."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)


def spectrogram(n_fft: int, hop: int, center: bool = False) -> torch.nn.Module:
    """Openunmix's magnitude spectrogram: ``[B, 2, samples] -> [B, 2, bins, frames]``."""
    stft, _ = make_filterbanks(n_fft=n_fft, n_hop=hop, center=center)
    return torch.nn.Sequential(stft, ComplexNorm(mono=False))


def fit_scaler(bank: StemBank, songs: np.ndarray, n_fft: int,
               hop: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-bin mean and std of the channel-averaged mixture magnitude (as openunmix does).

    The std is floored at 1e-4 of its maximum, like ``openunmix.train.get_statistics``.
    """
    spec = spectrogram(n_fft, hop)
    total = np.zeros(n_fft // 2 + 1)
    total_sq = np.zeros(n_fft // 2 + 1)
    frames = 0
    with torch.no_grad():
        for i in songs:
            mag = spec(torch.from_numpy(bank.mixture(int(i)))[None]).mean(1)[0].double().numpy()
            total += mag.sum(axis=1)
            total_sq += (mag**2).sum(axis=1)
            frames += mag.shape[1]
    mean = total / frames
    std = np.sqrt(np.maximum(total_sq / frames - mean**2, 0.0))
    std = np.maximum(std, 1e-4 * std.max())
    return mean.astype(np.float32), std.astype(np.float32)


def build_model(params: ModelParams, sample_rate: int, mean: np.ndarray | None = None,
                scale: np.ndarray | None = None) -> OpenUnmix:
    """An ``openunmix.model.OpenUnmix`` for stereo input with the configured bandwidth."""
    nb_bins = params.n_fft // 2 + 1
    max_bin = int(bandwidth_to_max_bin(sample_rate, params.n_fft, params.bandwidth_hz))
    return OpenUnmix(nb_bins=nb_bins, nb_channels=2, hidden_size=params.hidden_size,
                     nb_layers=params.nb_layers, unidirectional=params.unidirectional,
                     input_mean=mean, input_scale=scale, max_bin=max_bin)


def model_config(params: ModelParams, sample_rate: int) -> dict[str, Any]:
    """What is needed to rebuild a saved model (stored next to its weights)."""
    return {"sample_rate": sample_rate, **as_plain(params)}


def load_model(weights: Path, config: dict[str, Any]) -> OpenUnmix:
    """Rebuild a saved model; refuses pickled objects (``weights_only=True``)."""
    params = ModelParams(**{k: v for k, v in config.items() if k != "sample_rate"})
    model = build_model(params, int(config["sample_rate"]))
    state = torch.load(weights, map_location="cpu", weights_only=True)
    try:
        model.load_state_dict(state)
    except RuntimeError as err:
        raise ValueError(f"{weights}: checkpoint does not match the configured architecture "
                         f"({str(err).splitlines()[0]})") from err
    return model.eval()


class Validator:
    """Validation loss on full reference songs, spectrograms computed once."""

    def __init__(self, bank: StemBank, target: str, n_fft: int, hop: int, device: torch.device):
        spec = spectrogram(n_fft, hop)
        self.items = []
        t = TARGETS.index(target)
        with torch.no_grad():
            for i in range(len(bank.audio)):
                mix = spec(torch.from_numpy(bank.mixture(i))[None]).to(device)
                tgt = spec(torch.from_numpy(np.ascontiguousarray(bank.audio[i][t]))[None])
                self.items.append((mix, tgt.to(device)))

    def __call__(self, model: torch.nn.Module) -> float:
        """Mean over songs of the MSE between estimated and true target magnitudes."""
        model.eval()
        with torch.no_grad():
            losses = [torch.nn.functional.mse_loss(model(mix), tgt).item()
                      for mix, tgt in self.items]
        return float(np.mean(losses))


def config_hash(payload: dict[str, Any]) -> str:
    """A short digest identifying a training run (params, seed, target, data fingerprint)."""
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def data_fingerprint(bank: StemBank, songs: np.ndarray) -> str:
    """Digest of the decoded audio a model trains on, so stale checkpoints are never resumed."""
    h = hashlib.blake2b(digest_size=16)
    for i in songs:
        h.update(bank.folders[int(i)].encode())
        h.update(bank.audio[int(i)].tobytes())
    return h.hexdigest()


@dataclass
class TrainResult:
    """Best weights and the per-epoch history of one target model."""

    state_dict: dict[str, torch.Tensor]
    history: list[dict[str, float]]
    best_epoch: int
    best_valid_loss: float
    mean: np.ndarray
    scale: np.ndarray


def train_target(bank: StemBank, songs: np.ndarray, valid: StemBank, target: str,
                 params: TrainParams, seed: int, checkpoint: Path | None = None,
                 on_epoch: Callable[[dict[str, float]], None] | None = None,
                 quiet: bool = False, stop_after: int | None = None) -> TrainResult:
    """Train one target model for ``params.epochs`` epochs; keep the best-validation weights.

    ``checkpoint`` (optional) is written after every epoch and resumed from when its config
    hash matches. ``stop_after`` ends the run after that many epochs of this call (tests use it
    to simulate a killed run).
    """
    seed_everything(seed)
    torch.set_num_threads(params.threads)
    device = select_device(params.device)
    sample_rate = bank.sample_rate
    mean, scale = fit_scaler(bank, songs, params.model.n_fft, params.model.hop)
    model = build_model(params.model, sample_rate, mean, scale).to(device)
    spec = spectrogram(params.model.n_fft, params.model.hop).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=params.lr, weight_decay=params.weight_decay)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, factor=params.lr_decay_gamma, patience=params.lr_decay_patience)
    sampler = ExcerptSampler(bank, songs, target, params.sampler)
    validator = Validator(valid, target, params.model.n_fft, params.model.hop, device)
    rng = np.random.default_rng([seed, TARGETS.index(target)])
    steps = params.steps_per_epoch or sampler.steps_per_epoch(params.batch_size)

    run_id = config_hash({"params": as_plain(params), "seed": seed, "target": target,
                          "data": data_fingerprint(bank, songs),
                          "valid": data_fingerprint(valid, np.arange(len(valid.audio)))})
    history: list[dict[str, float]] = []
    best_state, best_loss, best_epoch, start = None, float("inf"), -1, 0
    if checkpoint is not None and checkpoint.is_file():
        state = torch.load(checkpoint, map_location=device, weights_only=True)
        if state.get("run_id") == run_id:
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
            rng.bit_generator.state = json.loads(state["numpy_rng"])
            torch.set_rng_state(state["torch_rng"])
            best_state, best_loss = state["best_model"], state["best_loss"]
            best_epoch, start = state["best_epoch"], state["epoch"] + 1
            history = json.loads(state["history"])
            log.info("%s: resuming from epoch %d (%s)", target, start, checkpoint)
            for record in history if on_epoch is not None else []:
                on_epoch(record)  # replay, so the epoch log is complete after a resume
        else:
            log.info("%s: ignoring checkpoint of another run (%s)", target, checkpoint)

    bar = tqdm(range(start, params.epochs), desc=f"train {target}", unit="epoch", disable=quiet)
    for done, epoch in enumerate(bar):
        if stop_after is not None and done >= stop_after:
            break
        model.train()
        train_losses = []
        for _ in range(steps):
            mix, tgt = sampler.batch(rng, params.batch_size)
            mix_mag = spec(torch.from_numpy(mix).to(device))
            target_mag = spec(torch.from_numpy(tgt).to(device))
            loss = torch.nn.functional.mse_loss(model(mix_mag), target_mag)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            train_losses.append(loss.item())
        valid_loss = validator(model)
        scheduler.step(valid_loss)
        record = {"epoch": epoch, "train_loss": float(np.mean(train_losses)),
                  "valid_loss": valid_loss, "lr": optimizer.param_groups[0]["lr"]}
        history.append(record)
        if valid_loss < best_loss:
            best_loss, best_epoch = valid_loss, epoch
            best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        bar.set_postfix(train=f"{record['train_loss']:.4g}", valid=f"{valid_loss:.4g}")
        if on_epoch is not None:
            on_epoch(record)
        if checkpoint is not None:
            with atomic_path(checkpoint) as tmp:
                torch.save({"run_id": run_id, "epoch": epoch, "model": model.state_dict(),
                            "optimizer": optimizer.state_dict(),
                            "scheduler": scheduler.state_dict(),
                            "numpy_rng": json.dumps(rng.bit_generator.state),
                            "torch_rng": torch.get_rng_state(), "best_model": best_state,
                            "best_loss": best_loss, "best_epoch": best_epoch,
                            "history": json.dumps(history)}, tmp)
    assert best_state is not None
    return TrainResult(best_state, history, best_epoch, best_loss, mean, scale)


@dataclass(frozen=True)
class TargetJob:
    """Everything one worker process needs to train one target model."""

    target: str
    folders: tuple[str, ...]
    valid_folders: tuple[str, ...]
    sample_rate: int
    params: TrainParams
    seed: int
    checkpoint: Path | None = None
    live_dir: Path | None = None
    quiet: bool = True


def run_target_job(job: TargetJob) -> TrainResult:
    """Load the job's songs and train its target (runs in a worker process or inline)."""
    bank = StemBank.load(list(job.folders), job.sample_rate)
    valid = StemBank.load(list(job.valid_folders), job.sample_rate)
    live = None
    if job.live_dir is not None:
        from dvclive import Live

        live = Live(str(job.live_dir), save_dvc_exp=False, dvcyaml=None, report=None)

    def log_epoch(record: dict[str, float]) -> None:
        assert live is not None
        for key in ("train_loss", "valid_loss", "lr"):
            live.log_metric(key, record[key])
        live.next_step()

    try:
        return train_target(bank, np.arange(len(job.folders)), valid, job.target, job.params,
                            job.seed, job.checkpoint, on_epoch=log_epoch if live else None,
                            quiet=job.quiet)
    finally:
        if live is not None:
            live.end()


def train_targets(jobs: list[TargetJob], workers: int) -> dict[str, TrainResult]:
    """Train several target models, ``workers`` processes at a time (spawned: torch-safe).

    Each target has its own seed stream and thread count, so results do not depend on
    ``workers``.
    """
    if workers <= 1 or len(jobs) <= 1:
        return {job.target: run_target_job(job) for job in jobs}
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=min(workers, len(jobs)), mp_context=context) as pool:
        results = list(pool.map(run_target_job, jobs))
    return {job.target: result for job, result in zip(jobs, results, strict=True)}
