"""Audio embedders behind one interface: ``embed(audio [channels, samples], sr) -> frames [T, D]``.

Backends (``embed.backend`` in params); docs/embeddings.md has the measurements behind each choice:

* ``logmel`` — the offline default, needing no weights: log-mel band energies (16 kHz mono,
  ``n_mels`` bands) averaged over ``frame_seconds`` windows. A signal-level descriptor, *not* a
  learned embedding: it sees timbre and level, not musical semantics. Honest stand-in for MERT/CLAP
  when their weights are not on disk.
* ``mert`` — MERT-v1 (95M or 330M) from a local snapshot (24 kHz mono, hidden state of layer
  ``layer``, 75 frames/s). MERT-v1 without its CQT branch is HuBERT-shaped, so the snapshot's
  weights are loaded into transformers' *native* ``HubertModel`` (no remote code runs): the MERT
  config is translated field by field, anything native HuBERT cannot express (CQT branch, deepnorm)
  is refused, and every weight must match a parameter (no missing, no unexpected keys). Equality
  with MERT's own ``modeling_MERT.py`` is pinned by regression vectors in tests/fixtures/mert.
  ``trust_remote_code: true`` is an explicit opt-in fallback to the snapshot's own code (only runs
  where that code runs: transformers 4.45-4.57, not 5.x). Songs are embedded in ``chunk_seconds``
  pieces (``null``: the whole song at once, as fadtk does).
* ``clap`` — LAION CLAP through ``transformers.ClapModel`` + ``ClapFeatureExtractor`` (48 kHz
  mono): one projected, normalized embedding per ``window_seconds`` window, one window starting
  every ``hop_seconds``; tail windows are zero-padded to full length (fadtk's framing: 10 s windows
  every 1 s). A song with fewer than two window starts gets two windows, at 0 and half its length.

Weights are only ever read from disk (``local_files_only=True``, ``HF_HUB_OFFLINE=1``); a missing
folder or weights file is one clear error naming it.
"""

from __future__ import annotations

import json
import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
import torch

from .audio import Track, resample
from .params import TARGETS, check

log = logging.getLogger(__name__)

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

MAX_SECONDS = 600.0  # upper bound of every *_seconds key


@dataclass(frozen=True)
class EmbedParams:
    """``embed`` section (every key required)."""

    backend: Literal["logmel", "mert", "clap"]
    model_dir: str | None
    trust_remote_code: bool
    layer: int
    chunk_seconds: float | None
    window_seconds: float
    hop_seconds: float
    frame_seconds: float
    n_mels: int

    def __post_init__(self) -> None:
        check(self.backend == "logmel" or self.model_dir is not None, "embed.model_dir",
              f"required for backend '{self.backend}' (a local folder with the weights)")
        check(self.layer >= 0, "embed.layer", "must be >= 0")
        for key in ("chunk_seconds", "window_seconds", "hop_seconds", "frame_seconds"):
            value = getattr(self, key)
            if value is None and key == "chunk_seconds":
                continue
            check(math.isfinite(value) and 0 < value <= MAX_SECONDS, f"embed.{key}",
                  f"must be finite, > 0 and <= {MAX_SECONDS:g} (got {value})")
        check(8 <= self.n_mels <= 512, "embed.n_mels", f"must be in [8, 512] (got {self.n_mels})")


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
                                "downloaded here; put a local snapshot there, see docs/embeddings.md)")
    return folder


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise FileNotFoundError(f"embed.model_dir: {path} not found (incomplete snapshot?)")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"embed.model_dir: {path} is not valid JSON ({err})") from err
    if not isinstance(data, dict):
        raise ValueError(f"embed.model_dir: {path} is not a JSON object")
    return data


WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


def load_state_dict(folder: Path) -> dict[str, torch.Tensor]:
    """A snapshot's weights: ``model.safetensors`` or ``pytorch_model.bin`` (read with
    ``weights_only=True``), or the shards listed by their ``.index.json``."""
    for name in WEIGHT_FILES:
        index = folder / f"{name}.index.json"
        files = ([folder / f for f in sorted(set(_read_json(index).get("weight_map", {}).values()))]
                 if index.is_file() else [folder / name])
        if not all(f.is_file() for f in files) or not files:
            continue
        state: dict[str, torch.Tensor] = {}
        for file in files:
            try:
                if file.suffix == ".safetensors":
                    from safetensors.torch import load_file

                    state.update(load_file(str(file), device="cpu"))
                else:
                    state.update(torch.load(file, map_location="cpu", weights_only=True))
            except Exception as err:  # noqa: BLE001 - any decoding failure is one clear line
                raise ValueError(f"embed.model_dir: cannot read weights {file} ({err})") from err
        return state
    raise FileNotFoundError(f"embed.model_dir: {folder} has no weights file ({' or '.join(WEIGHT_FILES)})")


# MERTConfig keys that native HubertConfig reads with the same meaning.
_HUBERT_KEYS = (
    "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size", "hidden_act",
    "layer_norm_eps", "feat_extract_norm", "feat_extract_activation", "conv_dim", "conv_stride",
    "conv_kernel", "conv_bias", "num_conv_pos_embeddings", "num_conv_pos_embedding_groups",
    "do_stable_layer_norm", "feat_proj_layer_norm", "mask_time_prob", "mask_feature_prob",
    "hidden_dropout", "attention_dropout", "activation_dropout", "feat_proj_dropout",
    "final_dropout", "layerdrop", "initializer_range", "apply_spec_augment", "vocab_size",
)
# MERTConfig.__init__ defaults (MERT-v1 configuration_MERT.py), for keys a config.json may omit.
_MERT_DEFAULTS: dict[str, Any] = {
    "feat_proj_layer_norm": True, "feature_extractor_cqt": False, "deepnorm": False,
    "attention_relax": -1.0, "do_stable_layer_norm": False, "conv_bias": False,
}


def hubert_config_from_mert(raw: dict[str, Any], where: str = "config.json") -> Any:
    """Native ``HubertConfig`` equivalent to a MERT-v1 ``config.json`` (or a HuBERT one).

    MERT's ``MERTModel`` is ``HubertModel`` with its own feature projection (same layers, same
    names) plus two options native HuBERT cannot express: a CQT input branch
    (``feature_extractor_cqt``) and DeepNorm residual scaling (``deepnorm``, which is also the only
    place ``attention_relax`` acts). Either one is refused here (``trust_remote_code: true`` runs
    MERT's own code instead). ``conv_pos_batch_norm`` does not exist in MERT: its positional
    convolution is weight-normalized, HuBERT's default.
    """
    from transformers import HubertConfig

    model_type = raw.get("model_type")
    if model_type == "hubert":
        return HubertConfig.from_dict(raw)
    if model_type != "mert_model":
        raise ValueError(f"embed.model_dir: {where} has model_type {model_type!r}; backend mert needs "
                         "a MERT-v1 ('mert_model') or HuBERT ('hubert') snapshot")
    values = {**_MERT_DEFAULTS, **raw}
    for key, why in (("feature_extractor_cqt", "its CQT input branch"),
                     ("deepnorm", "DeepNorm residual scaling")):
        if values[key]:
            raise ValueError(f"embed.model_dir: {where} enables {key} ({why}), which native HuBERT "
                             "cannot express; set embed.trust_remote_code: true to run MERT's own code")
    if values.get("conv_pos_batch_norm", False):
        raise ValueError(f"embed.model_dir: {where} sets conv_pos_batch_norm, which MERT-v1 never uses")
    kwargs = {k: values[k] for k in _HUBERT_KEYS if k in values}
    return HubertConfig(conv_pos_batch_norm=False, **kwargs)


def _map_keys(state: dict[str, torch.Tensor], target: set[str]) -> dict[str, torch.Tensor]:
    """Rename checkpoint keys to the native model's: drop a ``mert_model.``/``hubert.`` prefix and
    translate weight-norm names (``weight_g``/``weight_v`` <-> ``parametrizations.weight.original0/1``)."""
    renames = {".weight_g": ".parametrizations.weight.original0",
               ".weight_v": ".parametrizations.weight.original1"}
    out = {}
    for key, value in state.items():
        for prefix in ("mert_model.", "hubert."):
            if key.startswith(prefix) and key[len(prefix):].split(".")[0] in {
                    "feature_extractor", "feature_projection", "encoder", "masked_spec_embed"}:
                key = key[len(prefix):]
        if key not in target:
            for old, new in list(renames.items()) + [(n, o) for o, n in renames.items()]:
                if key.endswith(old) and key[: -len(old)] + new in target:
                    key = key[: -len(old)] + new
                    break
        out[key] = value
    return out


def load_native_mert(folder: Path) -> Any:
    """MERT-v1 / HuBERT snapshot -> ``transformers.HubertModel`` in eval mode, weights checked."""
    from transformers import HubertModel

    config = hubert_config_from_mert(_read_json(folder / "config.json"), str(folder / "config.json"))
    state = load_state_dict(folder)
    model = HubertModel(config)
    target = set(model.state_dict())
    mapped = _map_keys(state, target)
    missing = sorted(target - set(mapped))
    unexpected = sorted(set(mapped) - target)
    if missing or unexpected:
        raise ValueError(
            f"embed.model_dir: weights in {folder} do not match its config.json "
            f"({len(missing)} missing, e.g. {missing[:3]}; {len(unexpected)} unexpected, "
            f"e.g. {unexpected[:3]})")
    for key, value in mapped.items():
        if value.shape != model.state_dict()[key].shape:
            raise ValueError(f"embed.model_dir: weight {key} in {folder} has shape "
                             f"{tuple(value.shape)}, config.json implies "
                             f"{tuple(model.state_dict()[key].shape)}")
    model.load_state_dict(mapped, strict=True)
    return model.eval()


class MertEmbedder:
    """MERT-v1 (or any HuBERT) hidden states of one layer, 24 kHz mono input."""

    rate = 24000

    def __init__(self, params: EmbedParams, device: torch.device):
        folder = _require_dir(params.model_dir, "MERT")
        raw = _read_json(folder / "config.json")
        if params.trust_remote_code:
            self.model = _load_remote_mert(folder, params.trust_remote_code)
        else:
            self.model = load_native_mert(folder)
        self.model = self.model.to(device)
        layers = int(raw.get("num_hidden_layers", 12))
        if params.layer > layers:
            raise ValueError(f"embed.layer: {params.layer} but {folder / 'config.json'} has "
                             f"{layers} layers")
        rate = int(raw.get("sample_rate", self.rate))
        if rate != self.rate:
            raise ValueError(f"embed.model_dir: {folder / 'config.json'} has sample_rate {rate}; "
                             f"MERT-v1 runs at {self.rate} Hz")
        self.params, self.device = params, device
        self.name, self.dim = "mert", int(raw["hidden_size"])
        self.normalize = _feature_extractor_normalizes(folder)

    def hidden_states(self, wave: np.ndarray) -> tuple[torch.Tensor, ...]:
        """All hidden states (``num_hidden_layers + 1`` tensors ``[1, T, D]``) of one 24 kHz piece."""
        if self.normalize:  # Wav2Vec2FeatureExtractor(do_normalize=True)
            wave = (wave - wave.mean()) / np.sqrt(wave.var() + 1e-7)
        x = torch.from_numpy(np.ascontiguousarray(wave, dtype=np.float32))[None].to(self.device)
        with torch.no_grad():
            out = self.model(x, output_hidden_states=True)
        if out.hidden_states is None:
            import transformers

            raise ValueError(f"embed.trust_remote_code: the snapshot's own MERT code returns no hidden "
                             f"states under transformers {transformers.__version__}; set "
                             "embed.trust_remote_code: false (native loader)")
        # transformers 4.x (and MERT's code) define the last entry as the encoder output, after
        # the final layer norm of pre-LN ("stable") models; 5.x records the last layer's output
        # before it. The encoder output is the same in both: use it.
        return tuple(out.hidden_states[:-1]) + (out.last_hidden_state,)

    def embed(self, audio: np.ndarray, sample_rate: int) -> np.ndarray:
        """Layer ``layer`` hidden states, songs cut into ``chunk_seconds`` pieces (null: whole)."""
        mono = to_mono(audio, sample_rate, self.rate)
        chunk = len(mono) if self.params.chunk_seconds is None else int(
            round(self.params.chunk_seconds * self.rate))
        frames = []
        for start in range(0, len(mono), max(chunk, 1)):
            piece = mono[start:start + chunk]
            if len(piece) < self.rate // 10:  # under 100 ms: no full frame
                continue
            frames.append(self.hidden_states(piece)[self.params.layer][0].float().cpu().numpy())
        if not frames:
            raise ValueError(f"embed: audio of {len(mono) / self.rate:.3f} s is too short for MERT "
                             "(needs >= 0.1 s)")
        return np.concatenate(frames).astype(np.float32)


def _load_remote_mert(folder: Path, trust_remote_code: bool) -> Any:
    """Opt-in fallback: the snapshot's own ``modeling_MERT.py`` (``embed.trust_remote_code``)."""
    from transformers import AutoConfig, AutoModel

    config = AutoConfig.from_pretrained(folder, trust_remote_code=trust_remote_code,
                                        local_files_only=True)
    config.conv_pos_batch_norm = False  # transformers >= 4.48 reads it; MERTConfig lacks it (fadtk)
    model = AutoModel.from_pretrained(folder, config=config, trust_remote_code=trust_remote_code,
                                      local_files_only=True)
    return model.eval()


def _feature_extractor_normalizes(folder: Path) -> bool:
    config = folder / "preprocessor_config.json"
    if not config.is_file():
        return False
    return bool(_read_json(config).get("do_normalize", False))


def clap_window_starts(n_samples: int, window: int, hop: int) -> list[int]:
    """Window starts: every ``hop`` samples over the whole song (fadtk: 10 s windows every 1 s, the
    tail ones zero-padded); a song with fewer than two starts gets two, at 0 and half its length."""
    del window  # tail windows are padded, so the window length does not limit the starts
    starts = list(range(0, max(n_samples, 1), hop))
    if len(starts) < 2:
        starts = [0, n_samples // 2]
    return starts


class ClapEmbedder:
    """CLAP audio embeddings, one per ``window_seconds`` window every ``hop_seconds`` (48 kHz mono)."""

    rate = 48000
    batch = 8

    def __init__(self, params: EmbedParams, device: torch.device):
        from transformers import ClapFeatureExtractor, ClapModel

        folder = _require_dir(params.model_dir, "CLAP")
        _read_json(folder / "config.json")
        _read_json(folder / "preprocessor_config.json")
        if not any((folder / f).is_file() or (folder / f"{f}.index.json").is_file()
                   for f in WEIGHT_FILES):
            raise FileNotFoundError(f"embed.model_dir: {folder} has no weights file "
                                    f"({' or '.join(WEIGHT_FILES)})")
        self.model = ClapModel.from_pretrained(folder, local_files_only=True).eval().to(device)
        self.extractor = ClapFeatureExtractor.from_pretrained(folder, local_files_only=True)
        max_s = float(self.extractor.nb_max_samples) / self.extractor.sampling_rate
        if params.window_seconds > max_s + 1e-9:  # longer windows would be randomly cropped
            raise ValueError(f"embed.window_seconds: {params.window_seconds} s exceeds the "
                             f"extractor's max_length_s ({max_s} s)")
        # an unfused model takes one mel image per window ("rand_trunc" never crops a full-length
        # window); a fused one takes the 4-view "fusion" input
        self.truncation = "fusion" if self.model.config.audio_config.enable_fusion else "rand_trunc"
        self.params, self.device = params, device
        self.name, self.dim = "clap", int(self.model.config.projection_dim)

    def embed(self, audio: np.ndarray, sample_rate: int) -> np.ndarray:
        """Projected embeddings of overlapping windows ``[T, projection_dim]``."""
        mono = to_mono(audio, sample_rate, self.rate)
        win = int(round(self.params.window_seconds * self.rate))
        hop = int(round(self.params.hop_seconds * self.rate))
        windows = []
        for s in clap_window_starts(len(mono), win, hop):
            piece = mono[s:s + win]
            windows.append(np.pad(piece, (0, win - len(piece))) if len(piece) < win else piece)
        out = []
        for i in range(0, len(windows), self.batch):
            feats = self.extractor(windows[i:i + self.batch], sampling_rate=self.rate,
                                   truncation=self.truncation, padding="repeatpad",
                                   return_tensors="pt")
            with torch.no_grad():
                emb = self.model.get_audio_features(
                    input_features=feats["input_features"].to(self.device),
                    is_longer=feats.get("is_longer", None))
            emb = emb.pooler_output if hasattr(emb, "pooler_output") else emb
            out.append(emb.float().cpu().numpy())
        return np.concatenate(out).astype(np.float32)


def make_embedder(params: EmbedParams, device: torch.device | None = None) -> Embedder:
    """The configured backend, on ``device`` (default: cuda when available; the stages pass
    ``runtime.device``)."""
    from .params import select_device

    device = device or select_device("auto")
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
