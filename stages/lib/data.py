"""In-memory training data: song lists, decoded stems and the Open-Unmix excerpt sampler.

Audio is decoded (and resampled) once per stage and kept as float32 arrays, so a training step
costs model compute, not I/O. The sampler reproduces Open-Unmix's training augmentations: random
excerpt offsets, random-mix of stems across songs, random gain per stem and channel swap.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .audio import AudioError
from .io import read_json
from .params import TARGETS, check, check_range
from .readers import read_track_folder

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SongList:
    """Which songs (track folders) train each target model: ``{target: [folder, ...]}``.

    In the JSON file a relative folder is relative to the file's own folder, so a list means the
    same songs from any working directory; :meth:`read` returns them joined with the list's
    path (``data/lists/x.json`` + ``../mixed23/a`` -> ``data/mixed23/a``).
    """

    songs: dict[str, tuple[str, ...]]

    @classmethod
    def read(cls, path: str | Path) -> SongList:
        """Read a song-list JSON (``{"songs": {target: [folder, ...]}}``), validating it."""
        data = read_json(path)
        songs = data.get("songs") if isinstance(data, dict) else None
        if not isinstance(songs, dict) or set(songs) != set(TARGETS):
            raise ValueError(f"{path}: needs a 'songs' mapping with keys {list(TARGETS)}")
        where = Path(path).parent
        for target, folders in songs.items():
            if not folders:
                raise ValueError(f"{path}: no songs left for target '{target}'")
            if not all(isinstance(f, str) and f for f in folders):
                raise ValueError(f"{path}: songs of '{target}' must be folder paths")
        return cls({t: tuple(os.path.normpath(where / f) for f in songs[t]) for t in TARGETS})

    def all_folders(self) -> list[str]:
        """Every folder used by any target, sorted, without duplicates."""
        return sorted({f for folders in self.songs.values() for f in folders})


def list_entry(folder: str | Path, list_dir: Path) -> str:
    """How a song list stored in ``list_dir`` names ``folder``: relative to it (absolute folders
    stay absolute when the two share no root, e.g. a different drive)."""
    folder = Path(folder)
    try:
        return os.path.relpath(os.path.abspath(folder), os.path.abspath(list_dir))
    except ValueError:
        return str(folder.resolve())


def song_lists(songs: dict[str, list[str]], list_path: Path) -> dict:
    """The JSON payload of a song list written to ``list_path``: ``{target: [folder, ...]}``."""
    return {"songs": {t: sorted(list_entry(f, list_path.parent) for f in songs[t])
                      for t in TARGETS}}


def song_list_for(folders: list[str], list_path: Path) -> dict:
    """The JSON payload of a song list that uses the same folders for every target."""
    return song_lists({t: list(folders) for t in TARGETS}, list_path)


@dataclass
class StemBank:
    """Decoded songs: ``audio[i]`` is ``[4 stems (TARGETS order), 2, samples]`` float32."""

    folders: list[str]
    audio: list[np.ndarray]
    sample_rate: int

    @classmethod
    def load(cls, folders: list[str], sample_rate: int) -> StemBank:
        """Decode every folder's stems once."""
        audio = []
        for folder in folders:
            track = read_track_folder(folder, sample_rate)
            audio.append(np.stack([track.stems[t] for t in TARGETS]).astype(np.float32))
        return cls(list(folders), audio, sample_rate)

    def index(self, folders: tuple[str, ...]) -> np.ndarray:
        """Positions of ``folders`` in the bank."""
        where = {f: i for i, f in enumerate(self.folders)}
        missing = [f for f in folders if f not in where]
        if missing:
            raise AudioError(f"song(s) not loaded: {missing[:3]}")
        return np.array([where[f] for f in folders])

    def mixture(self, i: int) -> np.ndarray:
        """Sum of the stems of song ``i`` ``[2, samples]`` (fixed order, reproducible)."""
        return self.audio[i].sum(axis=0, dtype=np.float32)


@dataclass(frozen=True)
class SamplerParams:
    """Open-Unmix's training data knobs."""

    excerpt_seconds: float
    samples_per_track: int
    random_mix: bool
    gain_range: tuple[float, float]
    channel_swap: bool

    def __post_init__(self) -> None:
        check(0 < self.excerpt_seconds <= 600, "train.sampler.excerpt_seconds",
              "must be in (0, 600] s")
        check_range(self.samples_per_track, 1, 100_000, "train.sampler.samples_per_track")
        check(0 < self.gain_range[0] <= self.gain_range[1], "train.sampler.gain_range",
              "must be an increasing positive range")


class ExcerptSampler:
    """Draws ``(mixture, target)`` batches ``[batch, 2, samples]`` for one target model."""

    def __init__(self, bank: StemBank, songs: np.ndarray, target: str, params: SamplerParams):
        self.bank = bank
        self.songs = songs
        self.target_index = TARGETS.index(target)
        self.params = params
        self.length = int(round(params.excerpt_seconds * bank.sample_rate))
        short = [bank.folders[i] for i in songs if bank.audio[i].shape[-1] < self.length]
        if short:
            raise AudioError(f"{short[0]}: shorter than train.sampler.excerpt_seconds "
                             f"({params.excerpt_seconds} s)")

    def _stem(self, rng: np.random.Generator, song: int, stem: int) -> np.ndarray:
        audio = self.bank.audio[song]
        start = int(rng.integers(0, audio.shape[-1] - self.length + 1))
        excerpt = audio[stem, :, start:start + self.length]
        gain = np.float32(rng.uniform(*self.params.gain_range))
        excerpt = excerpt * gain
        if self.params.channel_swap and rng.random() < 0.5:
            excerpt = excerpt[::-1]
        return excerpt

    def batch(self, rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
        """One batch: mixtures and the target stem, both ``[size, 2, samples]`` float32."""
        mixes = np.empty((size, 2, self.length), np.float32)
        targets = np.empty_like(mixes)
        for b in range(size):
            base_song = int(rng.choice(self.songs))
            stems = []
            for stem in range(len(TARGETS)):
                song = int(rng.choice(self.songs)) if self.params.random_mix else base_song
                stems.append(self._stem(rng, song, stem))
            targets[b] = stems[self.target_index]
            mixes[b] = np.sum(stems, axis=0, dtype=np.float32)
        return mixes, targets

    def steps_per_epoch(self, batch_size: int) -> int:
        """Open-Unmix's epoch: ``samples_per_track`` excerpts per training song."""
        return max(1, int(np.ceil(len(self.songs) * self.params.samples_per_track / batch_size)))
