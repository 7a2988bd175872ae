"""Audio embedders behind one interface: ``embed(audio [channels, samples], sr) -> frames [T, D]``.

Backends (``embed.backend`` in params):

* ``logmel`` — the offline default, needing no weights: log-mel band energies (16 kHz mono,
  64 bands) averaged over ``frame_seconds`` windows. A signal-level descriptor, *not* a learned
  embedding: it sees timbre and level, not musical semantics. Honest stand-in for MERT/CLAP when
  their weights are not on disk.
* ``mert`` — MERT-v1-95M through ``transformers.AutoModel`` from a local folder (24 kHz mono,
  hidden state of layer ``layer``, 75 frames/s). MERT ships custom model code: loading it needs
  ``trust_remote_code: true``, an explicit opt-in. Any HuBERT-style checkpoint loads the same way.
* ``clap`` — LAION CLAP through ``transformers.ClapModel`` + ``ClapFeatureExtractor`` (48 kHz
  mono): one projected, normalised embedding per ``window_seconds`` window, hop ``hop_seconds``.

Weights are only ever read from disk (``local_files_only=True``, ``HF_HUB_OFFLINE=1``); a missing
folder is one clear error naming it.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

import numpy as np
import torch

from .audio import Track, resample
from .params import TARGETS, check

log = logging.getLogger(__name__)

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@dataclass(frozen=True)
class EmbedParams:
    """``embed`` section."""

    backend: Literal["logmel", "mert", "clap"] = "logmel"
    model_dir: str | None = None
    trust_remote_code: bool = False
    layer: int = 12
    chunk_seconds: float = 10.0
    window_seconds: float = 10.0
    hop_seconds: float = 2.5
    frame_seconds: float = 0.1
    n_mels: int = 64
    device: Literal["auto", "cpu", "cuda"] = "auto"
    threads: int = 2

    def __post_init__(self) -> None:
        check(self.backend == "logmel" or self.model_dir is not None, "embed.model_dir",
              f"required for backend '{self.backend}' (a local folder with the weights)")
        check(self.layer >= 0, "embed.layer", "must be >= 0")
        for key in ("chunk_seconds", "window_seconds", "hop_seconds", "frame_seconds"):
            check(getattr(self, key) > 0, f"embed.{key}", "must be > 0")
        check(self.n_mels >= 8, "embed.n_mels", "must be >= 8")


class Embedder(Protocol):
    """Anything that turns audio into a sequence of frame embeddings."""

    name: str
    dim: int

    def embed(self, audio: np.ndarray, sample_rate: int) -> np.ndarray:
        """``[channels, samples]`` float audio -> ``[T, D]`` float32 frames."""
        ...


def to_mono(audio: np.ndarray, sample_rate: int, target_rate: int) -> np.ndarray:
    """Down-mix to mono and resample: ``[channels, samples] -> [samples']`` float32."""
    mono = audio.mean(axis=0, dtype=np.float32)[None]
    return resample(mono, sample_rate, target_rate)[0]


class LogMelEmbedder:
    """Offline default: pooled log-mel band energies (no learned weights)."""

    rate = 16000

    def __init__(self, params: EmbedParams):
        import torchaudio

        self.params = params
        self.name = "logmel"
        self.dim = params.n_mels
        self.mel = torchaudio.transforms.MelSpectrogram(
            sample_rate=self.rate, n_fft=400, hop_length=160, n_mels=params.n_mels)

    def embed(self, audio: np.ndarray, sample_rate: int) -> np.ndarray:
        """Mean log-mel energy per ``frame_seconds`` window ``[T, n_mels]``."""
        mono = torch.from_numpy(to_mono(audio, sample_rate, self.rate))
        with torch.no_grad():
            logmel = torch.log(self.mel(mono) + 1e-6)  # [n_mels, frames at 100 Hz]
        per = max(1, int(round(self.params.frame_seconds * 100)))
        usable = (logmel.shape[1] // per) * per
        if usable == 0:
            return logmel.T.numpy().astype(np.float32)
        pooled = logmel[:, :usable].reshape(logmel.shape[0], -1, per).mean(-1)
        return pooled.T.contiguous().numpy().astype(np.float32)


def _require_dir(path: str | None, what: str) -> Path:
    folder = Path(path or "")
    if not folder.is_dir() or not any(folder.iterdir()):
        raise FileNotFoundError(f"embed.model_dir: {folder} has no {what} weights (they cannot be "
                                "downloaded here; put a local snapshot there)")
    return folder


class MertEmbedder:
    """MERT (or any HuBERT-style model) hidden states of one layer, 24 kHz mono input."""

    rate = 24000

    def __init__(self, params: EmbedParams, device: torch.device):
        from transformers import AutoConfig, AutoModel

        folder = _require_dir(params.model_dir, "MERT")
        config = AutoConfig.from_pretrained(folder, trust_remote_code=params.trust_remote_code,
                                            local_files_only=True)
        self.model = AutoModel.from_pretrained(folder, trust_remote_code=params.trust_remote_code,
                                               local_files_only=True).eval().to(device)
        layers = int(getattr(config, "num_hidden_layers", params.layer))
        if params.layer > layers:
            raise ValueError(f"embed.layer: {params.layer} but the model has {layers} layers")
        self.params, self.device = params, device
        self.name, self.dim = "mert", int(config.hidden_size)
        self.normalize = _feature_extractor_normalizes(folder)

    def embed(self, audio: np.ndarray, sample_rate: int) -> np.ndarray:
        """Layer ``layer`` hidden states, songs cut into ``chunk_seconds`` pieces."""
        mono = to_mono(audio, sample_rate, self.rate)
        chunk = int(self.params.chunk_seconds * self.rate)
        frames = []
        with torch.no_grad():
            for start in range(0, len(mono), chunk):
                piece = mono[start:start + chunk]
                if len(piece) < self.rate // 10:  # under 100 ms: no full frame
                    continue
                if self.normalize:
                    piece = (piece - piece.mean()) / np.sqrt(piece.var() + 1e-7)
                x = torch.from_numpy(np.ascontiguousarray(piece))[None].to(self.device)
                hidden = self.model(x, output_hidden_states=True).hidden_states[self.params.layer]
                frames.append(hidden[0].float().cpu().numpy())
        return np.concatenate(frames).astype(np.float32)


def _feature_extractor_normalizes(folder: Path) -> bool:
    config = folder / "preprocessor_config.json"
    if not config.is_file():
        return False
    import json

    return bool(json.loads(config.read_text()).get("do_normalize", False))


class ClapEmbedder:
    """CLAP audio embeddings, one per ``window_seconds`` window (48 kHz mono)."""

    rate = 48000

    def __init__(self, params: EmbedParams, device: torch.device):
        from transformers import ClapFeatureExtractor, ClapModel

        folder = _require_dir(params.model_dir, "CLAP")
        self.model = ClapModel.from_pretrained(folder, local_files_only=True).eval().to(device)
        self.extractor = ClapFeatureExtractor.from_pretrained(folder, local_files_only=True)
        max_s = float(self.extractor.nb_max_samples) / self.extractor.sampling_rate
        if params.window_seconds > max_s + 1e-9:  # longer windows would be randomly cropped
            raise ValueError(f"embed.window_seconds: {params.window_seconds} s exceeds the "
                             f"extractor's max_length_s ({max_s} s)")
        self.params, self.device = params, device
        self.name, self.dim = "clap", int(self.model.config.projection_dim)

    def embed(self, audio: np.ndarray, sample_rate: int) -> np.ndarray:
        """Projected embeddings of overlapping windows ``[T, projection_dim]``."""
        mono = to_mono(audio, sample_rate, self.rate)
        win, hop = int(self.params.window_seconds * self.rate), int(self.params.hop_seconds * self.rate)
        starts = list(range(0, max(1, len(mono) - win + 1), hop))
        windows = [mono[s:s + win] for s in starts]
        feats = self.extractor(windows, sampling_rate=self.rate, return_tensors="pt")
        with torch.no_grad():
            out = self.model.get_audio_features(
                input_features=feats["input_features"].to(self.device),
                is_longer=feats.get("is_longer", None))
        emb = out.pooler_output if hasattr(out, "pooler_output") else out
        return emb.float().cpu().numpy().astype(np.float32)


def make_embedder(params: EmbedParams, device: torch.device | None = None) -> Embedder:
    """The configured backend, on ``device`` (default: cuda when available)."""
    from .unmix import select_device

    device = device or select_device(params.device)
    if params.backend == "logmel":
        return LogMelEmbedder(params)
    if params.backend == "mert":
        return MertEmbedder(params, device)
    return ClapEmbedder(params, device)


def embed_track(embedder: Embedder, track: Track) -> dict[str, np.ndarray]:
    """Frame embeddings of a track's four stems and its mixture: ``{stem: [frames, dim]}``."""
    stems = {t: embedder.embed(track.stems[t], track.sample_rate) for t in TARGETS}
    stems["mixture"] = embedder.embed(track.mixture, track.sample_rate)
    return stems
