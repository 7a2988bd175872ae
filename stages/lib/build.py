"""Build the contaminated training sets (Mixed23, EffectsDB) with a ground-truth manifest.

The training pool is split, by a seeded permutation, into disjoint groups: clean songs (shared by
both sets, as the paper's MUSDB18-train songs are) and the songs each set corrupts. The audio goes
to ``<out>/<song>/*.wav``; the truth (which song got which corruption, which stems, which draws)
goes to a separate JSON file that only the report reads, so no cleaning method can peek at it.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from tqdm import tqdm

from .audio import Track, peak, write_track, write_wav
from .corrupt import (
    EFFECTS,
    BleedingParams,
    EffectParams,
    LabelNoiseParams,
    apply_effect,
    bleeding,
    label_noise,
)
from .io import atomic_path, write_json
from .params import check, check_range
from .readers import list_track_folders, read_track_folder
from .rng import keyed_rng
from .sources import SourceSpec, real_tracks, source_names

log = logging.getLogger(__name__)

Corruptor = Callable[[Track, np.random.Generator], tuple[Track, dict]]
Job = tuple[Track, str, str, "Corruptor | None"]


@dataclass(frozen=True)
class PoolParams:
    """``pool`` section: how the rendered training pool is split into disjoint groups."""

    seed: int
    n_clean: int
    n_label_noise: int
    n_bleeding: int
    n_effects: int

    def __post_init__(self) -> None:
        for key in ("n_clean", "n_label_noise", "n_bleeding", "n_effects"):
            check_range(getattr(self, key), 0, 100_000, f"pool.{key}")
        check(self.n_clean >= 1, "pool.n_clean", "must be >= 1")


@dataclass(frozen=True)
class Mixed23Params:
    """``build_mixed23`` section: clean + label noise + bleeding (simulated or real folders)."""

    mode: Literal["simulated", "real"]
    seed: int
    label_noise: LabelNoiseParams
    bleeding: BleedingParams
    real_clean: SourceSpec | None
    real_label_noise: SourceSpec | None
    real_bleeding: SourceSpec | None

    def __post_init__(self) -> None:
        if self.mode == "real":
            for key in ("real_clean", "real_label_noise", "real_bleeding"):
                check(getattr(self, key) is not None, f"build_mixed23.{key}",
                      "required when mode is 'real'")


@dataclass(frozen=True)
class EffectsDBParams:
    """``build_effectsdb`` section: clean + songs processed with one effect each (random thirds)."""

    mode: Literal["simulated", "real"]
    seed: int
    effects: tuple[str, ...]
    effect_params: EffectParams
    real_clean: SourceSpec | None
    real_effects: SourceSpec | None

    def __post_init__(self) -> None:
        for name in self.effects:
            check(name in EFFECTS, "build_effectsdb.effects",
                  f"unknown effect {name!r} (known: {list(EFFECTS)})")
        check(len(self.effects) > 0, "build_effectsdb.effects", "needs at least one effect")
        if self.mode == "real":
            for key in ("real_clean", "real_effects"):
                check(getattr(self, key) is not None, f"build_effectsdb.{key}",
                      "required when mode is 'real'")


def allocate_pool(names: list[str], pool: PoolParams) -> dict[str, list[str]]:
    """Split pool song names into disjoint ``clean``, ``label_noise``, ``bleeding``, ``effects``."""
    wanted = {"clean": pool.n_clean, "label_noise": pool.n_label_noise,
              "bleeding": pool.n_bleeding, "effects": pool.n_effects}
    if sum(wanted.values()) > len(names):
        raise ValueError(f"pool: {sum(wanted.values())} songs requested ({wanted}) but the "
                         f"training pool has only {len(names)}")
    if len(set(names)) != len(names):
        raise ValueError("pool: duplicate song names in the training pool")
    order = np.random.default_rng(pool.seed).permutation(len(names))
    shuffled = [sorted(names)[i] for i in order]
    groups, start = {}, 0
    for group, count in wanted.items():
        groups[group] = sorted(shuffled[start:start + count])
        start += count
    return groups


def pool_tracks(pool_dir: Path, names: list[str], sample_rate: int) -> Iterator[Track]:
    """Read the named songs from a track-folder pool, in the given order."""
    for name in names:
        yield read_track_folder(pool_dir / name, sample_rate)


def build_set(jobs: Iterable[Job], total: int, seed: int, out_dir: Path, truth_path: Path,
              dataset: str, quiet: bool = False, examples: Path | None = None,
              n_examples: int = 2, exclude: frozenset[str] = frozenset()) -> dict[str, int]:
    """Corrupt and write every ``(track, source, kind, corruptor)`` job; write the truth manifest.

    Jobs are consumed lazily (one song in memory at a time). Outputs are atomic: on any error
    neither the audio folder nor the manifest is left behind. Songs named in ``exclude`` (the
    reference and test sets) are refused. Returns songs per corruption kind.
    """
    rows: list[dict] = []
    shown: Counter[str] = Counter()
    with atomic_path(out_dir) as tmp_dir:
        tmp_dir.mkdir()
        for track, source, kind, corruptor in tqdm(jobs, total=total, desc=dataset, unit="song",
                                                   disable=quiet):
            if any(r["name"] == track.name for r in rows):
                raise ValueError(f"{dataset}: duplicate track name {track.name!r} across sources")
            if track.name in exclude:
                raise ValueError(f"{dataset}: song {track.name!r} is also in the reference or "
                                 "test set; splits must not overlap")
            info: dict = {"stems": []}
            out = track
            if corruptor is not None:
                out, info = corruptor(track, keyed_rng(seed, kind, track.name))
            write_track(tmp_dir / track.name, out)
            rows.append({"name": track.name, "source": source, "corruption": kind,
                         "stems": info.pop("stems"), "draws": info, "seed": seed,
                         "peak_mixture": round(peak(out.mixture), 5)})
            if examples is not None and kind != "clean" and shown[kind] < n_examples:
                shown[kind] += 1
                for stem in ("mixture", *sorted(track.stems)):
                    before = track.mixture if stem == "mixture" else track.stems[stem]
                    after = out.mixture if stem == "mixture" else out.stems[stem]
                    write_track_pair(examples / dataset / f"{kind}_{track.name}", stem, before,
                                     after, track.sample_rate)
    counts = dict(sorted(Counter(r["corruption"] for r in rows).items()))
    write_json(truth_path, {"dataset": dataset, "counts": counts, "tracks": rows})
    return counts


def write_track_pair(folder: Path, stem: str, before: np.ndarray, after: np.ndarray,
                     sample_rate: int) -> None:
    """Write ``<stem>_before.wav`` / ``<stem>_after.wav`` for listening checks."""
    folder.mkdir(parents=True, exist_ok=True)
    for label, audio in (("before", before), ("after", after)):
        write_wav(folder / f"{stem}_{label}.wav", audio, sample_rate)


BUILDERS: dict[str, tuple[type, Callable[..., Iterator[Job]], Callable[[PoolParams], int]]] = {
    # dataset: (params class of its build_<dataset> section, job maker, songs in the set)
    "mixed23": (Mixed23Params, lambda *a: mixed23_jobs(*a),
                lambda pool: pool.n_clean + pool.n_label_noise + pool.n_bleeding),
    "effectsdb": (EffectsDBParams, lambda *a: effectsdb_jobs(*a),
                  lambda pool: pool.n_clean + pool.n_effects),
}


def real_roots(params: Mixed23Params | EffectsDBParams) -> dict[str, Path]:
    """The real dataset roots a build reads (``mode: real``), keyed by their params key."""
    if params.mode != "real":
        return {}
    specs = {k: getattr(params, k) for k in ("real_clean", "real_label_noise", "real_bleeding",
                                             "real_effects") if hasattr(params, k)}
    return {k: Path(v.root) for k, v in specs.items() if v is not None}


def pool_names(pool_dir: Path) -> list[str]:
    """Song names of a track-folder pool."""
    return [p.name for p in list_track_folders(pool_dir)]


def mixed23_jobs(params: Mixed23Params, pool: PoolParams, pool_dir: Path | None,
                 sample_rate: int) -> Iterator[Job]:
    """The (track, source, corruption, corruptor) jobs for Mixed23, simulated or real (lazy)."""
    ln: Corruptor = lambda t, r: label_noise(t, r, params.label_noise)  # noqa: E731
    bl: Corruptor = lambda t, r: bleeding(t, r, params.bleeding)  # noqa: E731
    if params.mode == "real":
        assert params.real_clean and params.real_label_noise and params.real_bleeding
        parts = [("clean", params.real_clean, pool.n_clean),
                 ("label_noise", params.real_label_noise, pool.n_label_noise),
                 ("bleeding", params.real_bleeding, pool.n_bleeding)]
        for kind, spec, n in parts:
            for track in real_tracks(spec, sample_rate, n, f"build_mixed23.real_{kind}"):
                yield track, spec.root, kind, None
        return
    if pool_dir is None:
        raise ValueError("build_mixed23: simulated mode needs --pool")
    groups = allocate_pool(pool_names(pool_dir), pool)
    for kind, corruptor in (("clean", None), ("label_noise", ln), ("bleeding", bl)):
        for track in pool_tracks(pool_dir, groups[kind], sample_rate):
            yield track, str(pool_dir), kind, corruptor


def effect_assignment(names: list[str], effects: tuple[str, ...], seed: int) -> dict[str, str]:
    """Split songs into random (near-)equal groups, one per effect (the paper's random thirds)."""
    order = np.random.default_rng(seed).permutation(len(names))
    return {sorted(names)[i]: effects[k % len(effects)] for k, i in enumerate(order)}


def effectsdb_jobs(params: EffectsDBParams, pool: PoolParams, pool_dir: Path | None,
                   sample_rate: int) -> Iterator[Job]:
    """The jobs for EffectsDB: clean songs + songs processed with one effect each (lazy)."""
    if params.mode == "real":
        assert params.real_clean and params.real_effects
        clean_spec, noisy_spec = params.real_clean, params.real_effects
        for track in real_tracks(clean_spec, sample_rate, pool.n_clean,
                                 "build_effectsdb.real_clean"):
            yield track, clean_spec.root, "clean", None
        noisy: Iterable[Track] = real_tracks(noisy_spec, sample_rate, pool.n_effects,
                                             "build_effectsdb.real_effects")
        noisy_source = noisy_spec.root
        names = source_names(noisy_spec)[: pool.n_effects]
    else:
        if pool_dir is None:
            raise ValueError("build_effectsdb: simulated mode needs --pool")
        groups = allocate_pool(pool_names(pool_dir), pool)
        for track in pool_tracks(pool_dir, groups["clean"], sample_rate):
            yield track, str(pool_dir), "clean", None
        names = groups["effects"]
        noisy = pool_tracks(pool_dir, names, sample_rate)
        noisy_source = str(pool_dir)
    assignment = effect_assignment(names, params.effects, params.seed)
    for track in noisy:
        effect = assignment[track.name]
        yield (track, noisy_source, effect,
               lambda t, r, e=effect: apply_effect(t, e, params.effect_params))
