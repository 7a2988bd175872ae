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

import ast
import functools
import hashlib
import json
import logging
import random
import shutil
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from openunmix.model import OpenUnmix
from openunmix.transforms import make_filterbanks
from openunmix.utils import bandwidth_to_max_bin
from tqdm import tqdm

from . import audio as audio_module
from . import readers as readers_module
from . import songs as songs_module
from . import workers as workers_module
from .audio import AudioError
from .io import atomic_path, dumps_json, is_marked, read_json
from .params import TARGETS, RuntimeParams, as_plain, check, check_range, select_device
from .songs import (
    ExcerptSampler,
    SamplerParams,
    SongTable,
    TrainingBatches,
    folder_stamp,
    song_digest,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelParams:
    """Open-Unmix architecture and STFT (paper profile: 4096 / 1024 / 512 / 3 layers / 16 kHz)."""

    n_fft: int
    hop: int
    hidden_size: int
    nb_layers: int
    bandwidth_hz: float
    unidirectional: bool

    def __post_init__(self) -> None:
        check(64 <= self.n_fft <= 65536 and self.n_fft & (self.n_fft - 1) == 0,
              "train.model.n_fft", "must be a power of two in [64, 65536]")
        check(0 < self.hop <= self.n_fft, "train.model.hop", "must be in (0, n_fft]")
        check(2 <= self.hidden_size <= 8192 and self.hidden_size % 2 == 0,
              "train.model.hidden_size", "must be an even number in [2, 8192]")
        check_range(self.nb_layers, 1, 32, "train.model.nb_layers")
        check(self.bandwidth_hz > 0, "train.model.bandwidth_hz", "must be > 0")


@dataclass(frozen=True)
class TrainParams:
    """``train`` section: optimisation, schedule and data augmentation."""

    model: ModelParams
    sampler: SamplerParams
    epochs: int
    batch_size: int
    steps_per_epoch: int | None
    lr: float
    weight_decay: float
    lr_decay_patience: int
    lr_decay_gamma: float
    precision: Literal["fp32", "bf16"]
    compile: bool

    def __post_init__(self) -> None:
        check(self.precision in ("fp32", "bf16"), "train.precision", "must be fp32 or bf16")
        check_range(self.epochs, 1, 100_000, "train.epochs")
        check_range(self.batch_size, 1, 65_536, "train.batch_size")
        check(self.steps_per_epoch is None or self.steps_per_epoch >= 1, "train.steps_per_epoch",
              "must be null (Open-Unmix: samples_per_track per song) or >= 1")
        check(self.lr > 0, "train.lr", "must be > 0")
        check(self.weight_decay >= 0, "train.weight_decay", "must be >= 0")
        check(0 < self.lr_decay_gamma <= 1, "train.lr_decay_gamma", "must be in (0, 1]")


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch, and ask torch for deterministic kernels."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    deterministic_kernels()


def deterministic_kernels() -> None:
    """Ask torch for deterministic kernels. ``torch.use_deterministic_algorithms`` also imports
    the inductor compiler to set its flag (1.6 s per process); only ``train.compile`` needs that,
    and :func:`_compiled` sets it there."""
    setter = getattr(torch._C, "_set_deterministic_algorithms", None)
    if setter is None:  # a torch without the private setter: the public call, import and all
        torch.use_deterministic_algorithms(True, warn_only=True)
    else:
        setter(True, warn_only=True)


class Magnitude(torch.nn.Module):
    """``|X|`` of openunmix's stacked ``(re, im)`` STFT as ``sqrt(re^2 + im^2)``: openunmix's
    ``ComplexNorm`` to within one float32 rounding (tested), in half the CPU time of ``hypot``
    (no overflow guard: a magnitude spectrogram of audio is far from float32's range)."""

    def forward(self, spec: torch.Tensor) -> torch.Tensor:
        return (spec[..., 0].square() + spec[..., 1].square()).sqrt()


def spectrogram(n_fft: int, hop: int, center: bool = False) -> torch.nn.Module:
    """Openunmix's magnitude spectrogram: ``[B, 2, samples] -> [B, 2, bins, frames]``."""
    stft, _ = make_filterbanks(n_fft=n_fft, n_hop=hop, center=center)
    return torch.nn.Sequential(stft, Magnitude())


def mixture(stems: np.ndarray) -> np.ndarray:
    """Sum of ``[4, 2, samples]`` stems in a fixed order (reproducible float32)."""
    return stems.sum(axis=0, dtype=np.float32)


def fit_scaler(table: SongTable, songs: np.ndarray, n_fft: int,
               hop: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-bin mean and std of the channel-averaged mixture magnitude (as openunmix does),
    one song in memory at a time.

    The std is floored at 1e-4 of its maximum, like ``openunmix.train.get_statistics``.
    """
    spec = spectrogram(n_fft, hop)
    total = np.zeros(n_fft // 2 + 1)
    total_sq = np.zeros(n_fft // 2 + 1)
    frames = 0
    with torch.no_grad():
        for i in songs:
            mix = torch.from_numpy(mixture(table.stems(int(i))))[None]
            mag = spec(mix).mean(1)[0].double().numpy()
            total += mag.sum(axis=1)
            total_sq += (mag**2).sum(axis=1)
            frames += mag.shape[1]
    mean = total / frames
    std = np.sqrt(np.maximum(total_sq / frames - mean**2, 0.0))
    std = np.maximum(std, 1e-4 * std.max())
    return mean.astype(np.float32), std.astype(np.float32)


_SCALERS: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}


def _scaler(table: SongTable, songs: tuple[int, ...], n_fft: int,
            hop: int) -> tuple[np.ndarray, np.ndarray]:
    """:func:`fit_scaler`, once per process for one song set as it is on disk (a worker's
    targets share their mixtures); the last two are kept, by the files' identity, never by the
    table object (which would keep a decoded set alive). Callers never write to the arrays."""
    key = (table.stamp, songs, n_fft, hop)
    if key not in _SCALERS:
        while len(_SCALERS) >= 2:
            _SCALERS.pop(next(iter(_SCALERS)))
        _SCALERS[key] = fit_scaler(table, np.asarray(songs), n_fft, hop)
    return _SCALERS[key]


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


def read_weights(path: Path) -> dict[str, torch.Tensor]:
    """A state dict of tensors from ``path``; pickled objects are refused (``weights_only=True``)
    and an empty, truncated or garbage file is one ValueError naming it."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: model weights file not found")
    if path.stat().st_size == 0:
        raise ValueError(f"{path}: empty file (0 bytes), not model weights")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 (torch raises many kinds; none is the user's fault)
        if "Weights only load failed" in str(err):
            raise ValueError(f"{path}: holds pickled Python objects; refused (only tensors are "
                             "loaded, never code)") from None
        raise ValueError(f"{path}: not a readable weights file ({type(err).__name__})") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path}: not a state dict of tensors")
    return state


def load_model(weights: Path, config: dict[str, Any]) -> OpenUnmix:
    """Rebuild a saved model from its weights and ``model.json`` config (tensors only)."""
    params = ModelParams(**{k: v for k, v in config.items() if k != "sample_rate"})
    model = build_model(params, int(config["sample_rate"]))
    state = read_weights(weights)
    try:
        model.load_state_dict(state)
    except RuntimeError as err:
        raise ValueError(f"{weights}: checkpoint does not match the configured architecture "
                         f"({str(err).splitlines()[0]})") from err
    return model.eval()


class Validator:
    """Validation loss on full reference songs, one song at a time.

    The songs' spectrograms are the same every epoch: when the mixture and target spectrograms
    of all songs take at most ``cache_bytes`` they are computed once and kept (on ``device``);
    otherwise every call reads and transforms the songs again (memory: one song). Both give the
    same floats.
    """

    def __init__(self, table: SongTable, target: str, n_fft: int, hop: int, device: torch.device,
                 cache_bytes: int = 256 << 20):
        self.table = table
        self.target = TARGETS.index(target)
        self.spec = spectrogram(n_fft, hop).to(device)
        self.device = device
        frames = sum(max(0, (table.frames(i) - n_fft) // hop + 1) for i in range(len(table)))
        spec_bytes = 2 * 2 * (n_fft // 2 + 1) * frames * 4  # mixture + target, stereo, float32
        self.keep = spec_bytes <= cache_bytes
        self._kept: list[tuple[torch.Tensor, torch.Tensor]] | None = None

    def _transformed(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``(mixture, target)`` magnitude spectrograms of song ``i``."""
        stems = self.table.stems(i)
        mix = self.spec(torch.from_numpy(mixture(stems))[None].to(self.device))
        tgt = self.spec(torch.from_numpy(np.ascontiguousarray(stems[self.target]))[None]
                        .to(self.device))
        return mix, tgt

    def __call__(self, model: torch.nn.Module) -> float:
        """Mean over songs of the MSE between estimated and true target magnitudes."""
        model.eval()
        with torch.no_grad():
            if self.keep and self._kept is None:
                self._kept = [self._transformed(i) for i in range(len(self.table))]
            songs = self._kept or (self._transformed(i) for i in range(len(self.table)))
            losses = [torch.nn.functional.mse_loss(model(mix), tgt).item() for mix, tgt in songs]
        return float(np.mean(losses))


def config_hash(payload: dict[str, Any]) -> str:
    """A short digest identifying a training run (params, seed, target, data fingerprint)."""
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def training_key(songs: Mapping[str, Sequence[str]], valid: Sequence[str], params: TrainParams,
                 seed: int, sample_rate: int, device: str, threads: int) -> str:
    """Everything the weights of a four-target training depend on: each target's songs and the
    validation songs by content, in order (not by path), the train params, seed, sample rate, the
    device kind and torch threads per model (they change float rounding), the training code
    (:func:`code_digest` of this module and every project module it reads audio with) and the
    library versions. Two
    trainings with one key give the same weights on one kind of machine, so a second one can be
    a copy."""
    digest = functools.cache(song_digest)
    code = code_digest((__file__, songs_module.__file__, audio_module.__file__,
                        readers_module.__file__))
    return config_hash({"songs": {t: [digest(f) for f in songs[t]] for t in TARGETS},
                        "valid": [digest(f) for f in valid], "params": as_plain(params),
                        "seed": seed, "sample_rate": sample_rate, "code": code,
                        "device": select_device(device).type, "threads": threads,
                        "versions": {name: _version(name) for name in
                                     ("torch", "openunmix", "numpy", "soundfile")}})


def code_digest(modules: Sequence[str | Path]) -> str:
    """Digest of what Python modules *do*: their syntax trees without docstrings, so comments,
    docstrings and layout do not count (a reworded docstring keeps every training's key, and a
    ``dvc commit`` after a check is honest), while any change to code or a constant does."""
    h = hashlib.sha256()
    for module in modules:
        tree = ast.parse(Path(module).read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            body = getattr(node, "body", None)
            if (isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                    and body and isinstance(body[0], ast.Expr)
                    and isinstance(body[0].value, ast.Constant)
                    and isinstance(body[0].value.value, str)):
                node.body = body[1:] or [ast.Pass()]
        h.update(canonical_ast(tree).encode())
    return h.hexdigest()


def canonical_ast(node: object) -> str:
    """A syntax tree as text that does not depend on the Python version: ``ast.dump`` differs
    between 3.11, 3.12 and 3.13 (fields such as ``type_params`` added, empty ones shown or not),
    so fields that are empty (``None``, ``[]``) are left out, the rest written in sorted order;
    positions are not fields, so they never count."""
    if isinstance(node, ast.AST):
        fields = [f"{name}={canonical_ast(value)}" for name in sorted(node._fields)
                  if (value := getattr(node, name, None)) is not None and value != []]
        return f"{type(node).__name__}({','.join(fields)})"
    if isinstance(node, list):
        return f"[{','.join(canonical_ast(item) for item in node)}]"
    return f"{type(node).__name__}:{node!r}"


def copy_training(source: Path, out: Path, provenance: dict[str, Any]) -> None:
    """Write ``out`` as a copy of the training in ``source`` (weights and ``model.json``), with
    its own ``sidecar.json`` (``provenance``), atomically."""
    with atomic_path(out) as tmp:
        tmp.mkdir()
        for path in sorted(Path(source).iterdir()):
            if path.suffix == ".pth" or path.name == "model.json":
                shutil.copyfile(path, tmp / path.name)
        (tmp / "sidecar.json").write_text(dumps_json(provenance))


def save_training(out: Path, results: Mapping[str, TrainResult], params: TrainParams,
                  sample_rate: int, key: str, n_songs: Mapping[str, int],
                  provenance: dict[str, Any]) -> None:
    """Write the model folder ``out`` atomically: ``<target>.pth`` (best weights), ``model.json``
    (config, training ``key``, each target's history) and ``sidecar.json`` (``provenance``)."""
    with atomic_path(out) as tmp:
        tmp.mkdir()
        for target, result in results.items():
            torch.save(result.state_dict, tmp / f"{target}.pth")
        info = {"config": model_config(params.model, sample_rate), "training_key": key,
                "targets": {t: {"best_epoch": r.best_epoch, "best_valid_loss": r.best_valid_loss,
                                "n_songs": n_songs[t], "history": r.history}
                            for t, r in results.items()}}
        (tmp / "model.json").write_text(dumps_json(info))
        (tmp / "sidecar.json").write_text(dumps_json(provenance))


def _version(package: str) -> str:
    from importlib.metadata import version

    return version(package)


def find_training(candidates: Sequence[Path], key: str) -> Path | None:
    """The first of ``candidates`` (model folders this project wrote) holding the training
    ``key`` names, if any (its ``model.json`` records the key)."""
    for folder in candidates:
        info = Path(folder) / "model.json"
        if is_marked(folder) and info.is_file() and read_json(info).get("training_key") == key:
            return Path(folder)
    return None


@dataclass
class TrainResult:
    """Best weights and the per-epoch history of one target model."""

    state_dict: dict[str, torch.Tensor]
    history: list[dict[str, float]]
    best_epoch: int
    best_valid_loss: float
    mean: np.ndarray
    scale: np.ndarray


@dataclass
class _RunState:
    """What a checkpoint restores: weights, optimiser, schedule, RNG streams and the history."""

    history: list[dict[str, float]] = field(default_factory=list)
    best_state: dict[str, torch.Tensor] | None = None
    best_loss: float = float("inf")
    best_epoch: int = -1
    start: int = 0


def _train_epoch(model: torch.nn.Module, spec: torch.nn.Module, batches: Iterator[Any],
                 optimizer: torch.optim.Optimizer, steps: int, device: torch.device,
                 precision: str) -> float:
    """``steps`` optimiser steps on the next batches; the mean training loss."""
    model.train()
    losses = []
    for _ in range(steps):
        mix, tgt = next(batches)
        mix = spec(mix.to(device, non_blocking=True))
        tgt = spec(tgt.to(device, non_blocking=True))
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
            estimate = model(mix)
        loss = torch.nn.functional.mse_loss(estimate.float(), tgt)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return float(np.mean(losses))


def check_song_lengths(table: SongTable, songs: np.ndarray, n_fft: int) -> None:
    """Every song must hold at least one STFT frame (``train.model.n_fft`` samples)."""
    for i in songs:
        if table.frames(int(i)) < n_fft:
            raise AudioError(f"{table.folders[int(i)]}: {table.frames(int(i))} samples, "
                             f"shorter than one STFT frame (train.model.n_fft = {n_fft})")


@dataclass(frozen=True, kw_only=True)
class Loading:
    """How a training process gets its batches; never changes a result (the ``runtime`` section)."""

    workers: int        # loader processes per training (0: batches built in the trainer)
    preload_mib: float  # decode the songs into RAM once when they fit, instead of seeking on disk


def loading(runtime: RuntimeParams) -> Loading:
    """The ``runtime`` section's loader settings."""
    return Loading(workers=runtime.loader_workers, preload_mib=runtime.preload_mib)


def _batches(sampler: ExcerptSampler, seed: int, steps: int, params: TrainParams, first: int,
             loading: Loading, device: torch.device) -> Iterator[Any]:
    """Every remaining batch of the run, in order, from ``loading.workers`` processes."""
    dataset = TrainingBatches(sampler, seed, steps, params.batch_size)
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=None, sampler=range(first * steps, params.epochs * steps),
        num_workers=loading.workers, pin_memory=device.type == "cuda",
        prefetch_factor=4 if loading.workers else None,
        generator=torch.Generator().manual_seed(seed))  # never draws from torch's global RNG
        # (a resumed run would draw once more than an uninterrupted one: other dropout masks)
    return iter(loader)


def _compiled(model: torch.nn.Module, params: TrainParams) -> torch.nn.Module:
    """The module the steps call: ``torch.compile``d when asked (weights stay ``model``'s)."""
    if not params.compile:
        return model
    torch.use_deterministic_algorithms(True, warn_only=True)  # inductor's flag too
    return torch.compile(model)


class _Solver:
    """One target model's training: its state, and the steps ``resume``, ``epoch`` and ``save``
    (checkpoint) that :func:`train_target` strings together."""

    def __init__(self, table: SongTable, songs: np.ndarray, valid: SongTable, target: str,
                 params: TrainParams, seed: int, device: torch.device,
                 data_key: str | None) -> None:
        check_song_lengths(table, songs, params.model.n_fft)
        check_song_lengths(valid, np.arange(len(valid)), params.model.n_fft)
        seed_everything(seed)
        self.target, self.params, self.device = target, params, device
        self.mean, self.scale = _scaler(table, tuple(int(i) for i in songs), params.model.n_fft,
                                        params.model.hop)
        self.model = build_model(params.model, table.sample_rate, self.mean, self.scale).to(device)
        self.spec = spectrogram(params.model.n_fft, params.model.hop).to(device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=params.lr,
                                          weight_decay=params.weight_decay)
        self.scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
            self.optimizer, factor=params.lr_decay_gamma, patience=params.lr_decay_patience)
        self.sampler = ExcerptSampler(table, songs, target, params.sampler)
        self.validator = Validator(valid, target, params.model.n_fft, params.model.hop, device)
        self.steps = params.steps_per_epoch or self.sampler.steps_per_epoch(params.batch_size)
        self.run_id = config_hash({
            "params": as_plain(params), "seed": seed, "target": target,
            "data": data_key or table.fingerprint(songs),
            "valid": "" if data_key else valid.fingerprint(np.arange(len(valid)))})
        self.run = _RunState()

    def resume(self, checkpoint: Path) -> None:
        """Restore a checkpoint of this very run; another run's or a corrupt one is ignored
        (logged: a half-written or garbage checkpoint never stops a training)."""
        try:
            state = torch.load(checkpoint, map_location=self.device, weights_only=True)
            if not isinstance(state, dict) or state.get("run_id") != self.run_id:
                log.info("%s: ignoring checkpoint of another run (%s)", self.target, checkpoint)
                return
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
            self.scheduler.load_state_dict(state["scheduler"])
            torch.set_rng_state(state["torch_rng"])
            self.run = _RunState(json.loads(state["history"]), state["best_model"],
                                 state["best_loss"], state["best_epoch"], state["epoch"] + 1)
        except Exception as err:  # noqa: BLE001 (any unreadable checkpoint means: start over)
            reason = ("it holds pickled objects" if "Weights only load failed" in str(err)
                      else type(err).__name__)
            log.warning("%s: ignoring unreadable checkpoint %s (%s); training starts over",
                        self.target, checkpoint, reason)
            return
        log.info("%s: resuming from epoch %d (%s)", self.target, self.run.start, checkpoint)

    def epoch(self, epoch: int, step_model: torch.nn.Module, batches: Iterator[Any]) -> dict:
        """Train one epoch, validate, step the schedule, keep the best weights: its record."""
        train_loss = _train_epoch(step_model, self.spec, batches, self.optimizer, self.steps,
                                  self.device, self.params.precision)
        valid_loss = self.validator(self.model)
        self.scheduler.step(valid_loss)
        record = {"epoch": epoch, "train_loss": train_loss, "valid_loss": valid_loss,
                  "lr": self.optimizer.param_groups[0]["lr"]}
        run = self.run
        run.history.append(record)
        if valid_loss < run.best_loss:
            run.best_loss, run.best_epoch = valid_loss, epoch
            run.best_state = {k: v.detach().cpu().clone()
                              for k, v in self.model.state_dict().items()}
        return record

    def save(self, checkpoint: Path, epoch: int) -> None:
        """Write everything :meth:`resume` needs, atomically."""
        run = self.run
        with atomic_path(checkpoint) as tmp:
            torch.save({"run_id": self.run_id, "epoch": epoch, "model": self.model.state_dict(),
                        "optimizer": self.optimizer.state_dict(),
                        "scheduler": self.scheduler.state_dict(),
                        "torch_rng": torch.get_rng_state(), "best_model": run.best_state,
                        "best_loss": run.best_loss, "best_epoch": run.best_epoch,
                        "history": json.dumps(run.history)}, tmp)

    def result(self) -> TrainResult:
        """The best weights and the history (an error when no validation loss was finite)."""
        run, target = self.run, self.target
        if run.best_state is None:
            raise ValueError(f"train {target}: every validation loss is NaN or infinite (training "
                             f"diverged - try a lower train.lr - or the '{target}' stems are "
                             "silent)")
        log.info("%s: best epoch %d of %d, validation loss %.4g", target, run.best_epoch + 1,
                 self.params.epochs, run.best_loss)
        return TrainResult(run.best_state, run.history, run.best_epoch, run.best_loss, self.mean,
                           self.scale)


def train_target(table: SongTable, songs: np.ndarray, valid: SongTable, target: str,
                 params: TrainParams, seed: int, device: torch.device,
                 checkpoint: Path | None = None,
                 on_epoch: Callable[[dict[str, float]], None] | None = None,
                 quiet: bool = False, stop_after: int | None = None,
                 loading: Loading | None = None, data_key: str | None = None) -> TrainResult:
    """Train one target model for ``params.epochs`` epochs; keep the best-validation weights.

    ``checkpoint`` (optional) is written after every epoch and resumed from when its config
    hash matches. ``stop_after`` ends the run after that many epochs of this call (tests use it
    to simulate a killed run). ``loading`` (default: no loader processes) never changes results.
    ``data_key`` (a :func:`training_key`, songs by content) names the data in the checkpoint's run
    id; without it, a cheaper fingerprint (sizes, first and last MiB of each stem) does.
    """
    solver = _Solver(table, songs, valid, target, params, seed, device, data_key)
    if checkpoint is not None and checkpoint.is_file():
        solver.resume(checkpoint)
        for record in solver.run.history if on_epoch is not None else []:
            on_epoch(record)  # replay, so the epoch log is complete after a resume
    batches = _batches(solver.sampler, seed, solver.steps, params, solver.run.start,
                       loading or Loading(workers=0, preload_mib=0), device)
    step_model = _compiled(solver.model, params)
    bar = tqdm(range(solver.run.start, params.epochs), desc=f"train {target}", unit="epoch",
               disable=quiet)
    for done, epoch in enumerate(bar):
        if stop_after is not None and done >= stop_after:
            break
        record = solver.epoch(epoch, step_model, batches)
        bar.set_postfix(train=f"{record['train_loss']:.4g}", valid=f"{record['valid_loss']:.4g}")
        if on_epoch is not None:
            on_epoch(record)
        if checkpoint is not None:
            solver.save(checkpoint, epoch)
    del batches  # stops the loader workers
    return solver.result()


@dataclass(frozen=True, kw_only=True)
class TargetJob:
    """Everything one worker process needs to train one target model."""

    target: str
    folders: tuple[str, ...]
    valid_folders: tuple[str, ...]
    sample_rate: int
    params: TrainParams
    seed: int
    device: str
    threads: int
    loading: Loading
    data_key: str | None = None
    checkpoint: Path | None = None
    quiet: bool = True


_TABLES: dict[tuple, SongTable] = {}


def _open_table(folders: tuple[str, ...], sample_rate: int, preload_mib: float) -> SongTable:
    """:meth:`SongTable.open`, once per process for one song set as it is on disk (its files'
    names, sizes and modification times): a worker that trains two targets on one set opens it
    once, and a set rewritten in between is opened again. The last two are kept."""
    key = (folder_stamp(folders), sample_rate, preload_mib)
    if key not in _TABLES:
        while len(_TABLES) >= 2:
            _TABLES.pop(next(iter(_TABLES)))
        _TABLES[key] = SongTable.open(folders, sample_rate, preload_mib=preload_mib)
    return _TABLES[key]


def run_target_job(job: TargetJob) -> TrainResult:
    """Index the job's songs and train its target (runs in a worker process or inline)."""
    torch.set_num_threads(job.threads)
    table = _open_table(job.folders, job.sample_rate, job.loading.preload_mib)
    valid = _open_table(job.valid_folders, job.sample_rate, 0.0)
    return train_target(table, np.arange(len(table)), valid, job.target, job.params, job.seed,
                        select_device(job.device), job.checkpoint, quiet=job.quiet,
                        loading=job.loading, data_key=job.data_key)


def target_jobs(songs: Mapping[str, Sequence[str]], valid: Sequence[str], params: TrainParams,
                seed: int, sample_rate: int, runtime: RuntimeParams, key: str,
                checkpoints: Path | None, quiet: bool) -> list[TargetJob]:
    """One :class:`TargetJob` per target of a four-target training (``key``: its
    :func:`training_key`, which names the data in checkpoints)."""
    return [TargetJob(target=t, folders=tuple(songs[t]), valid_folders=tuple(valid),
                      sample_rate=sample_rate, params=params, seed=seed, device=runtime.device,
                      threads=runtime.worker_threads, loading=loading(runtime), data_key=key,
                      checkpoint=checkpoints / f"{t}.pt" if checkpoints else None, quiet=quiet)
            for t in TARGETS]


def train_targets(jobs: list[TargetJob], workers: int) -> dict[str, TrainResult]:
    """Train several target models, ``workers`` processes at a time (forked from the fork
    server of :mod:`.workers`, which :func:`.workers.start_server` may have started already).

    Each target has its own seed stream and thread count, so results do not depend on
    ``workers``. Workers die with the calling process.
    """
    if workers <= 1 or len(jobs) <= 1:
        return {job.target: run_target_job(job) for job in jobs}
    import os
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=min(workers, len(jobs)), mp_context=workers_module.context(),
                             initializer=workers_module.die_with_parent,
                             initargs=(os.getpid(),)) as pool:
        results = list(pool.map(run_target_job, jobs))
    return {job.target: result for job, result in zip(jobs, results, strict=True)}
