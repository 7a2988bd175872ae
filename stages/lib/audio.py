"""Audio primitives: the :class:`Track` abstraction and wav I/O that fails loudly and clearly.

All audio inside the pipeline is ``float32`` with shape ``[channels=2, samples]`` at the pipeline
sample rate (``base.sample_rate``). Readers up-mix mono and resample other rates on the way in.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf

from .params import TARGETS

log = logging.getLogger(__name__)

CHANNELS = 2


class AudioError(ValueError):
    """An audio file or track is unusable; the message names the file or track."""


@dataclass
class Track:
    """One multitrack song: four stems as float32 ``[2, samples]`` arrays at ``sample_rate`` Hz.

    ``mixture`` is the stored mixture when the source has one, else the sum of the stems.
    """

    name: str
    stems: dict[str, np.ndarray]
    sample_rate: int
    mixture_audio: np.ndarray | None = None
    meta: dict[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        missing = [t for t in TARGETS if t not in self.stems]
        if missing:
            raise AudioError(f"track {self.name}: missing stem(s) {missing}")
        lengths = {t: self.stems[t].shape[-1] for t in TARGETS}
        if self.mixture_audio is not None:
            lengths["mixture"] = self.mixture_audio.shape[-1]
        if len(set(lengths.values())) != 1:
            raise AudioError(f"track {self.name}: stems of unequal length {lengths} (samples)")
        for stem, audio in [*self.stems.items(), ("mixture", self.mixture_audio)]:
            if audio is not None and audio.shape[0] != CHANNELS:
                raise AudioError(f"track {self.name}: {stem} has shape {audio.shape}, want [2, n]")

    @property
    def num_samples(self) -> int:
        """Length in samples."""
        return int(self.stems[TARGETS[0]].shape[-1])

    @property
    def mixture(self) -> np.ndarray:
        """The mixture ``[2, samples]``: stored one if present, else the stem sum."""
        if self.mixture_audio is not None:
            return self.mixture_audio
        return stem_sum(self.stems)


def stem_sum(stems: dict[str, np.ndarray]) -> np.ndarray:
    """Sum of the four target stems in a fixed order (float32, bit-reproducible)."""
    total = np.zeros_like(stems[TARGETS[0]], dtype=np.float32)
    for target in TARGETS:
        total += stems[target].astype(np.float32, copy=False)
    return total


def resample(audio: np.ndarray, orig_sr: int, new_sr: int) -> np.ndarray:
    """Band-limited resampling of ``[channels, samples]`` audio with torchaudio."""
    if orig_sr == new_sr:
        return audio
    import torch
    import torchaudio.functional as AF

    out = AF.resample(torch.from_numpy(np.ascontiguousarray(audio)), orig_sr, new_sr)
    return out.numpy().astype(np.float32, copy=False)


def to_stereo(audio: np.ndarray, where: str) -> np.ndarray:
    """Up-mix mono to two identical channels; reject more than two channels."""
    if audio.shape[0] == 1:
        return np.repeat(audio, CHANNELS, axis=0)
    if audio.shape[0] != CHANNELS:
        raise AudioError(f"{where}: {audio.shape[0]} channels, expected mono or stereo")
    return audio


def read_wav(path: str | Path, sample_rate: int) -> np.ndarray:
    """Read an audio file as float32 ``[2, samples]`` at ``sample_rate``.

    Mono is up-mixed, other rates are resampled (and logged). Unreadable, empty or non-finite
    files raise :class:`AudioError` naming the file.
    """
    path = Path(path)
    if not path.is_file():
        raise AudioError(f"{path}: file not found")
    try:
        data, file_sr = sf.read(path, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError) as err:
        raise AudioError(f"{path}: cannot decode audio ({err})") from err
    if data.shape[0] == 0:
        raise AudioError(f"{path}: empty audio file (0 samples)")
    if not np.isfinite(data).all():
        raise AudioError(f"{path}: contains NaN or infinite samples")
    audio = to_stereo(np.ascontiguousarray(data.T), str(path))
    if file_sr != sample_rate:
        log.info("%s: resampling %d Hz -> %d Hz", path, file_sr, sample_rate)
        audio = resample(audio, file_sr, sample_rate)
    return audio


# libsndfile adds a PEAK chunk to float WAVs whose header holds the write time, so two writes of the
# same samples would differ in bytes (and in DVC hash). Switching it off makes outputs byte-stable.
_SFC_SET_ADD_PEAK_CHUNK = 0x1050


def write_wav(path: str | Path, audio: np.ndarray, sample_rate: int, subtype: str = "FLOAT") -> None:
    """Write ``[channels, samples]`` audio; same samples -> same bytes (no timestamped PEAK chunk).

    Not atomic by itself: stages write into a temporary folder (:func:`~.io.atomic_path`).
    """
    frames = np.ascontiguousarray(np.asarray(audio, dtype=np.float32).T)
    with sf.SoundFile(path, "w", samplerate=sample_rate, channels=frames.shape[1],
                      subtype=subtype, format="WAV") as handle:
        sf._snd.sf_command(handle._file, _SFC_SET_ADD_PEAK_CHUNK, sf._ffi.NULL, 0)
        handle.write(frames)


def write_track(folder: str | Path, track: Track, subtype: str = "FLOAT") -> None:
    """Write a track as ``folder/{mixture,vocals,bass,drums,other}.wav`` (MUSDB18-HQ layout)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for stem in ("mixture", *TARGETS):
        audio = track.mixture if stem == "mixture" else track.stems[stem]
        write_wav(folder / f"{stem}.wav", audio, track.sample_rate, subtype)


def peak(audio: np.ndarray) -> float:
    """Absolute peak level (linear)."""
    return float(np.max(np.abs(audio))) if audio.size else 0.0
