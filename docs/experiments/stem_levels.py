"""Experiment (issue #18): does unlearning's detection depend on the stems' levels?

Mixed23's 32 contaminated songs and the 8 reference songs again, each stem's level drawn
uniformly in [-8, +8] dB (seeded by song and stem; the unseen corpus of issue #18 varied stem
levels by 8 dB), the mixture re-summed, each song's peak 0.5 as in the default. Then
``python -m stages.tools.clean`` (the pipeline's own training and attribution; on the unchanged songs it
reproduces the pipeline's seed-0 unified scores exactly) with ``--method unlearn`` for seeds 0-2
and ``--method fad``, and the detection AUROC of the unified score against the ground truth,
next to the same AUROC of the default pipeline's scores. Then the same unlearning runs with the
level-invariant attribution loss (``attribute.loss: energy``) on the levelled and on the default
songs. Also, on the default pipeline's scores: the Spearman correlation of each per-target score
(unlearning, small loss) with the stem's level over the clean songs. Needs a default
``dvc repro``; finished runs are kept in ``--work`` (a second call only prints).

    python docs/experiments/stem_levels.py --work /tmp/stem_levels     # about 10 min on 2 cores
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.stats import rankdata

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from stages.lib.params import TARGETS  # noqa: E402
from stages.lib.readers import list_track_folders  # noqa: E402
from stages.lib.songs import SongList  # noqa: E402

SEEDS = (0, 1, 2)


def write_levelled(out: Path) -> None:
    songs = SongList.read(ROOT / "data/lists/mixed23/contaminated.json").songs["vocals"]
    reference = [str(p) for p in list_track_folders(ROOT / "data/rendered/reference")]
    for part, folders in (("songs", songs), ("reference", reference)):
        for folder in folders:
            name = Path(folder).name
            stems = {}
            for target in TARGETS:
                audio, sr = sf.read(Path(folder) / f"{target}.wav", dtype="float32", always_2d=True)
                gain_db = np.random.default_rng(zlib.crc32(f"{name}/{target}".encode())).uniform(-8, 8)
                stems[target] = audio * 10 ** (gain_db / 20)
            mix = sum(stems.values())
            scale = 0.5 / max(float(np.abs(mix).max()), 1e-9)
            song = out / part / name
            song.mkdir(parents=True, exist_ok=True)
            for target, audio in stems.items():
                sf.write(song / f"{target}.wav", audio * scale, sr, subtype="FLOAT")
            sf.write(song / "mixture.wav", mix * scale, sr, subtype="FLOAT")


def auroc(ranking: Path, truth: dict[str, str]) -> float:
    """P(a clean song's unified score is above a corrupted one's)."""
    rows = list(csv.DictReader(ranking.open()))
    return _auroc(np.array([float(r["score_unified"]) for r in rows]),
                  np.array([truth[r["song"]] != "clean" for r in rows]))


def _auroc(score: np.ndarray, bad: np.ndarray) -> float:
    ranks = rankdata(score)
    n_clean, n_bad = int((~bad).sum()), int(bad.sum())
    return float((ranks[~bad].sum() - n_clean * (n_clean + 1) / 2) / (n_clean * n_bad))


def level_dependence(dataset: str, method: str, truth: dict[str, str]) -> None:
    """Per target: Spearman(score, stem level in dB) over the clean songs (mean of the seeds)."""
    from scipy.stats import spearmanr

    out = []
    for target in TARGETS:
        rhos = []
        for seed in SEEDS:
            rows = [r for r in csv.DictReader(
                (ROOT / f"data/scores/{dataset}/{method}/seed{seed}/scores.csv").open())
                    if truth[r["song"]] == "clean"]
            level = [_level_db(ROOT / "data" / dataset / r["song"] / f"{target}.wav") for r in rows]
            rhos.append(spearmanr(level, [float(r[f"score_{target}"]) for r in rows]).statistic)
        out.append(f"{target} {np.mean(rhos):+.2f}")
    print(f"{dataset} {method}: Spearman(score, stem level) over clean songs: " + ", ".join(out))


def _level_db(path: Path) -> float:
    audio, _ = sf.read(path, dtype="float32")
    return float(10 * np.log10(np.mean(audio**2) + 1e-12))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, required=True)
    work = parser.parse_args().work
    data = work / "data"
    if not (data / "reference").is_dir():
        write_levelled(data)
    energy_params = work / "params-energy.yaml"
    text = (ROOT / "params.yaml").read_text()
    energy_params.write_text(text.replace("\n  loss: mse ", "\n  loss: energy ", 1))
    assert energy_params.read_text() != text, "params.yaml: attribute.loss: mse not found"
    levelled = ["--songs", str(data / "songs"), "--reference", str(data / "reference")]
    default = ["--songs", str(ROOT / "data/mixed23"), "--reference",
               str(ROOT / "data/rendered/reference")]

    def clean(out: Path, *args: str) -> Path:
        if not (out / "ranking.csv").is_file():
            subprocess.run([sys.executable, "-m", "stages.tools.clean", "--quiet", "--ratio", "0.5",
                            *args, "--out", str(out)], cwd=ROOT, check=True)
        return out / "ranking.csv"

    runs = {
        "unlearning (mse), default songs": [ROOT / f"data/scores/mixed23/unlearn/seed{s}/scores.csv"
                                            for s in SEEDS],
        "unlearning (mse), levels +-8 dB": [
            clean(work / f"unlearn{s}", *levelled, "--method", "unlearn", "--seed", str(s))
            for s in SEEDS],
        "unlearning (energy), default": [
            clean(work / f"energy-default{s}", *default, "--params", str(energy_params),
                  "--method", "unlearn", "--seed", str(s)) for s in SEEDS],
        "unlearning (energy), levels +-8": [
            clean(work / f"energy{s}", *levelled, "--params", str(energy_params),
                  "--method", "unlearn", "--seed", str(s)) for s in SEEDS],
        "FAD, default songs": [ROOT / "data/scores/mixed23/fad/scores.csv"],
        "FAD, stem levels +-8 dB": [clean(work / "fad", *levelled, "--method", "fad")]}
    truth = {t["name"]: t["corruption"]
             for t in json.loads((ROOT / "data/truth/mixed23.json").read_text())["tracks"]}
    for name, paths in runs.items():
        values = [auroc(p, truth) for p in paths]
        print(f"{name:34s} AUROC {np.mean(values):.3f}  per baseline "
              + " ".join(f"{v:.3f}" for v in values))
    for dataset in ("mixed23", "effectsdb"):
        dataset_truth = {t["name"]: t["corruption"] for t in json.loads(
            (ROOT / f"data/truth/{dataset}.json").read_text())["tracks"]}
        for method in ("loss", "unlearn"):
            level_dependence(dataset, method, dataset_truth)


if __name__ == "__main__":
    main()
