"""Clean your own dataset: score every song of a folder against a small trusted clean set.

The three methods of the benchmark as one in-process pipeline (``python -m stages.tools.clean``):
``fad`` and ``mlp`` embed both sets; ``unlearn`` trains the Open-Unmix baseline on the songs
(kept in a ``baseline/`` folder and reused when the same songs, params and seed come again),
then attributes. Each phase logs one summary line, even without progress bars.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from tqdm import tqdm

from .attribution import scores_from_delta
from .attribution_inputs import AttributeParams, attribute_models, load_song_inputs
from .audio import AudioError, write_track
from .embeddings import EmbedParams, embed_track, make_embedder
from .fad import FADParams, fad_score_table
from .io import atomic_path, dumps_json, output_folder, read_json, sidecar
from .mlp import MLPParams, labelled, mlp_score_table, train_classifier
from .params import TARGETS, RuntimeParams, select_device
from .readers import audio_files, iter_source, list_track_folders, read_track_folder
from .scores import ScoreTable
from .unmix import (
    TargetJob,
    TrainParams,
    build_model,
    find_training,
    load_model,
    loading,
    model_config,
    train_targets,
    training_key,
)

log = logging.getLogger(__name__)

Store = dict[str, dict[str, np.ndarray]]


@dataclass(frozen=True)
class Runtime:
    """How to run (never what to compute): the ``runtime`` section and progress bars."""

    params: RuntimeParams
    quiet: bool

    @property
    def device(self) -> str:
        return self.params.device


def embed_source(kind: str, root: Path, sample_rate: int, params: EmbedParams,
                 runtime: Runtime) -> Store:
    """Frame embeddings of every song of a source; duplicate song names are an error."""
    embedder = make_embedder(params, select_device(runtime.device))
    total = len(list_track_folders(root)) if kind == "folder" else None
    store: Store = {}
    for track in tqdm(iter_source(kind, root, sample_rate), total=total, desc=f"embed {root.name}",
                      unit="song", disable=runtime.quiet):
        if track.name in store:
            raise ValueError(f"{root}: two songs are named {track.name!r}")
        store[track.name] = embed_track(embedder, track)
    log.info("embedded %d songs of %s (%s)", len(store), root, params.backend)
    return store


def check_reference_lengths(folders: list[Path], seconds: float, key: str) -> None:
    """Every reference song must hold ``seconds`` of audio (read from the headers: instant)."""
    import soundfile as sf

    for folder in folders:
        for stem in audio_files(folder).values():
            info = sf.info(str(stem))
            if info.frames < seconds * info.samplerate:
                raise AudioError(f"{stem}: {info.frames / info.samplerate:.2f} s, shorter than "
                                 f"{key} ({seconds} s)")


def baseline_models(songs: Path, reference: Path, baseline: Path, train: TrainParams, seed: int,
                    sample_rate: int, runtime: Runtime) -> dict[str, torch.nn.Module]:
    """The four target models trained on ``songs``: loaded from ``baseline`` when it holds this
    very baseline, else trained and stored there (so a baseline is never trained twice)."""
    folders = tuple(str(p) for p in list_track_folders(songs))
    valid = tuple(str(p) for p in list_track_folders(reference))
    key = training_key({t: folders for t in TARGETS}, valid, train, seed, sample_rate,
                       runtime.device, runtime.params.worker_threads)
    if find_training([baseline], key) is not None:
        log.info("baseline: reusing %s (same songs by content, train params, seed and code)",
                 baseline)
        config = read_json(baseline / "model.json")["config"]
        return {t: load_model(baseline / f"{t}.pth", config) for t in TARGETS}
    log.info("baseline: training 4 target models on %d songs (seed %d)", len(folders), seed)
    jobs = [TargetJob(target=t, folders=folders, valid_folders=valid, sample_rate=sample_rate,
                      params=train, seed=seed, device=runtime.device,
                      threads=runtime.params.worker_threads, loading=loading(runtime.params),
                      data_key=key, quiet=runtime.quiet) for t in TARGETS]
    results = train_targets(jobs, runtime.params.workers)
    config = model_config(train.model, sample_rate)
    with atomic_path(baseline) as tmp:
        tmp.mkdir()
        for target, result in results.items():
            torch.save(result.state_dict, tmp / f"{target}.pth")
        (tmp / "model.json").write_text(dumps_json({"config": config, "training_key": key}))
        (tmp / "sidecar.json").write_text(dumps_json(sidecar(train, seed=seed)))
    models = {}
    for target, result in results.items():
        model = build_model(train.model, sample_rate)
        model.load_state_dict(result.state_dict)
        models[target] = model.eval()
    return models


def unlearn_table(songs: Path, reference: Path, baseline: Path, train: TrainParams,
                  attr: AttributeParams, seed: int, sample_rate: int,
                  runtime: Runtime) -> ScoreTable:
    """Score every song of ``songs`` by unlearning attribution of its baseline."""
    models = baseline_models(songs, reference, baseline, train, seed, sample_rate, runtime)
    torch.set_num_threads(runtime.params.threads)
    folders = list_track_folders(songs)
    valid = list_track_folders(reference)

    def inputs(paths: list[Path], desc: str) -> list:
        return [load_song_inputs(p, sample_rate, attr, train.model.n_fft, train.model.hop)
                for p in tqdm(paths, desc=desc, unit="song", disable=runtime.quiet)]

    result = attribute_models(models, inputs(folders, "excerpts"), inputs(valid, "reference"),
                              attr, runtime.quiet)
    unified, per_target = scores_from_delta(result.delta, attr.reduction)
    log.info("attributed %d songs against %d reference songs", len(folders), len(valid))
    return ScoreTable([f.name for f in folders], per_target, unified)


def embedding_table(method: str, kind: str, songs: Path, reference: Path, embed: EmbedParams,
                    fad: FADParams, mlp: MLPParams, sample_rate: int,
                    runtime: Runtime) -> ScoreTable:
    """Score every song by per-song FAD (``fad``) or by the specialist classifier (``mlp``)."""
    torch.set_num_threads(runtime.params.threads)
    train = embed_source(kind, songs, sample_rate, embed, runtime)
    ref = embed_source("folder", reference, sample_rate, embed, runtime)
    if method == "fad":
        return fad_score_table(train, ref, fad)
    model = train_classifier(*labelled(ref), mlp)
    log.info("trained the stem classifier on %d reference songs", len(ref))
    return mlp_score_table(model, train)


def export_tracks(kind: str, root: Path, names: list[str], sample_rate: int, out: Path,
                  quiet: bool) -> dict[str, str]:
    """Decode the songs ``names`` of a MUSDB18 / MoisesDB source once into track folders
    ``out/<name>/`` (44.1 kHz-style float WAV stems, what ``stages.train`` reads)."""
    wanted, where = set(names), {}
    with atomic_path(out) as tmp:
        tmp.mkdir()
        for track in tqdm(iter_source(kind, root, sample_rate), desc="export kept", unit="song",
                          disable=quiet):
            if track.name in wanted:
                write_track(tmp / track.name, track)
                where[track.name] = str(out / track.name)
    log.info("exported the %d kept songs of %s as track folders in %s", len(where), root, out)
    return where


def at_rate(folder: Path, sample_rate: int) -> bool:
    """Whether every stem of a track folder is stored at ``sample_rate`` (what training seeks in)."""
    return all(sf.info(str(path)).samplerate == sample_rate
               for name, path in audio_files(folder).items() if name in TARGETS)


def trainable_folders(root: Path, names: list[str], sample_rate: int, out: Path,
                      quiet: bool) -> dict[str, str]:
    """``{name: folder}`` of the kept songs of a folder source: the user's own folders, except
    songs at another rate, which are resampled once into ``out/<name>/`` (training never
    resamples per step)."""
    where = {p.name: str(p) for p in list_track_folders(root)}
    convert = [name for name in names if not at_rate(Path(where[name]), sample_rate)]
    if not convert:
        return where
    with atomic_path(out) as tmp:
        tmp.mkdir()
        for name in tqdm(convert, desc="resample kept", unit="song", disable=quiet):
            write_track(tmp / name, read_track_folder(where[name], sample_rate))
            where[name] = str(out / name)
    log.info("resampled %d kept songs to %d Hz once, as track folders in %s", len(convert),
             sample_rate, out)
    return where


def write_results(out: Path, table: ScoreTable, ratio: float, rule: str, kind: str, songs: Path,
                  provenance: dict, sample_rate: int, quiet: bool = True) -> list[str]:
    """Write ``ranking.csv``, ``kept.json`` (a song list for ``stages.train``) and
    ``sidecar.json`` into ``out`` (created and marked; a ``baseline/`` there is kept). Kept songs
    of a MUSDB18 / MoisesDB source, or of folders at another rate than ``sample_rate``, are
    exported to ``out/tracks/`` so the list is trainable."""
    from .filtering import kept_songs
    from .songs import song_list_for

    kept = kept_songs(table, ratio, "unified")["vocals"]
    output_folder(out)
    with atomic_path(out / "ranking.csv") as tmp:
        table.write(tmp)
    where = (trainable_folders(songs, kept, sample_rate, out / "tracks", quiet)
             if kind == "folder"
             else export_tracks(kind, songs, kept, sample_rate, out / "tracks", quiet))
    with atomic_path(out / "kept.json") as tmp:
        tmp.write_text(dumps_json({**song_list_for([where[s] for s in kept], out / "kept.json"),
                                   "ratio": ratio, "rule": rule, "n_total": len(table.songs)}))
    with atomic_path(out / "sidecar.json") as tmp:
        tmp.write_text(dumps_json(sidecar(provenance)))
    return kept
