"""Readers that turn real multitrack datasets into :class:`~stages.lib.audio.Track` objects.

Supported layouts (``kind`` in params):

* ``folder`` — any ``<root>/<track>/{vocals,bass,drums,other}.wav`` tree with an optional
  ``mixture.wav``: MUSDB18-HQ (``<root>/train``), the rendered default, and the SDXDB23
  LabelNoise / Bleeding releases (UUID folders without a mixture: the mixture is the stem sum).
* ``musdb`` — MUSDB18 ``.stem.mp4`` files through the ``musdb`` package (needs ffmpeg/ffprobe).
* ``moisesdb`` — ``<root>/<uuid>/data.json`` + one subfolder per instrument; vocals, bass and drums
  map to themselves, every other instrument is summed into ``other``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import numpy as np

from .audio import AudioError, Track, read_wav, resample, to_stereo
from .params import TARGETS

log = logging.getLogger(__name__)

SourceKind = Literal["folder", "musdb", "moisesdb"]
MOISES_DIRECT = ("vocals", "bass", "drums")


# file types libsndfile decodes without extra parameters (raw PCM needs them: not listed)
AUDIO_SUFFIXES = frozenset({".wav", ".wave", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif",
                            ".aiff", ".aifc", ".au", ".snd", ".caf", ".w64", ".rf64"})
STEM_NAMES = (*TARGETS, "mixture")


def audio_files(folder: Path) -> dict[str, Path]:
    """``{stem name (lower case): file}`` of the audio files libsndfile reads in ``folder``
    (``Vocals.WAV`` and ``bass.flac`` count); two files of one stem are an error."""
    found: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.is_file() and path.suffix.lower() in AUDIO_SUFFIXES:
            stem = path.stem.lower()
            if stem in found:
                raise AudioError(f"{folder}: two files for stem '{stem}' ({found[stem].name}, "
                                 f"{path.name})")
            found[stem] = path
    return found


def read_track_folder(folder: str | Path, sample_rate: int, name: str | None = None) -> Track:
    """Read ``folder/{vocals,bass,drums,other}.<ext>`` (+ optional ``mixture``) as one Track;
    names match case-insensitively, ``<ext>`` is any format libsndfile reads (wav, flac, ...)."""
    folder = Path(folder)
    files = audio_files(folder)
    stems = {}
    for target in TARGETS:
        if target not in files:
            raise AudioError(f"{folder / target}.wav: missing stem file (found: "
                             f"{sorted(p.name for p in files.values()) or 'no audio files'})")
        stems[target] = read_wav(files[target], sample_rate)
    mixture = read_wav(files["mixture"], sample_rate) if "mixture" in files else None
    return Track(name or folder.name, stems, sample_rate, mixture, {"path": str(folder)})


def list_track_folders(root: str | Path) -> list[Path]:
    """Sorted sub-folders of ``root`` that hold audio (a track each); empty roots are an error.

    A sub-folder with audio files but not the four stems is an error naming it, never skipped in
    silence: every song a command finds is a song it uses.
    """
    root = Path(root)
    if not root.is_dir():
        raise AudioError(f"{root}: dataset folder not found")
    folders = []
    for sub in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        files = audio_files(sub)
        if not files:
            continue
        missing = [t for t in TARGETS if t not in files]
        if missing:
            names = sorted(p.name for p in files.values())
            raise AudioError(f"{sub}: looks like a track (audio files {names}) but has no "
                             f"{', '.join(missing)} stem")
        folders.append(sub)
    if not folders:
        raise AudioError(f"{root}: no track folders with audio stems found")
    return folders


def iter_folder_dataset(root: str | Path, sample_rate: int) -> Iterator[Track]:
    """Every track of a track-folder dataset, in sorted order."""
    for folder in list_track_folders(root):
        yield read_track_folder(folder, sample_rate)


def iter_musdb(root: str | Path, subset: str, sample_rate: int, is_wav: bool = False,
               split: str | None = None) -> Iterator[Track]:
    """MUSDB18 through the ``musdb`` package; ``subset`` is ``train`` or ``test``.

    ``is_wav=True`` reads MUSDB18-HQ; otherwise ``.stem.mp4`` files are decoded with ffmpeg.
    """
    root = Path(root)
    if not root.is_dir():
        raise AudioError(f"{root}: MUSDB18 root not found")
    import musdb  # imports stempeg, which needs ffmpeg + ffprobe on PATH

    db = musdb.DB(root=str(root), subsets=subset, split=split, is_wav=is_wav, download=False)
    if len(db) == 0:
        raise AudioError(f"{root}: musdb found no tracks in subset '{subset}'")
    for mtrack in db:
        where = f"{root}/{subset}/{mtrack.name}"
        stems = {}
        for target in TARGETS:
            audio = np.asarray(mtrack.targets[target].audio, dtype=np.float32).T
            stems[target] = resample(to_stereo(audio, where), int(mtrack.rate), sample_rate)
        mixture = resample(to_stereo(np.asarray(mtrack.audio, np.float32).T, where),
                           int(mtrack.rate), sample_rate)
        yield Track(mtrack.name, stems, sample_rate, mixture, {"path": where})


def read_moisesdb_track(folder: str | Path, sample_rate: int) -> Track:
    """One MoisesDB track: per-instrument subfolders of wavs summed into the four targets."""
    folder = Path(folder)
    meta_path = folder / "data.json"
    try:
        meta = json.loads(meta_path.read_text())
    except FileNotFoundError:
        raise AudioError(f"{meta_path}: missing MoisesDB data.json") from None
    except json.JSONDecodeError as err:
        raise AudioError(f"{meta_path}: not valid JSON ({err})") from err
    sums: dict[str, np.ndarray] = {}
    stem_dirs = sorted(p for p in folder.iterdir() if p.is_dir())
    if not stem_dirs:
        raise AudioError(f"{folder}: MoisesDB track has no stem folders")
    for stem_dir in stem_dirs:
        target = stem_dir.name if stem_dir.name in MOISES_DIRECT else "other"
        for wav in sorted(p for p in stem_dir.iterdir()
                          if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES):
            audio = read_wav(wav, sample_rate)
            if target in sums:
                if sums[target].shape != audio.shape:
                    raise AudioError(f"{wav}: length {audio.shape[-1]} differs from the track's "
                                     f"{sums[target].shape[-1]} samples")
                sums[target] = sums[target] + audio
            else:
                sums[target] = audio
    if not sums:
        raise AudioError(f"{folder}: MoisesDB track has no .wav files")
    length = next(iter(sums.values())).shape
    for target in TARGETS:
        if target not in sums:  # instrumentals have no vocals: that stem is genuinely silent
            log.info("%s: no %s stem, using silence", folder, target)
            sums[target] = np.zeros(length, dtype=np.float32)
    name = str(meta.get("song") or folder.name)
    track = Track(folder.name, sums, sample_rate, None, {"path": str(folder), "title": name})
    return track


def iter_moisesdb(root: str | Path, sample_rate: int) -> Iterator[Track]:
    """Every MoisesDB track under ``root`` (folders holding a ``data.json``), sorted by folder."""
    root = Path(root)
    if not root.is_dir():
        raise AudioError(f"{root}: MoisesDB root not found")
    folders = sorted(p.parent for p in root.glob("*/data.json"))
    if not folders:
        raise AudioError(f"{root}: no MoisesDB tracks (folders with data.json) found")
    for folder in folders:
        yield read_moisesdb_track(folder, sample_rate)


def iter_source(kind: SourceKind, root: str | Path, sample_rate: int,
                subset: str = "train") -> Iterator[Track]:
    """Dispatch to the reader for ``kind``; ``subset`` applies to ``musdb`` only."""
    if kind == "folder":
        return iter_folder_dataset(root, sample_rate)
    if kind == "musdb":
        return iter_musdb(root, subset, sample_rate)
    if kind == "moisesdb":
        return iter_moisesdb(root, sample_rate)
    raise ValueError(f"unknown source kind {kind!r}")


__all__ = [
    "iter_folder_dataset", "iter_moisesdb", "iter_musdb", "iter_source", "list_track_folders",
    "read_moisesdb_track", "read_track_folder",
]
