"""Fixed, deterministic loss inputs for attributing Open-Unmix models.

"Before" and "after" losses of the unlearning step must see exactly the same inputs, so every song
gets a fixed set of excerpts (offsets drawn once from ``(seed, song name)``, no augmentation) and
their magnitude spectrograms are computed once and reused for every target model and unlearned
parameter vector.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import soundfile as sf
import torch
from tqdm import tqdm

from .attribution import LOSSES, Reduction, UnlearnParams, attribute
from .audio import AudioError, read_wav
from .params import TARGETS, check
from .readers import audio_files
from .rng import keyed_rng
from .unmix import spectrogram


@dataclass(frozen=True)
class AttributeParams:
    """``attribute`` section: excerpts per song, their length and seed, the unlearning step and
    how the ΔL matrix is reduced to scores."""

    unlearn: UnlearnParams
    loss: Literal["mse", "energy"]
    reduction: Reduction
    excerpts_per_song: int
    excerpt_seconds: float
    seed: int

    def __post_init__(self) -> None:
        check(self.excerpts_per_song >= 1, "attribute.excerpts_per_song", "must be >= 1")
        check(0 < self.excerpt_seconds <= 600, "attribute.excerpt_seconds", "must be in (0, 600] s")
        check(self.reduction in ("mean", "zscore"), "attribute.reduction", "must be mean | zscore")


def excerpt_offsets(name: str, n_samples: int, length: int, count: int, seed: int) -> list[int]:
    """``count`` sorted start offsets drawn from ``(seed, name)``; songs shorter than one excerpt fail."""
    if n_samples < length:
        raise AudioError(f"{name}: {n_samples} samples, shorter than one attribution excerpt "
                         f"({length})")
    rng = keyed_rng(seed, "attribution", name)
    return sorted(int(o) for o in rng.integers(0, n_samples - length + 1, size=count))


@dataclass
class SongInputs:
    """One song's fixed excerpts: mixture magnitudes and each target's magnitudes."""

    name: str
    mixture: torch.Tensor  # [K, 2, bins, frames]
    targets: dict[str, torch.Tensor]  # target -> [K, 2, bins, frames]

    def pair(self, target: str) -> tuple[torch.Tensor, torch.Tensor]:
        """``(inputs, targets)`` for one target model."""
        return self.mixture, self.targets[target]


def read_excerpts(path: Path, file_rate: int, sample_rate: int, offsets: list[int],
                  length: int) -> np.ndarray:
    """``[K, 2, length]`` excerpts of a wav; partial reads when it is at the pipeline rate."""
    if file_rate != sample_rate:  # rare: decode (and resample) the whole file once
        audio = read_wav(path, sample_rate)
        return np.ascontiguousarray(np.stack([audio[:, o:o + length] for o in offsets]))
    out = []
    for offset in offsets:
        data, _ = sf.read(str(path), start=offset, frames=length, dtype="float32", always_2d=True)
        if data.shape[0] != length or not np.isfinite(data).all():
            raise AudioError(f"{path}: unreadable or non-finite samples at offset {offset}")
        out.append(np.repeat(data.T, 2, axis=0) if data.shape[1] == 1 else data.T)
    return np.ascontiguousarray(np.stack(out), dtype=np.float32)


def load_song_inputs(folder: str | Path, sample_rate: int, params: AttributeParams, n_fft: int,
                     hop: int) -> SongInputs:
    """Read a track folder's fixed excerpts and compute their magnitude spectrograms."""
    folder = Path(folder)
    files = audio_files(folder)
    missing = [t for t in TARGETS if t not in files]
    if missing:
        raise AudioError(f"{folder / missing[0]}.wav: missing stem file")
    paths = {t: files[t] for t in TARGETS}
    infos = {t: sf.info(str(p)) for t, p in paths.items()}
    n = min(i.frames * sample_rate // i.samplerate for i in infos.values())
    length = int(round(params.excerpt_seconds * sample_rate))
    offsets = excerpt_offsets(folder.name, n, length, params.excerpts_per_song, params.seed)
    spec = spectrogram(n_fft, hop)
    with torch.no_grad():
        excerpts = {t: torch.from_numpy(read_excerpts(p, infos[t].samplerate, sample_rate,
                                                      offsets, length))
                    for t, p in paths.items()}
        mixture = sum(excerpts[t] for t in TARGETS)
        return SongInputs(folder.name, spec(mixture), {t: spec(excerpts[t]) for t in TARGETS})


@dataclass
class Attributions:
    """Per target model: ΔL ``[N, M]``, the naive ΔL without the Fisher (when asked), each
    training song's baseline loss ``[N]``, and a Fisher / loss summary."""

    delta: dict[str, np.ndarray]
    naive: dict[str, np.ndarray]
    baseline: dict[str, np.ndarray]
    summary: dict[str, dict[str, float]]


def attribute_models(models: dict[str, torch.nn.Module], train: list[SongInputs],
                     reference: list[SongInputs], params: AttributeParams, quiet: bool = True,
                     naive: bool = False) -> Attributions:
    """Attribute every training song with every target model (see :func:`attribution.attribute`)
    with the section's unlearning step and per-example loss."""
    out = Attributions({}, {}, {}, {})
    for target in tqdm(list(models), desc="attribute", unit="model", disable=quiet):
        result = attribute(models[target], [s.pair(target) for s in train],
                           [s.pair(target) for s in reference], params.unlearn,
                           loss=LOSSES[params.loss], naive=naive)
        out.delta[target], out.baseline[target] = result.delta, result.baseline
        if result.delta_naive is not None:
            out.naive[target] = result.delta_naive
        out.summary[target] = {"fisher_mean": result.fisher_mean,
                               "damping_abs": result.damping_abs,
                               "baseline_loss_mean": float(result.baseline.mean())}
    return out
