"""Training songs: song lists, songs streamed from disk and the Open-Unmix excerpt sampler.

A training process never has to hold its songs in memory: :class:`SongTable` reads each excerpt
with one seek (memory bounded by the batch, not the dataset); a set that fits a budget is held
in memory instead (mapped, or decoded once). The sampler reproduces Open-Unmix's
training augmentations: random excerpt offsets, random-mix of stems across songs, random gain
per stem and channel swap; every batch has its own seed, so loader workers do not change it.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from .audio import AudioError, read_wav, to_stereo
from .io import read_json
from .params import TARGETS, check, check_range
from .readers import audio_files

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


@dataclass(frozen=True)
class Song:
    """One track folder as the trainer sees it: a file per target (TARGETS order), its length."""

    folder: str
    stems: tuple[Path, ...]
    frames: int


class SongTable:
    """Training songs read from disk on demand: excerpts are seeked, never whole files decoded.

    :meth:`open` checks every stem's header (rate, channels, equal lengths) without decoding, so
    a process holds only the excerpts of the batch in flight, whatever the number of songs. A set
    whose decoded samples fit ``preload_mib`` is held in memory instead: 32-bit float WAV files
    (what the pipeline writes) are memory-mapped, nothing decoded; any other set is decoded once
    into RAM. Every way gives the same values, bit for bit. Files must be at the pipeline's
    sample rate: training never resamples per step.
    """

    def __init__(self, songs: list[Song], sample_rate: int,
                 audio: list[np.ndarray] | None = None,
                 maps: list[list[np.ndarray]] | None = None, *, stamp: tuple) -> None:
        self.songs = songs
        self.sample_rate = sample_rate
        self.stamp = stamp  # the files' identity when opened (folder_stamp)
        self._audio = audio
        self._maps = maps  # per song and stem: the file's samples [frames, channels], mapped

    @classmethod
    def open(cls, folders: list[str] | tuple[str, ...], sample_rate: int,
             preload_mib: float = 0.0) -> SongTable:
        """Index ``folders`` (headers only); hold every song in memory when they take at most
        ``preload_mib`` MiB as float32 (0: never; ``math.inf``: always): mapped when every stem
        is a float WAV, else decoded."""
        stamp = folder_stamp(folders)
        songs = [_song(folder, sample_rate) for folder in folders]
        if not (preload_mib > 0 and decoded_mib(songs) <= preload_mib):
            return cls(songs, sample_rate, stamp=stamp)
        maps = [[float_wav_samples(p, song.frames) for p in song.stems] for song in songs]
        if all(m is not None for song in maps for m in song):
            for song, stems in zip(songs, maps, strict=True):
                for path, samples in zip(song.stems, stems, strict=True):
                    check_finite(samples, path)  # type: ignore[arg-type]
            return cls(songs, sample_rate, maps=maps, stamp=stamp)  # type: ignore[arg-type]
        audio = [np.stack([read_wav(p, sample_rate) for p in song.stems]) for song in songs]
        return cls(songs, sample_rate, audio, stamp=stamp)

    @property
    def preloaded(self) -> bool:
        """Whether the songs are held in memory (mapped or decoded)."""
        return self._audio is not None or self._maps is not None

    @property
    def mapped(self) -> bool:
        """Whether the songs are memory-mapped float WAV files."""
        return self._maps is not None

    @property
    def folders(self) -> list[str]:
        return [song.folder for song in self.songs]

    def __len__(self) -> int:
        return len(self.songs)

    def frames(self, i: int) -> int:
        """Samples per channel of song ``i``."""
        return self.songs[i].frames

    def excerpt(self, i: int, stem: int, start: int, length: int) -> np.ndarray:
        """``[2, length]`` float32 samples of one stem from ``start`` (one seek and one read)."""
        if self._audio is not None:
            return self._audio[i][stem, :, start:start + length]
        if self._maps is not None:
            return to_stereo(self._maps[i][stem][start:start + length].T, "")
        song = self.songs[i]
        data, _ = sf.read(song.stems[stem], start=start, frames=length, dtype="float32",
                          always_2d=True)
        if data.shape[0] != length:
            raise AudioError(f"{song.stems[stem]}: ended before sample {start + length} "
                             f"(header says {song.frames})")
        check_finite(data, song.stems[stem])
        return to_stereo(data.T, str(song.stems[stem]))

    def stems(self, i: int) -> np.ndarray:
        """Every stem of song ``i``, whole: ``[4, 2, frames]`` float32 (one song at a time)."""
        if self._audio is not None:
            return self._audio[i]
        if self._maps is not None:
            return np.stack([to_stereo(m.T, "") for m in self._maps[i]])
        return np.stack([read_wav(p, self.sample_rate) for p in self.songs[i].stems])

    def fingerprint(self, indices: np.ndarray) -> str:
        """Digest of the songs' identity (folder, stem sizes, first and last MiB of each stem):
        a checkpoint of other data is never resumed. Reads 2 MiB per stem, not whole files, and
        names folders as given (relative), so a clone elsewhere on the same data agrees."""
        h = hashlib.blake2b(digest_size=16)
        for i in indices:
            song = self.songs[int(i)]
            h.update(song.folder.encode())
            for path in song.stems:
                size = path.stat().st_size
                h.update(str(size).encode())
                with path.open("rb") as f:
                    h.update(f.read(_EDGE))
                    f.seek(max(0, size - _EDGE))
                    h.update(f.read(_EDGE))
        return h.hexdigest()


_EDGE = 1 << 20


def check_finite(samples: np.ndarray, path: Path, chunk: int = 1 << 20) -> None:
    """:class:`AudioError` naming ``path`` if any sample is NaN or infinite (checked in chunks,
    so a mapped file is read once and no full-size mask is built)."""
    flat = samples.reshape(-1)
    for start in range(0, flat.size, chunk):
        if not np.isfinite(flat[start:start + chunk]).all():
            raise AudioError(f"{path}: contains NaN or infinite samples")


def folder_stamp(folders: Sequence[str]) -> tuple:
    """The identity of song folders as they are on disk: every entry's name, size and
    modification time (a few stat calls per song; cache keys of per-process tables)."""
    stamp = []
    for folder in folders:
        with os.scandir(folder) as entries:
            for entry in sorted(entries, key=lambda e: e.name):
                info = entry.stat()
                stamp.append((folder, entry.name, info.st_size, info.st_mtime_ns))
    return tuple(stamp)


_IEEE_FLOAT, _EXTENSIBLE = 3, 0xFFFE


def float_wav_samples(path: Path, frames: int) -> np.ndarray | None:
    """The samples of a 32-bit float WAV file as a read-only memory map ``[frames, channels]``
    (the file's own values: what decoding it gives, bit for bit), or ``None`` for any other
    kind of file, which must be decoded."""
    with path.open("rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return None
        channels = bits = fmt = None
        while chunk := f.read(8):
            if len(chunk) < 8:
                return None
            name, size = chunk[:4], int.from_bytes(chunk[4:], "little")
            if name == b"fmt ":
                body = f.read(size)
                fmt, channels, bits = (int.from_bytes(body[0:2], "little"),
                                       int.from_bytes(body[2:4], "little"),
                                       int.from_bytes(body[14:16], "little"))
                if fmt == _EXTENSIBLE and len(body) >= 26:  # the sub-format GUID starts with it
                    fmt = int.from_bytes(body[24:26], "little")
                f.seek(size % 2, os.SEEK_CUR)
            elif name == b"data":
                if fmt != _IEEE_FLOAT or bits != 32 or not channels:
                    return None
                if size < frames * channels * 4:
                    return None
                return np.memmap(path, dtype="<f4", mode="r", offset=f.tell(),
                                 shape=(frames, channels))
            else:
                f.seek(size + size % 2, os.SEEK_CUR)
    return None


def decoded_mib(songs: list[Song]) -> float:
    """MiB that ``songs`` take decoded: stereo float32, one file per stem."""
    return sum(song.frames * len(song.stems) * 2 * 4 for song in songs) / 2**20


def song_digest(folder: str | Path) -> str:
    """Digest of a track folder's four stems by content (TARGETS order; the folder's name and
    place do not count): the same song copied into two datasets has one digest."""
    files = audio_files(Path(folder))
    h = hashlib.blake2b(digest_size=16)
    for target in TARGETS:
        if target not in files:
            raise AudioError(f"{Path(folder) / target}.wav: missing stem file")
        with files[target].open("rb") as f:
            while chunk := f.read(1 << 24):
                h.update(chunk)
    return h.hexdigest()


def _song(folder: str, sample_rate: int) -> Song:
    """A :class:`Song` from headers; any unreadable, mismatched or empty stem names its file."""
    if not Path(folder).is_dir():
        raise AudioError(f"{folder}: track folder not found")
    files = audio_files(Path(folder))
    stems, frames = [], set()
    for target in TARGETS:
        if target not in files:
            raise AudioError(f"{Path(folder) / target}.wav: missing stem file")
        path = files[target]
        try:
            info = sf.info(str(path))
        except (sf.LibsndfileError, RuntimeError) as err:
            raise AudioError(f"{path}: cannot decode audio ({err})") from err
        if info.samplerate != sample_rate:
            raise AudioError(f"{path}: {info.samplerate} Hz; training seeks excerpts in "
                             f"{sample_rate} Hz files (base.sample_rate) and never resamples per "
                             f"step: resample the folder once (the pipeline's render and build "
                             f"stages write every dataset at that rate)")
        if info.channels not in (1, 2):
            raise AudioError(f"{path}: {info.channels} channels, expected mono or stereo")
        if info.frames == 0:
            raise AudioError(f"{path}: empty audio file (0 samples)")
        stems.append(path)
        frames.add(info.frames)
    if len(frames) != 1:
        raise AudioError(f"{folder}: stems differ in length ({sorted(frames)} samples)")
    return Song(str(folder), tuple(stems), frames.pop())


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
    """Draws ``(mixture, target)`` batches ``[batch, 2, samples]`` for one target model.

    A batch is a pure function of the generator it is given: :class:`TrainingBatches` seeds one
    per (epoch, step), so batches do not depend on which process draws them or in what order.
    """

    def __init__(self, table: SongTable, songs: np.ndarray, target: str, params: SamplerParams):
        self.table = table
        self.songs = songs
        self.target_index = TARGETS.index(target)
        self.params = params
        self.length = int(round(params.excerpt_seconds * table.sample_rate))
        short = [table.folders[i] for i in songs if table.frames(int(i)) < self.length]
        if short:
            raise AudioError(f"{short[0]}: shorter than train.sampler.excerpt_seconds "
                             f"({params.excerpt_seconds} s)")

    def _stem(self, rng: np.random.Generator, song: int, stem: int) -> np.ndarray:
        start = int(rng.integers(0, self.table.frames(song) - self.length + 1))
        excerpt = self.table.excerpt(song, stem, start, self.length)
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


class TrainingBatches:
    """Batch ``epoch * steps + step`` of a run, drawn with its own generator
    ``default_rng([seed, target, epoch, step])``: the same batches in the same order whether one
    process or N loader workers draw them (a torch map-style dataset)."""

    def __init__(self, sampler: ExcerptSampler, seed: int, steps: int, batch_size: int) -> None:
        self.sampler = sampler
        self.seed = seed
        self.steps = steps
        self.batch_size = batch_size

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        epoch, step = divmod(int(index), self.steps)
        rng = np.random.default_rng([self.seed, self.sampler.target_index, epoch, step])
        return self.sampler.batch(rng, self.batch_size)
