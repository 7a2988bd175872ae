"""Benchmark: the distributed runner (python -m stages.tools.distribute) against a serial ``dvc repro``.

    python tests/benchmarks/bench_distribute.py speedup            # smoke profile, 2 CPU workers
    python tests/benchmarks/bench_distribute.py simulate --overhead 4.0

* ``speedup``: one serial ``dvc repro`` and one ``python -m stages.tools.distribute --cpus N`` of a CPU
  profile (default: the smoke profile), each in a fresh clone with an empty cache of its own, on
  this machine; wall times, their ratio, whether the outputs are byte-identical, and the per-cell
  overhead of the runner (a cell's wall time minus its command's, for cells with a cost file).
  One run each: no error bars.
* ``simulate``: the paper profile's DAG (.ci/profiles/paper.yaml applied to a clone: 614 cells)
  placed on G GPUs by stages/lib/dagsim.py (Ray-like list scheduling). Cell costs: a cell's cost
  file from a finished run (``--costs-from``, default: this workspace, whose metrics/cost/ holds
  the default profile's), else the mean of its stage's cells that have one, else ``--untimed`` seconds (stages
  without a cost file: small CPU steps); ``--train-scale`` multiplies training cells; every cell
  pays ``--overhead`` seconds (clone + upstream restores, measured by ``speedup``). A second model
  counts training cells only (each one unit T): the wall time in units of one training.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from snapshot import copy_worktree  # noqa: E402

from stages.lib.cells import Cell, read_cells  # noqa: E402
from stages.lib.dagsim import SimCell, simulate  # noqa: E402

GIT_ENV = {**os.environ, "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@localhost",
           "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@localhost"}


def _repo(dest: Path, profile: Path | None, cache: Path | None) -> Path:
    """A fresh repository of this working tree (not data/, metrics/, dvc.lock) under ``profile``,
    in one commit (the runner clones HEAD), with the DVC cache ``cache``."""
    copy_worktree(dest)
    run = {"cwd": dest, "env": GIT_ENV, "check": True, "capture_output": True}
    if profile is not None:
        subprocess.run([sys.executable, "-m", "stages.tools.profile", str(profile)], **run)
    subprocess.run(["git", "init", "-q"], **run)
    subprocess.run(["git", "add", "-A"], **run)
    subprocess.run(["git", "commit", "-qm", "bench"], **run)
    if cache is not None:
        subprocess.run([sys.executable, "-m", "dvc", "cache", "dir", "--local", str(cache)], **run)
    return dest


def _outputs(repo: Path) -> dict[str, str]:
    lock = yaml.safe_load((repo / "dvc.lock").read_text())["stages"]
    return {f"{name} {out['path']}": out.get("md5") for name, stage in lock.items()
            for out in stage.get("outs", [])
            if not out["path"].startswith("metrics/cost") and out["path"] != "metrics/report.md"}


def _timed(cmd: list[str], cwd: Path, log: Path) -> float:
    start = time.perf_counter()
    with log.open("w") as out:
        subprocess.run(cmd, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, check=True)
    return time.perf_counter() - start


def speedup(args: argparse.Namespace) -> dict:
    """One serial and one distributed run of ``args.profile`` in fresh clones; the ratio."""
    tmp = Path(tempfile.mkdtemp(prefix="bench-distribute-"))
    serial = _repo(tmp / "serial", args.profile, tmp / "cache-serial")
    dist = _repo(tmp / "distributed", args.profile, tmp / "cache-distributed")
    t_serial = _timed([sys.executable, "-m", "dvc", "repro"], serial, tmp / "serial.log")
    t_dist = _timed([sys.executable, "-m", "stages.tools.distribute", "--cpus", str(args.workers),
                     "--work", str(tmp / "work")], dist, tmp / "distributed.log")
    summary = json.loads(next((tmp / "work").glob("*/summary.json")).read_text())
    cells = read_cells(dist)
    overheads = []
    for name, cell in summary["cells"].items():
        files = [dist / c for c in cells[name].costs]
        if files and all(f.is_file() for f in files):
            command = sum(json.loads(f.read_text())["wall_s"] for f in files)
            overheads.append(cell["end"] - cell["start"] - command)
    return {"profile": str(args.profile), "workers": args.workers, "serial_s": round(t_serial, 1),
            "distributed_s": round(t_dist, 1), "speedup": round(t_serial / t_dist, 3),
            "cells": len(summary["cells"]), "gather_ran": summary["gather"]["ran"],
            "outputs_identical": _outputs(serial) == _outputs(dist),
            "overhead_s_median": round(statistics.median(overheads), 2) if overheads else None,
            "overhead_s_cells_measured": len(overheads), "scratch": str(tmp)}


def _cell_costs(cells: dict[str, Cell], run: Path, untimed: float) -> dict[str, float]:
    """Seconds per cell: its cost files in the workspace ``run``, its stage's mean, or ``untimed``."""
    measured: dict[str, float] = {}
    for name, cell in cells.items():
        files = [run / c for c in cell.costs]
        if files and all(f.is_file() for f in files):
            measured[name] = sum(json.loads(f.read_text())["wall_s"] for f in files)
    by_family: dict[str, list[float]] = {}
    for name, value in measured.items():
        by_family.setdefault(cells[name].family, []).append(value)
    out = {}
    for name, cell in cells.items():
        family = by_family.get(cell.family)
        out[name] = measured.get(name, statistics.fmean(family) if family else untimed)
    return out


def simulate_paper(args: argparse.Namespace) -> dict:
    """The paper DAG on each GPU count, from measured costs and in units of one training."""
    tmp = Path(tempfile.mkdtemp(prefix="bench-paper-dag-"))
    repo = _repo(tmp / "paper", None, None)
    subprocess.run([sys.executable, "-m", "stages.tools.profile", str(ROOT / ".ci/profiles/paper.yaml")],
                   cwd=repo, check=True)
    cells = read_cells(repo)
    base = _cell_costs(cells, args.costs_from.resolve(), args.untimed)
    out: dict = {"cells": len(cells), "training_cells": sum(c.training for c in cells.values()),
                 "gpu_cells": sum(c.gpu for c in cells.values()), "models": {}}
    models = {
        "measured": {n: (v * (args.train_scale if cells[n].training else 1.0)) + args.overhead
                     for n, v in base.items()},
        "training_units": {n: 1.0 if cells[n].training else 0.0 for n in cells},
    }
    for model, cost in models.items():
        rows = []
        for gpus in args.gpus:
            sim = simulate({n: SimCell(c.parents, c.gpu, cost[n]) for n, c in cells.items()},
                           gpus=gpus, cpus=gpus * args.cpus_per_gpu)
            rows.append({"gpus": gpus, "cpus": gpus * args.cpus_per_gpu,
                         "wall": round(sim.makespan_s, 1), "total_work": round(sim.total_work_s, 1),
                         "gpu_work": round(sim.gpu_work_s, 1),
                         "critical_path": round(sim.critical_path_s, 1),
                         "critical_path_cells": len(sim.critical_path),
                         "work_over_gpus": round(sim.gpu_work_s / gpus, 1),
                         "speedup_vs_serial": round(sim.speedup, 2)})
        out["models"][model] = rows
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="what", required=True)
    one = sub.add_parser("speedup")
    one.add_argument("--profile", type=Path, default=ROOT / ".ci/profiles/smoke.yaml")
    one.add_argument("--workers", type=int, default=2)
    two = sub.add_parser("simulate")
    two.add_argument("--costs-from", type=Path, default=ROOT,
                     help="a workspace holding a finished run's cost files (metrics/cost/...)")
    two.add_argument("--gpus", type=int, nargs="+", default=[4, 32])
    two.add_argument("--cpus-per-gpu", type=int, default=4)
    two.add_argument("--overhead", type=float, default=0.0, help="seconds added to every cell")
    two.add_argument("--untimed", type=float, default=1.0,
                     help="seconds of a stage without a cost file (before --overhead)")
    two.add_argument("--train-scale", type=float, default=1.0)
    args = parser.parse_args()
    result = speedup(args) if args.what == "speedup" else simulate_paper(args)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
