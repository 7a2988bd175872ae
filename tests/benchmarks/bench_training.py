"""Benchmark: memory and throughput of Open-Unmix training, streamed from disk vs decoded in RAM.

    python tests/benchmarks/bench_training.py rss          # peak RSS, 10 vs 40 songs of 3 min
    python tests/benchmarks/bench_training.py throughput   # excerpts/s on the default data

``rss``: writes N synthetic four-stem songs (3 min, 44.1 kHz, 16-bit WAV; noise shaped per stem)
to ``--scratch``, then runs ``python -m stages.train`` once per (songs, loading) as a child
process with one worker (the training runs in that process) and reads its peak resident memory
(``ru_maxrss``, read by a fresh parent per run). Model, STFT and sampler are the ``scale``
profile's (the paper's Open-Unmix); a few steps run: memory peaks in the first epoch.

``throughput``: ``train_target`` on the default training set (``data/mixed23``, 32 songs) with the
default model, one torch thread, for the same steps in every configuration: the in-memory path
(``preload``: every song decoded once, as before streaming) against the streamed path with 0 and
1 loader processes, and the streamed path with ``train.precision: bf16`` (autocast).
Excerpts/s = batch x steps / wall time of epochs 2.. (setup excluded), and the end-to-end wall
time including the setup. Needs ``dvc repro build@mixed23`` (or a default run).
Nothing is asserted: equality of the paths is a test (tests/test_unmix.py).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from stages.lib.audio import write_wav  # noqa: E402
from stages.lib.params import TARGETS, read_yaml  # noqa: E402

SR = 44100


def synthetic_song(folder: Path, seconds: float, seed: int) -> None:
    """Four stems of band-limited noise with different spectra (16-bit WAV, 44.1 kHz)."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    n = int(seconds * SR)
    for k, target in enumerate(TARGETS):
        noise = rng.standard_normal((2, n)).astype(np.float32)
        kernel = np.hanning(8 * (k + 1) + 1).astype(np.float32)
        stem = np.stack([np.convolve(c, kernel / kernel.sum(), mode="same") for c in noise])
        write_wav(folder / f"{target}.wav", 0.2 * stem, SR, subtype="PCM_16")


def _merge(into: dict, extra: dict) -> dict:
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value
    return into


def _params(scratch: Path, overrides: dict) -> Path:
    """params.yaml under the scale profile + ``overrides`` (steps, loading), in ``scratch``."""
    from stages.lib.profiles import apply_profile

    profile = ROOT / ".ci/profiles/scale.yaml"
    override = _merge(read_yaml(profile), overrides)
    path = scratch / "params.yaml"
    path.write_text(apply_profile((ROOT / "params.yaml").read_text(), override, str(profile)))
    return path


_MEASURE = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True); "
            "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")


def peak_rss_kib(cmd: list[str]) -> int:
    """Peak resident memory (KiB) of the largest process ``cmd`` runs, measured by a fresh
    parent (``ru_maxrss`` of children is a running maximum over a parent's whole life)."""
    out = subprocess.run([sys.executable, "-c", _MEASURE, *cmd], cwd=ROOT, check=True,
                         stdout=subprocess.PIPE, text=True).stdout
    return int(out.split()[-1])


def rss(args: argparse.Namespace) -> None:
    scratch = args.scratch
    songs = scratch / "songs"
    for i in range(max(args.songs)):
        if not (songs / f"s{i:03d}" / "other.wav").is_file():
            synthetic_song(songs / f"s{i:03d}", args.seconds, i)
    valid = scratch / "valid"
    for i in range(2):
        if not (valid / f"v{i}" / "other.wav").is_file():
            synthetic_song(valid / f"v{i}", args.seconds, 1000 + i)
    rows = []
    for preload in (False, True):
        for n in args.songs:
            run = scratch / f"run-{n}-{preload}"
            run.mkdir(exist_ok=True)
            params = _params(run, {"runtime": {"workers": 1, "worker_threads": 2,
                                               "loader_workers": 0,
                                               "preload_mib": 2**30 if preload else 0},
                                   "train": {"epochs": 1, "steps_per_epoch": args.steps}})
            song_list = run / "songs.json"
            folders = [f"../songs/s{i:03d}" for i in range(n)]
            song_list.write_text(json.dumps({"songs": {t: folders for t in TARGETS}}))
            out = run / "model"
            cmd = [sys.executable, "-m", "stages.train", "--quiet", "--params", str(params),
                   "--songs", str(song_list), "--valid", str(valid), "--seed", "0",
                   "--out", str(out)]
            start = time.time()
            peak = peak_rss_kib(cmd)
            rows.append((n, "preload (in RAM)" if preload else "streamed", peak / 1024,
                         time.time() - start))
            print(f"{n:3d} songs  {rows[-1][1]:17s} peak RSS {peak / 1024:8.0f} MB  "
                  f"wall {rows[-1][3]:6.1f} s", flush=True)
    streamed = {n: mb for n, kind, mb, _ in rows if kind == "streamed"}
    lo, hi = min(args.songs), max(args.songs)
    print(f"streamed: {hi} songs / {lo} songs peak RSS = {streamed[hi] / streamed[lo]:.3f}")


def throughput(args: argparse.Namespace) -> None:
    import torch

    from stages.lib.params import load_section
    from stages.lib.readers import list_track_folders
    from stages.lib.songs import SongList, SongTable
    from stages.lib.unmix import Loading, TrainParams, train_target

    torch.set_num_threads(1)
    params = load_section(ROOT / "params.yaml", "train", TrainParams)
    params = dataclasses.replace(params, epochs=args.epochs)
    songs = SongList.read(ROOT / "data/lists/mixed23/contaminated.json").songs["vocals"]
    valid_folders = [str(p) for p in list_track_folders(ROOT / "data/rendered/reference")]
    steps = params.steps_per_epoch
    runs = (("in RAM (preload)", Loading(workers=0, preload_mib=math.inf), params),
            ("streamed, 0 loader workers", Loading(workers=0, preload_mib=0), params),
            ("streamed, 1 loader worker", Loading(workers=1, preload_mib=0), params),
            ("streamed, 0 workers, bf16", Loading(workers=0, preload_mib=0),
             dataclasses.replace(params, precision="bf16")))
    for label, loading, run_params in runs:
        start = time.time()
        stamps: list[float] = []
        table = SongTable.open(songs, SR, preload_mib=loading.preload_mib)
        valid = SongTable.open(valid_folders, SR)
        train_target(table, np.arange(len(table)), valid, "vocals", run_params, 0,
                     torch.device("cpu"), on_epoch=lambda _r, s=stamps: s.append(time.time()),
                     quiet=True, loading=loading)
        total = time.time() - start
        steady = (stamps[-1] - stamps[0]) / (len(stamps) - 1)
        rate = params.batch_size * steps / steady
        print(f"{label:28s} {rate:6.1f} excerpts/s (epochs 2..{args.epochs}: {steady:5.2f} s "
              f"per epoch of {steps} steps), end to end {total:6.1f} s", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="what", required=True)
    r = sub.add_parser("rss")
    r.add_argument("--songs", type=int, nargs="+", default=[10, 40])
    r.add_argument("--seconds", type=float, default=180.0)
    r.add_argument("--steps", type=int, default=4)
    r.add_argument("--scratch", type=Path, default=Path(tempfile.gettempdir()) / "bench_rss")
    t = sub.add_parser("throughput")
    t.add_argument("--epochs", type=int, default=4)
    args = parser.parse_args()
    args.scratch = getattr(args, "scratch", None)
    if args.what == "rss":
        args.scratch.mkdir(parents=True, exist_ok=True)
        rss(args)
    else:
        throughput(args)


if __name__ == "__main__":
    main()
