"""The attribution sanity check: two songs of known value planted among the training songs.

:func:`plant` adds an exact copy of the first reference song (``copy_<name>``) and a song whose
four stems are white noise at that song's stem levels (:data:`NOISE`) to a training list. After
training on that list and attributing, :func:`planted_ranks` says where they land (1 = highest
score = kept first): a copy of a clean reference song should rank high, and first in its own
reference column of ΔL; pure noise should rank below every clean song.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from .attribution import sanity_ranks
from .audio import read_wav, stem_sum, write_wav
from .io import atomic_path, dumps_json
from .params import TARGETS
from .readers import audio_files, list_track_folders
from .songs import SongList, song_lists

NOISE = "noise"

#: the keys that depend on how ΔL is reduced to scores (the column ranks do not)
REDUCTION_DEPENDENT = ("copy_rank", "copy_above_clean_median", "noise_rank",
                       "noise_below_all_clean")


def plant(songs: Path, reference: Path, out: Path, sample_rate: int, seed: int = 0) -> str:
    """Write ``out/songs/{copy_<ref0>,noise}`` and ``out/songs.json`` (the list ``songs`` plus
    both), atomically; the copy's name."""
    ref0 = list_track_folders(reference)[0]
    base = SongList.read(songs)
    with atomic_path(out) as tmp:
        (tmp / "songs").mkdir(parents=True)
        copy = tmp / "songs" / f"copy_{ref0.name}"
        shutil.copytree(ref0, copy)
        rng = np.random.default_rng(seed)
        stems = {}
        for target in TARGETS:
            audio = read_wav(audio_files(ref0)[target], sample_rate)
            level = float(np.sqrt(np.mean(audio**2)))
            stems[target] = (rng.standard_normal(audio.shape) * level).astype(np.float32)
        noise = tmp / "songs" / NOISE
        noise.mkdir()
        for target, audio in stems.items():
            write_wav(noise / f"{target}.wav", audio, sample_rate)
        write_wav(noise / "mixture.wav", stem_sum(stems), sample_rate)
        final = [str(out / "songs" / p.name) for p in (copy, noise)]
        (tmp / "songs.json").write_text(dumps_json(song_lists(
            {t: [*base.songs[t], *final] for t in TARGETS}, out / "songs.json")))
    return copy.name


def planted_ranks(delta: dict, truth: dict[str, str]) -> dict[str, float]:
    """Ranks of the planted songs in the unified score of an attribute stage's ``delta.json``
    (under both reductions of ΔL: the paper's mean, keys without suffix, and per-reference
    z-scores, ``_zscore``) and in the copy's own reference column; ``truth``: song -> kind."""
    names, refs = delta["train_names"], delta["reference_names"]
    copy = next(n for n in names if n.startswith("copy_"))
    own = refs.index(copy.removeprefix("copy_"))
    matrices = {t: np.asarray(m, dtype=np.float64) for t, m in delta["delta"].items()}
    clean = {name for name, kind in truth.items() if kind == "clean"}
    result = sanity_ranks(matrices, names, copy, own, NOISE, clean)
    zscored = sanity_ranks(matrices, names, copy, own, NOISE, clean, "zscore")
    return result | {f"{key}_zscore": zscored[key] for key in REDUCTION_DEPENDENT}
