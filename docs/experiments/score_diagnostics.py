"""Diagnostics (issue #18): what drives each score on a corpus — level, loss, or the corruption?

For a workspace after `dvc repro` (the default, or a clone restored with a study's profile, e.g.
`.ci/profiles/corpus2.yaml`), per set, over the three baselines' scores (mean of the seeds):
- detection AUROC of the unified score per corruption kind, for unlearning, unlearning without
  the Fisher, small loss, FAD and the MLP;
- Spearman between the unified scores of unlearning and the small-loss score (does unlearning
  rank songs by how hard they are to fit?);
- per target, Spearman(score, the stem's level in dB) over the *clean* songs, for unlearning and
  the small loss (does a song's score measure its loudness?).
Reads only `data/scores`, `data/truth` and the built sets; writes nothing.

    python docs/experiments/score_diagnostics.py --root .             # the default
    python docs/experiments/score_diagnostics.py --root /tmp/corpus2  # a restored study clone
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.stats import rankdata, spearmanr

TARGETS = ("vocals", "bass", "drums", "other")
METHODS = ("unlearn", "unlearn-naive", "loss", "fad", "mlp")


def mean_scores(root: Path, dataset: str, method: str) -> dict[str, dict[str, float]]:
    """song -> column -> score, averaged over the seed folders (FAD / MLP have one table)."""
    folder = root / "data/scores" / dataset / method
    tables = sorted(folder.glob("seed*/scores.csv")) or [folder / "scores.csv"]
    rows: dict[str, dict[str, list[float]]] = {}
    for table in tables:
        for row in csv.DictReader(table.open()):
            cells = rows.setdefault(row["song"], {})
            for key, value in row.items():
                if key.startswith("score_"):
                    cells.setdefault(key[6:], []).append(float(value))
    return {song: {k: float(np.mean(v)) for k, v in cells.items()} for song, cells in rows.items()}


def auroc(score: np.ndarray, bad: np.ndarray) -> float:
    """P(a clean song scores above a corrupted one); higher scores mean cleaner."""
    ranks = rankdata(score)
    n_clean, n_bad = int((~bad).sum()), int(bad.sum())
    return float((ranks[~bad].sum() - n_clean * (n_clean + 1) / 2) / (n_clean * n_bad))


def level_db(path: Path) -> float:
    audio, _ = sf.read(path, dtype="float32")
    return float(10 * np.log10(np.mean(audio**2) + 1e-12))


def report(root: Path, dataset: str) -> None:
    truth = {t["name"]: t["corruption"]
             for t in json.loads((root / "data/truth" / f"{dataset}.json").read_text())["tracks"]}
    scores = {m: mean_scores(root, dataset, m) for m in METHODS}
    songs = sorted(truth)
    kinds = sorted(set(truth.values()) - {"clean"})
    print(f"## {dataset} ({root})")
    print("AUROC of the unified score:  " + "  ".join(f"{k:>11s}" for k in ["any", *kinds]))
    for method, table in scores.items():
        unified = np.array([table[s]["unified"] for s in songs])
        cells = []
        for kind in ["any", *kinds]:
            keep = np.array([truth[s] == "clean" or kind in ("any", truth[s]) for s in songs])
            bad = np.array([truth[s] != "clean" for s in songs])[keep]
            cells.append(f"{auroc(unified[keep], bad):11.2f}")
        print(f"  {method:26s}" + "  ".join(cells))
    rho = spearmanr([scores["unlearn"][s]["unified"] for s in songs],
                    [scores["loss"][s]["unified"] for s in songs]).statistic
    print(f"Spearman(unlearning, small loss), unified, all songs: {rho:+.2f}")
    clean = [s for s in songs if truth[s] == "clean"]
    for method in ("unlearn", "loss"):
        cells = []
        for target in TARGETS:
            level = [level_db(root / "data" / dataset / s / f"{target}.wav") for s in clean]
            cells.append(f"{target} {spearmanr(level, [scores[method][s][target] for s in clean]).statistic:+.2f}")
        print(f"Spearman({method} score, stem level) over {len(clean)} clean songs: " + ", ".join(cells))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, default=Path("."))
    root = parser.parse_args().root
    for dataset in ("mixed23", "effectsdb"):
        report(root, dataset)


if __name__ == "__main__":
    main()
