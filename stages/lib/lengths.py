"""Training-length study: one training per (condition, seed, target), snapshots at several epochs.

A run of ``max(epochs)`` epochs is stopped after each snapshot epoch and resumed from its
checkpoint (``train_target(stop_after=..., checkpoint=...)``; a resumed run equals an
uninterrupted one on the CPU, ``tests/test_unmix.py``). The best-validation weights so far at epoch
``E`` are then exactly what a run of ``train.epochs: E`` keeps: nothing before epoch ``E`` depends
on the run's length (batches are seeded per seed, target, epoch and step; the learning-rate
schedule reacts only to validation losses already seen). On CUDA a resume re-seeds the GPU's
random stream, so models with dropout (``train.model.nb_layers`` > 1) are refused there.
A model is the unit of work: an interrupted study trains an unfinished model again from scratch.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from .audio import Track
from .cleaning import parse_condition
from .evaluation import EvalParams, load_separator, score_tracks, summarize
from .io import atomic_path, dumps_json, read_json, write_json
from .params import TARGETS, ParamsError, RuntimeParams, as_plain, select_device
from .plots import save_png
from .songs import SongList, SongTable
from .unmix import (
    Loading,
    TrainParams,
    check_song_lengths,
    loading,
    model_config,
    train_target,
    training_key,
)
from .workers import context as worker_context
from .workers import die_with_parent

log = logging.getLogger(__name__)
KEY = "museval_sdr_db_avg"  # the metric the study reports
NAME = re.compile(r"[A-Za-z0-9_.-]+")  # a condition's dataset and name (folders under --work)


@dataclass(frozen=True, kw_only=True)
class SnapshotJob:
    """One target model of one condition and seed, trained once, saved at each snapshot epoch."""

    condition: str
    songs: Path            # song-list JSON
    valid: tuple[str, ...]
    target: str
    seed: int
    epochs: tuple[int, ...]
    params: TrainParams
    sample_rate: int
    threads: int
    device: str            # runtime.device
    loading: Loading       # runtime.loader_workers / preload_mib (never change a result)
    work: Path             # <work>/<condition>/seed<k>/e<E>/<target>.pth

    def snapshot(self, epoch: int) -> Path:
        return self.work / self.condition / f"seed{self.seed}" / f"e{epoch}" / f"{self.target}.pth"


def check_study(seeds: Sequence[int], evaluation: EvalParams, committed: Path | None) -> None:
    """The study's own arguments: distinct seeds, museval on, an existing committed root."""
    if len(set(seeds)) != len(seeds):
        raise ParamsError(f"--seeds {list(seeds)}: a seed given twice")
    if not evaluation.museval:
        raise ParamsError("evaluate.museval: the length study reports museval SDR; set it to true")
    if committed is not None and not committed.is_dir():
        raise ParamsError(f"--committed {committed}: not a folder")


def snapshot_jobs(conditions: dict[str, Path], seeds: Sequence[int], valid: tuple[str, ...],
                  epochs: tuple[int, ...], params: TrainParams, sample_rate: int,
                  runtime: RuntimeParams, work: Path) -> list[SnapshotJob]:
    """One job per condition, seed and target (conditions: song-list JSON per name)."""
    return [SnapshotJob(condition=c, songs=songs, valid=valid, target=t, seed=s, epochs=epochs,
                        params=params, sample_rate=sample_rate, threads=runtime.worker_threads,
                        device=runtime.device, loading=loading(runtime), work=work)
            for c, songs in conditions.items() for s in seeds for t in TARGETS]


def check_epochs(epochs: Sequence[int], params: TrainParams, device: str) -> tuple[int, ...]:
    """Sorted distinct snapshot epochs (each >= 1), on a device where a snapshot is exact."""
    out = tuple(sorted(set(epochs)))
    if not out or out[0] < 1:
        raise ParamsError("--epochs: give epoch counts >= 1")
    if select_device(device).type != "cpu" and params.model.nb_layers > 1:
        raise ParamsError("runtime.device: the length study resumes a run at each snapshot, which "
                          "re-seeds CUDA's dropout stream (train.model.nb_layers > 1): set "
                          "runtime.device: cpu")
    return out


def run_snapshot_job(job: SnapshotJob) -> dict[int, float]:
    """Train ``job``'s model from scratch up to ``max(job.epochs)``, saving the best weights so
    far at each snapshot epoch. Returns the best validation loss per snapshot epoch."""
    torch.set_num_threads(job.threads)
    params = replace(job.params, epochs=job.epochs[-1])
    folders = SongList.read(job.songs).songs[job.target]
    table = SongTable.open(folders, job.sample_rate, preload_mib=job.loading.preload_mib)
    valid = SongTable.open(job.valid, job.sample_rate)
    checkpoint = job.work / "checkpoints" / job.condition / f"seed{job.seed}" / f"{job.target}.pt"
    checkpoint.parent.mkdir(parents=True, exist_ok=True)
    checkpoint.unlink(missing_ok=True)  # an interrupted earlier attempt: its epoch is unknown here
    losses: dict[int, float] = {}
    done = 0
    for epoch in job.epochs:
        result = train_target(table, np.arange(len(table)), valid, job.target, params, job.seed,
                              select_device(job.device), checkpoint=checkpoint, quiet=True,
                              stop_after=epoch - done, loading=job.loading)
        done = epoch
        losses[epoch] = result.best_valid_loss
        path = job.snapshot(epoch)
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            torch.save({k: v.cpu() for k, v in result.state_dict.items()}, tmp)
        log.info("%s seed %d %s: %d epochs, best validation loss %.4g (epoch %d)", job.condition,
                 job.seed, job.target, epoch, result.best_valid_loss, result.best_epoch + 1)
    checkpoint.unlink(missing_ok=True)
    return losses


def write_model_json(folder: Path, params: TrainParams, sample_rate: int) -> None:
    """The ``model.json`` that :func:`stages.lib.evaluation.load_separator` reads."""
    write_json(folder / "model.json", {"config": model_config(params.model, sample_rate)})


def same_weights(a: Path, b: Path, targets: Sequence[str]) -> bool:
    """Whether two model folders hold bit-identical weights for every target."""
    for target in targets:
        x = torch.load(a / f"{target}.pth", map_location="cpu", weights_only=True)
        y = torch.load(b / f"{target}.pth", map_location="cpu", weights_only=True)
        if x.keys() != y.keys() or not all(torch.equal(x[k], y[k]) for k in x):
            return False
    return True


def length_report(runs: dict[str, dict[int, dict[int, dict]]], epochs: Sequence[int],
                  baseline: str, key: str, identical: dict[str, bool]) -> str:
    """Markdown: ``key`` mean ± std over seeds per condition and epoch count, then each
    condition − ``baseline`` of the same dataset, paired by seed (95 % t-interval), and the
    ranking at each length. ``runs[condition][epochs][seed]`` holds metrics dicts."""
    from .aggregate import mean_std, paired_difference

    def cell(stats: dict) -> str:
        if stats["mean"] is None:
            return "—"
        return f"{stats['mean']:.2f} ± {stats['std']:.2f} ({stats['n']})"

    head = "| condition | " + " | ".join(f"{e} epochs" for e in epochs) + " |"
    rule = "|---|" + "---|" * len(epochs)
    lines = [f"`{key}`: mean ± std over seeds (n)", "", head, rule]
    for condition, by_epoch in runs.items():
        lines.append(f"| {condition} | " + " | ".join(
            cell(mean_std([m.get(key) for m in by_epoch.get(e, {}).values()])) for e in epochs)
            + " |")
    lines += ["", f"Each condition − its dataset's `{baseline}`, paired by seed: mean "
              "[95 % t-interval]; *inside the noise* where the interval holds 0", "", head, rule]
    for condition in runs:
        dataset = condition.split("/")[0]
        base = f"{dataset}/{baseline}"
        if condition == base or base not in runs:
            continue
        cells = []
        for e in epochs:
            pair = {c: runs[c].get(e, {}) for c in (condition, base)}
            d = paired_difference(pair, condition, base, key)
            if d["mean"] is None:
                cells.append("—")
            elif d["ci95_low"] is None:
                cells.append(f"{d['mean']:+.2f} (n={d['n']})")
            else:
                noise = " *inside the noise*" if d["ci95_low"] <= 0 <= d["ci95_high"] else ""
                cells.append(f"{d['mean']:+.2f} [{d['ci95_low']:+.2f}, {d['ci95_high']:+.2f}]"
                             f"{noise}")
        lines.append(f"| {condition} − {baseline} | " + " | ".join(cells) + " |")
    lines += ["", "Ranking by the mean (best first):", ""]
    for dataset in sorted({c.split("/")[0] for c in runs}):
        for e in epochs:
            means = {c: mean_std([m.get(key) for m in runs[c].get(e, {}).values()])["mean"]
                     for c in runs if c.split("/")[0] == dataset}
            order = sorted((c for c in means if means[c] is not None), key=lambda c: -means[c])
            lines.append(f"- {dataset}, {e} epochs: " + " > ".join(
                f"{c.split('/', 1)[1]} ({means[c]:.2f})" for c in order))
    if identical:
        lines += ["", "Snapshot against the committed default model of the same length and seed "
                  "(a check that a snapshot is what a run of that length keeps):", ""]
        lines += [f"- {name}: {'bit-identical' if same else 'DIFFERENT'}"
                  for name, same in sorted(identical.items())]
    return "\n".join(lines) + "\n"


def sync_keys(work: Path, keys: dict[tuple[str, int], dict]) -> None:
    """Write each (condition, seed) folder's key; a folder whose stored key differs (params,
    songs, code or test set changed) is removed first, so its models train again. Only folders
    under ``work``, the study's own marked folder, are touched."""
    for (condition, seed), key in keys.items():
        folder = work / condition / f"seed{seed}"
        key_file = folder / "key.json"
        if folder.is_dir() and (not key_file.is_file() or read_json(key_file) != key):
            log.info("%s seed %d: params, songs, code or test set changed: trained again",
                     condition, seed)
            shutil.rmtree(folder)
        folder.mkdir(parents=True, exist_ok=True)
        write_json(key_file, key)


def score_snapshots(work: Path, conditions: Sequence[str], epochs: Sequence[int],
                    seeds: Sequence[int], params: TrainParams, evaluation: EvalParams,
                    tracks: Sequence[Track], sample_rate: int, device: torch.device,
                    workers: int) -> dict[str, dict[int, dict[int, dict]]]:
    """SDR summary of every snapshot on ``tracks`` (kept beside it as ``metrics.json``):
    ``runs[condition][epochs][seed]``."""
    runs: dict[str, dict[int, dict[int, dict]]] = {}
    for condition in conditions:
        for epoch in epochs:
            for seed in seeds:
                folder = work / condition / f"seed{seed}" / f"e{epoch}"
                metrics = folder / "metrics.json"
                if not metrics.is_file():
                    write_model_json(folder, params, sample_rate)
                    separator = load_separator(folder, evaluation.niter,
                                               evaluation.wiener_win_len, device)
                    rows = score_tracks(tracks, separator, evaluation, sample_rate, device,
                                        workers)
                    write_json(metrics, summarize(rows))
                runs.setdefault(condition, {}).setdefault(epoch, {})[seed] = read_json(metrics)
    return runs


def compare_committed(work: Path, committed: Path, conditions: Sequence[str],
                      seeds: Sequence[int], epochs: int) -> dict[str, bool]:
    """Which ``epochs`` snapshots are bit-identical to the pipeline's model of the same
    condition and seed (``<committed>/<set>/<condition>/seed<k>``; a cleaned condition
    ``<set>/<method>[_per_target]_r<r>`` is under ``<set>/<mode>/<method>_r<r>``). A condition
    whose pipeline model is missing is reported as such, not skipped."""
    out = {}
    for condition in conditions:
        for seed in seeds:
            pipeline = committed / model_folder(condition) / f"seed{seed}"
            if not pipeline.is_dir():
                log.warning("%s: no pipeline model to compare the %d-epoch snapshot with",
                            pipeline, epochs)
            out[f"{condition} seed {seed}, {epochs} epochs"] = pipeline.is_dir() and same_weights(
                work / condition / f"seed{seed}" / f"e{epochs}", pipeline, TARGETS)
    return out


def model_folder(condition: str) -> str:
    """Where the pipeline keeps a condition's models, relative to ``data/models``."""
    dataset, _, name = condition.partition("/")
    parsed = parse_condition(name)
    if parsed is None:
        return condition
    method, mode, ratio = parsed
    return f"{dataset}/{mode}/{method}_r{ratio}"


def parse_conditions(specs: list[str]) -> dict[str, Path]:
    """``<dataset>/<name>=<song-list.json>`` specs; names become folders under ``--work``."""
    out: dict[str, Path] = {}
    for spec in specs:
        name, sep, path = spec.partition("=")
        parts = name.split("/")
        if (not sep or not path or len(parts) != 2
                or not all(NAME.fullmatch(p) and p not in (".", "..") for p in parts)):
            raise ParamsError(f"--condition {spec!r}: expected <dataset>/<name>=<song-list.json> "
                              "(names of letters, digits, '_', '-', '.')")
        if name in out:
            raise ParamsError(f"--condition {name}: given twice")
        out[name] = Path(path)
    return out


def read_conditions(conditions: dict[str, Path], params: TrainParams,
                    sample_rate: int) -> dict[str, SongList]:
    """Every song list, song and stem readable and long enough: found now, not after hours."""
    lists = {}
    for name, path in conditions.items():
        try:
            lists[name] = SongList.read(path)
            table = SongTable.open(lists[name].all_folders(), sample_rate)
            check_song_lengths(table, np.arange(len(table)), params.model.n_fft)
        except (OSError, ValueError) as err:
            raise ParamsError(f"--condition {name}: {err}") from err
    return lists


def snapshot_keys(conditions: dict[str, SongList], valid: tuple[str, ...], seeds: list[int],
                  params: TrainParams, evaluation: EvalParams, test: list[str], base_rate: int,
                  runtime: RuntimeParams) -> dict[tuple[str, int], dict]:
    """What each (condition, seed) folder's snapshots and scores depend on."""
    return {(c, s): {"training": training_key(songs.songs, valid, params, s, base_rate,
                                              runtime.device, runtime.worker_threads),
                     "evaluate": as_plain(evaluation), "test": test}
            for c, songs in conditions.items() for s in seeds}


def train_snapshots(jobs: Sequence[SnapshotJob], workers: int, quiet: bool) -> None:
    """Train the models of the jobs whose snapshots are not all saved yet (an interrupted study
    resumes), ``workers`` processes at a time (they die with this one)."""
    todo = [j for j in jobs if not all(j.snapshot(e).is_file() for e in j.epochs)]
    if jobs:
        log.info("length study: %d of %d models to train (%d epochs each, saved at %s)",
                 len(todo), len(jobs), jobs[0].epochs[-1], list(jobs[0].epochs))
    jobs = todo
    with worker_context().Pool(max(1, workers), initializer=die_with_parent,
                               initargs=(os.getpid(),)) as pool:
        for _ in tqdm(pool.imap_unordered(run_snapshot_job, jobs), total=len(jobs),
                      desc="train", unit="model", disable=quiet):
            pass


def write_study(out: Path, runs: dict, epochs: Sequence[int], seeds: Sequence[int],
                conditions: dict[str, Path], report: str) -> None:
    """``length.json`` (metrics per condition, epochs, seed), ``report.md`` and
    ``sdr_vs_epochs.png``, written atomically into ``out``."""
    with atomic_path(out) as tmp:
        tmp.mkdir()
        (tmp / "length.json").write_text(dumps_json(
            {"epochs": list(epochs), "seeds": list(seeds), "metric": KEY,
             "conditions": {c: str(p) for c, p in conditions.items()},
             "runs": {c: {str(e): {str(s): m for s, m in r.items()} for e, r in by.items()}
                      for c, by in runs.items()}}))
        (tmp / "report.md").write_text(report)
        save_png(tmp / "sdr_vs_epochs.png", lambda ax: _plot(ax, runs, tuple(epochs)))


def _plot(ax, runs: dict, epochs: tuple[int, ...]) -> None:  # noqa: ANN001
    from matplotlib.ticker import NullFormatter

    datasets = sorted({c.split("/")[0] for c in runs})
    styles = dict(zip(datasets, ("-", "--", ":", "-."), strict=False))
    for condition, by_epoch in runs.items():
        means = [np.mean([m[KEY] for m in by_epoch[e].values() if m.get(KEY) is not None])
                 for e in epochs]
        ax.plot(epochs, means, marker="o", linestyle=styles.get(condition.split("/")[0], "-"),
                label=condition)
    ax.set(xlabel="epochs (log scale)", ylabel="museval SDR avg (dB), mean over seeds",
           xscale="log", xticks=list(epochs), xticklabels=[str(e) for e in epochs])
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.legend(fontsize=7)
