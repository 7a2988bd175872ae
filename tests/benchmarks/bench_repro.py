"""Benchmark: a from-scratch ``dvc repro`` and where its wall time goes.

    python tests/benchmarks/bench_repro.py                                  # the default (~32 min)
    python tests/benchmarks/bench_repro.py --profile .ci/profiles/smoke.yaml  # minutes

Clones the committed tree into a scratch folder (an empty DVC cache of its own, so neither the
run-cache nor this workspace's outputs help), applies ``--profile`` if given, and times one
``dvc repro`` with this checkout's ``.venv`` on the PATH. Then, from the log: each stage's wall
time (from the first log line of its command to the first of the next stage's: the command plus
DVC's bookkeeping and the next command's start-up; 1 s resolution), the part its command timed
itself (``<stage> finished in X s``), summed per stage family. Last, what DVC spends on
``dvc.lock`` after each stage: one round-trip load and dump of the finished lock. Run it alone on
the machine: it measures wall time. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import collections
import io
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
STAGE = re.compile(r"Running stage '([^']+)'")
STAMP = re.compile(r"^(\d\d):(\d\d):(\d\d) ")
FINISHED = re.compile(r"finished in ([\d.]+) s")


def stage_times(log: str, end: float) -> dict[str, list[float]]:
    """``{family: [stages, wall s, timed s]}`` from a ``dvc repro`` log (``end``: seconds after
    midnight when the run ended)."""
    stages: list[dict] = []
    for line in log.splitlines():
        if match := STAGE.search(line):
            stages.append({"name": match.group(1), "start": None, "timed": 0.0})
        elif stages and (stamp := STAMP.match(line)):
            h, m, s = (int(g) for g in stamp.groups())
            stages[-1]["start"] = stages[-1]["start"] or h * 3600 + m * 60 + s
            if finished := FINISHED.search(line):
                stages[-1]["timed"] += float(finished.group(1))
    families: dict[str, list[float]] = collections.defaultdict(lambda: [0, 0.0, 0.0])
    starts = [s["start"] for s in stages]
    for i, stage in enumerate(stages):
        if stage["start"] is None:
            continue
        following = next((t for t in starts[i + 1:] if t is not None), end)
        row = families[stage["name"].split("@")[0]]
        row[0] += 1
        row[1] += (following - stage["start"]) % 86400
        row[2] += stage["timed"]
    return dict(families)


def lock_round_trip(lock: Path) -> tuple[float, float, int]:
    """Seconds to load and to dump ``lock`` the way DVC updates it (ruamel, round-trip), lines."""
    from ruamel.yaml import YAML

    yaml = YAML()
    start = time.perf_counter()
    data = yaml.load(lock.read_text())
    loaded = time.perf_counter()
    yaml.dump(data, io.StringIO())
    return loaded - start, time.perf_counter() - loaded, len(lock.read_text().splitlines())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", type=Path, help="a .ci/profiles/*.yaml to apply first")
    parser.add_argument("--keep", type=Path, help="a new or empty folder to clone into and keep "
                        "(default: a temporary folder, removed at the end)")
    args = parser.parse_args()
    if args.keep is not None and args.keep.exists() and any(args.keep.iterdir()):
        sys.exit(f"error: bench_repro: --keep {args.keep}: not empty; refusing to write into it")
    scratch = args.keep or Path(tempfile.mkdtemp(prefix="bench_repro_"))
    clone = scratch / "repo"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    env = {**os.environ, "PATH": f"{ROOT / '.venv' / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    if args.profile is not None:
        subprocess.run([sys.executable, "-m", "stages.tools.profile", str(args.profile.resolve())],
                       cwd=clone, env=env, check=True)
    start = time.time()
    run = subprocess.run(["dvc", "repro"], cwd=clone, env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True)  # one stream: DVC's lines in order
    wall = time.time() - start
    (scratch / "repro.log").write_text(run.stdout)
    if run.returncode != 0:
        sys.exit(f"dvc repro failed (exit {run.returncode}); log: {scratch / 'repro.log'}")
    local = time.localtime()
    families = stage_times(run.stdout,
                           local.tm_hour * 3600 + local.tm_min * 60 + local.tm_sec)
    print(f"dvc repro from scratch: {wall:.1f} s ({wall / 60:.1f} min), "
          f"{sum(int(r[0]) for r in families.values())} stages; log {scratch / 'repro.log'}")
    print("| stage family | stages | wall [s] | timed by the command [s] |")
    print("|---|---|---|---|")
    for name, (count, stage_wall, timed) in sorted(families.items(), key=lambda kv: -kv[1][1]):
        print(f"| {name} | {int(count)} | {stage_wall:.0f} | {timed:.1f} |")
    load, dump, lines = lock_round_trip(clone / "dvc.lock")
    print(f"dvc.lock: {lines} lines; one round-trip load {load:.2f} s + dump {dump:.2f} s "
          "(DVC does this after every stage)")
    if args.keep is None:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
