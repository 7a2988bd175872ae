"""Benchmark: Open-Unmix training on a GPU — the scale profile's speed, memory and utilisation,
and whether CPU and GPU trainings reach the same separation quality.

A GPU machine here holds neither this project's data nor its renderer, so ``prepare`` packs what
the GPU side needs into ``.gpu/`` (ignored by git; about 50 MB): 16 training songs of the default
Mixed23 (contaminated) set and 4 reference songs as 16-bit FLAC, and params files. Both sides
train on the same 16-bit WAVs unpacked from it, byte for byte::

    python tests/benchmarks/bench_gpu.py prepare                              # here
    python tests/benchmarks/bench_gpu.py agree --device cuda --work W         # GPU machine
    python tests/benchmarks/bench_gpu.py scale --out scale.json               # GPU machine
    python tests/benchmarks/bench_gpu.py agree --device cpu --work W          # here
    python tests/benchmarks/bench_gpu.py compare --work W                     # here

``agree``: ``python -m stages.train`` (the stage itself, ``runtime.device: auto`` on the GPU
side) with the default ``train`` params, one run per seed. ``compare`` scores every model with
``python -m stages.evaluate`` on the default test songs (``data/rendered/test``) and prints museval
SDR per seed and device, and the GPU − CPU difference with Welch's 95 % interval (seeds are not
paired across devices: the float sums differ from the first step).

``scale``: ``train_target`` with the ``scale`` profile's model and sampler (the paper's Open-Unmix:
n_fft 4096, hop 1024, hidden 512, 3 layers; 6 s excerpts, 64 per song per epoch, batch 16) on
synthetic 3-minute songs (band-limited noise, 16-bit WAV: rendered music is not available there),
for several loader-process counts and precisions. Per variant: steps/s and excerpts/s over epochs
2.. (validation included, and without it), peak GPU memory, mean GPU utilisation (NVML, sampled
every 0.1 s over epochs 2..), and the validation losses (are GPU runs repeatable across loader
counts?). Runs on the CPU too (small ``--songs``/``--seconds``: a check that the script works).
Nothing is asserted.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import multiprocessing
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench_training import synthetic_song  # noqa: E402

from stages.lib.params import TARGETS, read_yaml  # noqa: E402

PACK = ROOT / ".gpu"
SR = 44100
N_TRAIN, N_VALID = 16, 4
VARIANTS = {  # name: (loader processes, precision, torch.compile)
    "w0-fp32": (0, "fp32", False), "w4-fp32": (4, "fp32", False), "w8-fp32": (8, "fp32", False),
    "w8-bf16": (8, "bf16", False), "w8-bf16-compile": (8, "bf16", True)}


def _write_params(name: str, override: dict) -> None:
    from stages.lib.profiles import apply_profile

    path = PACK / "params" / f"{name}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(apply_profile((ROOT / "params.yaml").read_text(), override, name))


def prepare(args: argparse.Namespace) -> None:
    """``.gpu/subset/{train,valid}/<song>/<stem>.flac`` (16-bit) and ``.gpu/params/*.yaml``."""
    import soundfile as sf

    from stages.lib.audio import read_wav
    from stages.lib.readers import list_track_folders
    from stages.lib.songs import SongList

    train = SongList.read(ROOT / "data/lists/mixed23/contaminated.json").songs["vocals"][:N_TRAIN]
    valid = [str(p) for p in list_track_folders(ROOT / "data/rendered/reference")][:N_VALID]
    for part, folders in (("train", train), ("valid", valid)):
        for folder in folders:
            out = PACK / "subset" / part / Path(folder).name
            out.mkdir(parents=True, exist_ok=True)
            for target in TARGETS:
                audio = read_wav(Path(folder) / f"{target}.wav", SR)
                peak = float(np.abs(audio).max())
                if peak >= 1.0:
                    raise SystemExit(f"error: bench_gpu: {folder}/{target}.wav peaks at {peak:.3f}: "
                                     "16-bit would clip")
                sf.write(out / f"{target}.flac", audio.T, SR, subtype="PCM_16")
    for device, workers, loader in (("cpu", 2, 0), ("cuda", 4, 2)):
        _write_params(f"agree-{device}", {"runtime": {
            "device": "auto" if device == "cuda" else "cpu", "workers": workers,
            "worker_threads": 1, "loader_workers": loader}})
    _write_params("scale", read_yaml(ROOT / ".ci/profiles/scale.yaml"))
    size = sum(p.stat().st_size for p in PACK.rglob("*") if p.is_file())
    print(f"{PACK}: {len(train)} training + {len(valid)} reference songs, {size / 1e6:.1f} MB")


def unpack(work: Path) -> Path:
    """16-bit WAV folders from the FLAC pack (identical samples on every machine) and a song
    list; returns the list's path."""
    import soundfile as sf

    for flac in sorted((PACK / "subset").rglob("*.flac")):
        wav = work / "songs" / flac.relative_to(PACK / "subset").with_suffix(".wav")
        if not wav.is_file():
            wav.parent.mkdir(parents=True, exist_ok=True)
            data, sr = sf.read(flac, dtype="int16", always_2d=True)
            sf.write(wav, data, sr, subtype="PCM_16")
    folders = [f"songs/train/{p.name}" for p in sorted((work / "songs/train").iterdir())]
    song_list = work / "songs.json"
    song_list.write_text(json.dumps({"songs": {t: folders for t in TARGETS}}, indent=1))
    return song_list


def agree(args: argparse.Namespace) -> None:
    """Train one model folder per seed with the ``train`` stage on ``args.device``."""
    song_list = unpack(args.work)
    params = PACK / "params" / f"agree-{args.device}.yaml"
    started = time.time()
    procs = {}
    for seed in args.seeds:
        out = args.work / "models" / args.device / f"seed{seed}"
        cmd = [sys.executable, "-m", "stages.train", "--quiet", "--params", str(params),
               "--songs", str(song_list), "--valid", str(args.work / "songs/valid"),
               "--seed", str(seed), "--out", str(out),
               "--cost", str(args.work / "cost" / args.device / f"seed{seed}.json")]
        procs[seed] = subprocess.Popen(cmd, cwd=ROOT)
        if not args.parallel:
            procs[seed].wait()
    codes = {seed: p.wait() for seed, p in procs.items()}
    wall = time.time() - started
    print(f"agree {args.device}: seeds {args.seeds}, exit codes {codes}, wall {wall:.1f} s "
          f"({'parallel' if args.parallel else 'one after another'})", flush=True)
    if any(codes.values()):
        raise SystemExit(1)


def compare(args: argparse.Namespace) -> None:
    """museval / MDX SDR of every model on the default test songs, per device and seed; GPU −
    CPU with Welch's interval; which same-seed models of two machines are bit-identical."""
    from stages.lib.aggregate import mean_std, unpaired_difference
    from stages.lib.lengths import same_weights

    runs: dict[str, dict[int, dict]] = {}
    for folder in sorted((args.work / "models").iterdir()):
        device = folder.name  # cpu, cuda, or e.g. cpu-intel (models trained elsewhere, copied)
        metrics = args.work / "metrics" / f"{device}.json"
        if not metrics.is_file():  # every seed's model of the device in one evaluate call
            params = read_yaml(ROOT / "params.yaml")
            params["base"]["seeds"] = sorted(int(m.name[4:]) for m in folder.glob("seed*"))
            params_file = args.work / "params" / f"{device}.yaml"
            params_file.parent.mkdir(parents=True, exist_ok=True)
            params_file.write_text(json.dumps(params))  # JSON is YAML
            subprocess.run([sys.executable, "-m", "stages.evaluate", "--quiet", "--params",
                            str(params_file), "--models", str(folder), "--seeds-from",
                            "base.seeds", "--test", str(ROOT / "data/rendered/test"),
                            "--scores", str(args.work / "eval" / f"{device}.json"),
                            "--metrics", str(metrics)], cwd=ROOT, check=True)
        for name, row in json.loads(metrics.read_text()).items():
            info = json.loads((folder / name / "model.json").read_text())["targets"]
            row["valid_loss_mean"] = float(np.mean([info[t]["best_valid_loss"] for t in TARGETS]))
            runs.setdefault(device, {})[int(name[4:])] = row
    keys = ("museval_sdr_db_avg", "mdx_sdr_db_avg", "valid_loss_mean")
    print(f"{'device':10s} {'seed':>4s} " + " ".join(f"{k:>20s}" for k in keys))
    for device, seeds in runs.items():
        for seed, row in sorted(seeds.items()):
            print(f"{device:10s} {seed:4d} " + " ".join(
                f"{row[k]:20.4f}" if row.get(k) is not None else f"{'—':>20s}" for k in keys))
    for key in keys:
        stats = {d: mean_std([r[key] for r in runs[d].values()]) for d in runs}
        diff = unpaired_difference(runs, "cuda", "cpu", key)
        print(f"{key}: " + ", ".join(f"{d} {s['mean']:.3f} ± {s['std']:.3f} (n={s['n']})"
                                      for d, s in stats.items())
              + (f"; cuda − cpu {diff['mean']:+.3f} [{diff['ci95_low']:+.3f}, "
                 f"{diff['ci95_high']:+.3f}]" if diff["ci95_low"] is not None else ""))
    devices = sorted(runs)
    for i, a in enumerate(devices):
        for b in devices[i + 1:]:
            for seed in sorted(set(runs[a]) & set(runs[b])):
                same = same_weights(*(args.work / "models" / d / f"seed{seed}" for d in (a, b)),
                                    TARGETS)
                print(f"seed {seed}: {a} and {b} weights {'bit-identical' if same else 'differ'}")


class _Utilisation:
    """Mean NVML GPU utilisation (%) between ``start()`` and ``stop()``, sampled every 0.1 s."""

    def __init__(self) -> None:
        import pynvml

        pynvml.nvmlInit()
        self._nvml = pynvml
        self._handle = pynvml.nvmlDeviceGetHandleByIndex(0)
        self._samples: list[int] = []
        self._running = False
        self._thread: threading.Thread | None = None

    def _loop(self) -> None:
        while self._running:
            self._samples.append(self._nvml.nvmlDeviceGetUtilizationRates(self._handle).gpu)
            time.sleep(0.1)

    def start(self) -> None:
        if self._thread is None:
            self._running = True
            self._thread = threading.Thread(target=self._loop, daemon=True)
            self._thread.start()

    def stop(self) -> float | None:
        self._running = False
        if self._thread is not None:
            self._thread.join()
        return float(np.mean(self._samples)) if self._samples else None


def _synthetic(job: tuple[Path, float, int]) -> None:
    folder, seconds, seed = job
    if not (folder / "other.wav").is_file():
        synthetic_song(folder, seconds, seed)


def scale(args: argparse.Namespace) -> None:
    """Time the scale profile's training per variant; write ``args.out`` after each one."""
    import torch

    from stages.lib.params import load_section, select_device
    from stages.lib.songs import SongTable
    from stages.lib.unmix import Loading, TrainParams, Validator, build_model, train_target

    device = select_device(args.device)
    songs = [args.work / "scale" / f"s{i:03d}" for i in range(args.songs)]
    valid = [args.work / "scale-valid" / f"v{i}" for i in range(2)]
    jobs = [(f, args.seconds, i) for i, f in enumerate(songs)]
    jobs += [(f, args.seconds, 1000 + i) for i, f in enumerate(valid)]
    started = time.time()
    with multiprocessing.get_context("spawn").Pool(min(len(jobs), os.cpu_count() or 1)) as pool:
        pool.map(_synthetic, jobs)
    print(f"scale: {len(songs)} + {len(valid)} synthetic songs of {args.seconds:.0f} s in "
          f"{time.time() - started:.1f} s", flush=True)
    base = load_section(PACK / "params" / "scale.yaml", "train", TrainParams)
    table = SongTable.open([str(f) for f in songs], SR)
    valid_table = SongTable.open([str(f) for f in valid], SR)
    report: dict = {"device": str(device), "torch": torch.__version__, "songs": len(songs),
                    "song_seconds": args.seconds, "epochs": args.epochs, "variants": {}}
    if device.type == "cuda":
        report["gpu"] = torch.cuda.get_device_name(0)
    for name in args.variants:
        workers, precision, compiled = VARIANTS[name]
        params = dataclasses.replace(base, epochs=args.epochs, precision=precision,
                                     compile=compiled)
        steps = params.steps_per_epoch or -(-len(songs) * params.sampler.samples_per_track
                                             // params.batch_size)  # ceil, as the sampler
        util = _Utilisation() if device.type == "cuda" else None
        if device.type == "cuda":
            torch.cuda.empty_cache()  # the previous variant's cached blocks
            torch.cuda.reset_peak_memory_stats()
        stamps: list[float] = []

        def on_epoch(_record: dict, stamps: list[float] = stamps, util=util) -> None:
            stamps.append(time.time())
            if util is not None and len(stamps) == 1:
                util.start()

        start = time.time()
        result = train_target(table, np.arange(len(songs)), valid_table, "vocals", params, 0,
                              device, on_epoch=on_epoch, quiet=True,
                              loading=Loading(workers=workers, preload_mib=0))
        total = time.time() - start
        busy = util.stop() if util is not None else None
        peak = ({"gpu_peak_allocated_mib": torch.cuda.max_memory_allocated() / 2**20,
                 "gpu_peak_reserved_mib": torch.cuda.max_memory_reserved() / 2**20}
                if device.type == "cuda" else {})
        validator = Validator(valid_table, "vocals", params.model.n_fft, params.model.hop, device)
        model = build_model(params.model, SR).to(device)
        validator(model)
        t0 = time.time()
        validator(model)
        valid_s = time.time() - t0
        epoch_s = (stamps[-1] - stamps[0]) / (len(stamps) - 1)
        row = {"loader_workers": workers, "precision": precision, "compile": compiled,
               "steps_per_epoch": steps, "epoch_s": epoch_s, "validation_s": valid_s,
               "steps_per_s": steps / epoch_s,
               "excerpts_per_s": steps * params.batch_size / epoch_s,
               "train_steps_per_s": steps / max(epoch_s - valid_s, 1e-9),
               "total_s": total, "gpu_util_mean_pct": busy,
               "valid_losses": [r["valid_loss"] for r in result.history], **peak}
        del model, validator, result
        report["variants"][name] = row
        print(f"{name:16s} {row['steps_per_s']:6.2f} steps/s ({row['excerpts_per_s']:6.1f} "
              f"excerpts/s; without validation {row['train_steps_per_s']:6.2f} steps/s), "
              f"epoch {epoch_s:5.1f} s, validation {valid_s:4.1f} s, GPU util {busy}, "
              f"peak {row.get('gpu_peak_allocated_mib', float('nan')):.0f} MiB, "
              f"valid losses {row['valid_losses']}", flush=True)
        args.out.write_text(json.dumps(report, indent=1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="what", required=True)
    sub.add_parser("prepare")
    a = sub.add_parser("agree")
    a.add_argument("--device", choices=("cpu", "cuda"), required=True)
    a.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    a.add_argument("--parallel", action="store_true", help="all seeds at once")
    c = sub.add_parser("compare")
    s = sub.add_parser("scale")
    s.add_argument("--device", default="auto")
    s.add_argument("--songs", type=int, default=16)
    s.add_argument("--seconds", type=float, default=180.0)
    s.add_argument("--epochs", type=int, default=3, help=">= 2 (rates are over epochs 2..)")
    s.add_argument("--variants", nargs="+", choices=sorted(VARIANTS), default=list(VARIANTS))
    s.add_argument("--out", type=Path, required=True)
    for p in (a, c, s):
        p.add_argument("--work", type=Path, default=Path("/tmp/bench_gpu"))
    args = parser.parse_args()
    if args.what == "scale" and args.epochs < 2:
        parser.error("--epochs: at least 2 (rates are measured over epochs 2..)")
    {"prepare": prepare, "agree": agree, "compare": compare, "scale": scale}[args.what](args)


if __name__ == "__main__":
    main()
