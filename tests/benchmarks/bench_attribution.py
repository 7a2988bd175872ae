"""Benchmark: unlearning attribution vs. training one baseline, exact vs. linear mode.

    python tests/benchmarks/bench_attribution.py            # after the default `dvc repro`

Times the whole attribution of the contaminated Mixed23 baseline (seed 0: excerpt loading and all
four target models, as the `attribute` stage does it) in both modes, reads the wall time of
training that baseline from its cost file, and prints both times, the ratio, the rank correlation
of the two modes and their AUROC against the ground truth. Not a test: nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from scipy.stats import spearmanr

from stages.lib.attribution import attribute, scores_from_delta
from stages.lib.attribution_inputs import AttributeParams, load_song_inputs
from stages.lib.detection import detection_report
from stages.lib.params import TARGETS, load_section
from stages.lib.readers import list_track_folders
from stages.lib.songs import SongList
from stages.lib.unmix import load_model


def run_mode(args: argparse.Namespace, params: AttributeParams) -> tuple[float, dict, list[str]]:
    """Wall time, per-target ΔL and song names of one full attribution."""
    start = time.perf_counter()
    config = json.loads((args.models / "model.json").read_text())["config"]
    train = [load_song_inputs(f, config["sample_rate"], params, config["n_fft"], config["hop"])
             for f in SongList.read(args.songs).all_folders()]
    ref = [load_song_inputs(f, config["sample_rate"], params, config["n_fft"], config["hop"])
           for f in list_track_folders(args.reference)]
    deltas = {}
    for target in TARGETS:
        model = load_model(args.models / f"{target}.pth", config)
        deltas[target] = attribute(model, [s.pair(target) for s in train],
                                   [s.pair(target) for s in ref], params.unlearn).delta
    return time.perf_counter() - start, deltas, [s.name for s in train]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--models", type=Path, default=Path("data/models/mixed23/contaminated/seed0"))
    parser.add_argument("--songs", type=Path, default=Path("data/lists/mixed23/contaminated.json"))
    parser.add_argument("--reference", type=Path, default=Path("data/rendered/reference"))
    parser.add_argument("--truth", type=Path, default=Path("data/truth/mixed23.json"))
    parser.add_argument("--train-cost", type=Path,
                        default=Path("metrics/cost/train/mixed23/contaminated/seed0.json"))
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    args = parser.parse_args()
    params = load_section(args.params, "attribute", AttributeParams)
    torch.set_num_threads(params.threads)
    train_s = json.loads(args.train_cost.read_text())["wall_s"]
    truth = {r["name"]: r["corruption"] for r in json.loads(args.truth.read_text())["tracks"]}
    results = {}
    for mode in ("exact", "linear"):
        p = replace(params, unlearn=replace(params.unlearn, mode=mode))
        wall, deltas, names = run_mode(args, p)
        unified, _ = scores_from_delta(deltas)
        results[mode] = (wall, np.concatenate([d.ravel() for d in deltas.values()]), unified)
        report = detection_report(dict(zip(names, unified, strict=True)), truth)
        print(f"{mode:6s}: {wall:7.2f} s = {wall / train_s:.3f} x training ({train_s:.1f} s); "
              f"unified AUROC " + ", ".join(f"{k} {v['auroc']:.3f}" for k, v in report.items()))
    rho_delta = spearmanr(results["exact"][1], results["linear"][1]).statistic
    rho_score = spearmanr(results["exact"][2], results["linear"][2]).statistic
    print(f"Spearman exact vs linear: dL entries {rho_delta:.4f}, unified scores {rho_score:.4f}")


if __name__ == "__main__":
    main()
