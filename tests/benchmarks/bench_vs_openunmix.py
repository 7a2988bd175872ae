"""Benchmark: this project's training against Open-Unmix's own ``scripts/train.py``, side by side.

    git clone <sigsep/open-unmix-pytorch> /tmp/oux        # outside the project, not vendored
    pip install --no-deps --target /tmp/ouxlib scikit-learn threadpoolctl joblib narwhals
    python tests/benchmarks/bench_vs_openunmix.py --openunmix /tmp/oux --pythonpath /tmp/ouxlib

Both train the vocals model on the default's rendered songs (``data/mixed23``'s contaminated list,
32 songs; validation on ``data/rendered/reference``, 8 full songs) with the same model (n_fft 1024,
hop 512, hidden 64, **3 LSTM layers**: ``scripts/train.py`` has no layer flag), 2 s excerpts,
batch 16, lr 0.003, random track mix, gain and channel swap, one torch thread, the CPU, and
``--epochs`` epochs of 30 steps. Open-Unmix's epoch is one excerpt per track folder of its
``trackfolder_fix`` dataset, so its train folder holds 15 links to each song (480 folders / 16 =
30 steps; random track mix draws the interferers over the same links). Reported: excerpts/s
(batch x steps / wall time of epochs 2.., validation included, as its ``train_time_history``
counts it) and the validation loss after the last epoch (MSE of full-song magnitudes, mean over
songs, both).

Open-Unmix's script runs unmodified, with its own data pipeline, model and loop; only its audio
I/O is adapted at run time (this environment's torchaudio 2.11 has no ``set_audio_backend`` or
``info`` and needs torchcodec for ``load``): ``torchaudio.load/info`` are served by soundfile,
which reads the same WAV samples, in a wrapper written to ``--scratch``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

SHIM = textwrap.dedent('''
    """Run Open-Unmix's scripts/train.py with torchaudio's file I/O served by soundfile."""
    import runpy, sys, types
    import soundfile as sf
    import torch, torchaudio

    def info(path, *args, **kwargs):
        i = sf.info(str(path))
        return types.SimpleNamespace(sample_rate=i.samplerate, num_frames=i.frames,
                                     num_channels=i.channels)

    def load(path, frame_offset=0, num_frames=-1, *args, **kwargs):
        data, rate = sf.read(str(path), start=frame_offset, frames=num_frames, dtype="float32",
                             always_2d=True)
        return torch.from_numpy(data.T.copy()), rate

    torchaudio.info, torchaudio.load = info, load
    torchaudio.set_audio_backend = lambda name: None
    torchaudio.get_audio_backend = lambda: "soundfile"
    torch.set_num_threads(1)
    script = sys.argv[1]
    sys.argv = [script, *sys.argv[2:]]
    runpy.run_path(script, run_name="__main__")
''')

COPIES = 15


def theirs(args: argparse.Namespace, songs: list[str], valid: list[Path]) -> tuple[float, float]:
    data = args.scratch / "oux-data"
    for i in range(COPIES):
        for song in songs:
            link = data / "train" / f"{Path(song).name}-{i:02d}"
            link.parent.mkdir(parents=True, exist_ok=True)
            if not link.exists():
                link.symlink_to(Path(song).resolve(), target_is_directory=True)
    for song in valid:
        link = data / "valid" / song.name
        link.parent.mkdir(parents=True, exist_ok=True)
        if not link.exists():
            link.symlink_to(song.resolve(), target_is_directory=True)
    shim = args.scratch / "oux_shim.py"
    shim.write_text(SHIM)
    out = args.scratch / "oux-out"
    cmd = [sys.executable, str(shim), str(args.openunmix / "scripts" / "train.py"),
           "--dataset", "trackfolder_fix", "--root", str(data), "--target-file", "vocals.wav",
           "--interferer-files", "bass.wav", "drums.wav", "other.wav", "--random-track-mix",
           "--source-augmentations", "gain", "channelswap", "--seq-dur", "2.0",
           "--batch-size", "16", "--nfft", "1024", "--nhop", "512", "--hidden-size", "64",
           "--bandwidth", "16000", "--lr", "0.003", "--epochs", str(args.epochs), "--no-cuda",
           "--nb-workers", "0", "--quiet", "--output", str(out)]
    path = os.pathsep.join([str(args.openunmix), *map(str, args.pythonpath)])
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": path}
    subprocess.run(cmd, check=True, env=env, cwd=args.scratch)
    record = json.loads((out / "vocals.json").read_text())
    times = record["train_time_history"]
    steps = len(songs) * COPIES // 16
    rate = 16 * steps * (len(times) - 1) / sum(times[1:])
    return rate, record["valid_loss_history"][-1]


def ours(args: argparse.Namespace, songs: list[str], valid: list[Path]) -> tuple[float, float]:
    import numpy as np
    import torch

    from stages.lib.params import load_section
    from stages.lib.songs import SongTable
    from stages.lib.unmix import TrainParams, train_target

    torch.set_num_threads(1)
    params = load_section(ROOT / "params.yaml", "train", TrainParams)
    params = dataclasses.replace(
        params, epochs=args.epochs, steps_per_epoch=30, lr=0.003,
        model=dataclasses.replace(params.model, nb_layers=3, n_fft=1024, hop=512,
                                  hidden_size=64, bandwidth_hz=16000.0))
    stamps: list[float] = []
    table = SongTable.open(songs, 44100)
    result = train_target(table, np.arange(len(table)), SongTable.open([str(v) for v in valid],
                          44100), "vocals", params, 42, torch.device("cpu"),
                          on_epoch=lambda _r: stamps.append(time.time()), quiet=True)
    rate = 16 * 30 * (len(stamps) - 1) / (stamps[-1] - stamps[0])
    return rate, result.history[-1]["valid_loss"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--openunmix", type=Path, required=True,
                        help="a checkout of sigsep/open-unmix-pytorch (its scripts/train.py)")
    parser.add_argument("--pythonpath", type=Path, nargs="*", default=[],
                        help="folders with what scripts/train.py imports beyond this project's "
                        "environment (scikit-learn: pip install --target DIR scikit-learn)")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--scratch", type=Path,
                        default=Path(tempfile.gettempdir()) / "bench_vs_openunmix")
    args = parser.parse_args()
    args.scratch.mkdir(parents=True, exist_ok=True)
    from stages.lib.readers import list_track_folders
    from stages.lib.songs import SongList

    songs = list(SongList.read(ROOT / "data/lists/mixed23/contaminated.json").songs["vocals"])
    valid = list_track_folders(ROOT / "data/rendered/reference")
    rate_o, loss_o = theirs(args, songs, valid)
    print(f"open-unmix scripts/train.py  {rate_o:6.1f} excerpts/s  valid loss after "
          f"{args.epochs} x 30 steps {loss_o:.4f}", flush=True)
    rate_p, loss_p = ours(args, songs, valid)
    print(f"this project (streamed)      {rate_p:6.1f} excerpts/s  valid loss after "
          f"{args.epochs} x 30 steps {loss_p:.4f}")
    print(f"throughput ratio (project / open-unmix): {rate_p / rate_o:.2f}")


if __name__ == "__main__":
    main()
