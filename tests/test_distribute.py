"""The distributed runner (stages/tools/distribute.py; stages/lib/distribute.py, cells.py, dagsim.py).

* unit: the graph DVC reads from this project's dvc.yaml, the retry / blocking logic with a fake
  executor, the schedule simulation against its bounds, the refusal of a dirty tree;
* a toy DVC pipeline on a local Ray cluster with two simulated GPUs (seconds): GPU cells get a GPU
  each, a worker killed mid-training is retried and its cell resumes from the shared checkpoint,
  the gather restores everything and runs no training, ``dvc status`` is clean;
* ``slow``: the smoke profile end to end on the same cluster, compared with the stored serial run.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
import yaml
from snapshot import copy_worktree

from stages.lib.cells import (
    Cell,
    CellJob,
    CellResult,
    DistributeError,
    checkpoint_root,
    gather,
    read_cells,
)
from stages.lib.dagsim import SimCell, critical_path, simulate
from stages.lib.distribute import Options, Progress, campaign, run_campaign

ROOT = Path(__file__).resolve().parents[1]
GIT_ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t"}
needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git is needed")


# ---------------------------------------------------------------- the graph of this project


def test_the_project_graph_marks_model_stages_as_gpu_cells() -> None:
    cells = read_cells(ROOT)
    gpu = {n for n, c in cells.items() if c.gpu}
    assert {"train@baseline0-0", "train@baseline3-0", "evaluate_trivial", "embed@mixed23",
            "attribute@mixed23-0", "train_sanity", "attribute_sanity",
            "random_retrain@mixed23-0.5-4", "random_evaluate@effectsdb-0.5"} <= gpu
    assert not gpu & {"render", "filter@mixed23-fad-unified-0.5", "fad_scores@mixed23", "report",
                      "mlp_scores@mixed23", "random_filter@mixed23-0.5"}
    assert {n for n, c in cells.items() if c.training} == {
        n for n in cells
        if n.split("@")[0] in ("train", "retrain", "train_sanity", "random_retrain")}
    names = list(cells)
    for name, cell in cells.items():  # parents first
        assert all(names.index(p) < names.index(name) for p in cell.parents)
    assert "filter@mixed23-fad-unified-0.5" in cells["retrain@mixed23-fad-unified-0.5-0"].parents
    assert checkpoint_root(cells.values()) == "data/checkpoints"
    assert [n for n, c in cells.items() if not c.restorable] == ["report"]


def test_checkpoint_root_is_a_folder_above_every_checkpoint_folder() -> None:
    one = Cell("t", (), ("train",), ("data/ck/a",), ())
    assert checkpoint_root([one]) == "data/ck"
    assert checkpoint_root([one, Cell("u", (), ("train",), ("data/ck/b/c",), ())]) == "data/ck"
    assert checkpoint_root([Cell("r", (), ("render",), (), ())]) is None


# ---------------------------------------------------------------- scheduling without Ray


class FakeExecutor:
    """Runs nothing: answers each submitted attempt at once, failing the first ``fail[cell]``."""

    def __init__(self, fail: dict[str, int]) -> None:
        self.fail = dict(fail)
        self.queue: list[tuple[object, CellJob]] = []
        self.order: list[tuple[str, int]] = []

    def submit(self, job: CellJob) -> object:
        handle = object()
        self.queue.append((handle, job))
        return handle

    def wait(self, timeout_s: float) -> list[tuple[object, CellResult | BaseException]]:
        handle, job = self.queue.pop(0)
        self.order.append((job.cell, job.attempt))
        if self.fail.get(job.cell, 0) > 0:
            self.fail[job.cell] -= 1
            if job.attempt == 1 and job.cell == "b":
                return [(handle, RuntimeError("worker died"))]
            return [(handle, CellResult(job.cell, job.attempt, 1, 0.0, 1.0, "h", (), (), "log"))]
        return [(handle, CellResult(job.cell, job.attempt, 0, 0.0, 2.0, "h", (job.cell,), (), "log"))]


def _diamond() -> dict[str, Cell]:
    return {"a": Cell("a", (), ("render",), (), ()), "b": Cell("b", ("a",), ("train",), (), ()),
            "c": Cell("c", ("a",), ("train",), (), ()), "d": Cell("d", ("b", "c"), ("report",), (), ()),
            "e": Cell("e", ("a",), ("filter",), (), ())}


def _job_factory(tmp_path: Path):
    def make(cell: Cell, attempt: int) -> CellJob:
        return CellJob(cell.name, cell.gpu, attempt, "src", "0" * 40, "cache", str(tmp_path),
                       None, None, 1, False, False)
    return make


def test_a_failed_cell_is_retried_once_then_its_children_run(tmp_path: Path) -> None:
    cells = _diamond()
    executor = FakeExecutor({"b": 1})
    results = run_campaign(cells, _job_factory(tmp_path), executor, Progress(cells, 2, 2, 1))
    assert set(results) == set(cells)
    assert results["b"].attempt == 2
    order = [c for c, _ in executor.order]
    assert order.index("d") > max(i for i, (c, _) in enumerate(executor.order) if c == "b")


def test_a_cell_failing_twice_stops_its_descendants_only(tmp_path: Path) -> None:
    cells = _diamond()
    executor = FakeExecutor({"c": 2})
    with pytest.raises(DistributeError, match=r"1 cell\(s\) failed twice \(c\); 1 downstream"):
        run_campaign(cells, _job_factory(tmp_path), executor, Progress(cells, 2, 2, 1))
    ran = {c for c, _ in executor.order}
    assert ran == {"a", "b", "c", "e"} and executor.order.count(("c", 2)) == 1


def test_the_eta_simulates_the_cells_left_at_measured_costs(tmp_path: Path) -> None:
    cells = {"a": Cell("a", (), ("render",), (), ()), "b": Cell("b@0", ("a",), ("train",), (), ()),
             "c": Cell("b@1", ("a",), ("train",), (), ())}
    cells = {c.name: c for c in cells.values()}
    progress = Progress(cells, 1, 4, 1)
    assert progress.eta_s(0.0) is None  # nothing measured yet
    progress.done["a"] = CellResult("a", 1, 0, 0.0, 3.0, "h", ("a",), (), "log")
    assert progress.eta_s(3.0) == 6.0  # two cells of 3 s (the only measure) on one GPU
    progress.done["b@0"] = CellResult("b@0", 1, 0, 3.0, 13.0, "h", ("b@0",), (), "log")
    assert progress.eta_s(13.0) == 10.0  # b@1 costs what b@0 did
    assert "[done 2/3 | running 0 | queued 0 | failed 0] x | ETA 0m10s" in progress.line("x")


# ---------------------------------------------------------------- the simulation


def test_simulation_meets_its_bounds() -> None:
    chain = {"a": SimCell((), False, 2.0), "b": SimCell(("a",), True, 3.0)}
    sim = simulate(chain, gpus=4, cpus=4)
    assert sim.makespan_s == sim.critical_path_s == 5.0 and sim.critical_path == ("a", "b")
    fan = {"root": SimCell((), False, 1.0), **{f"t{i}": SimCell(("root",), True, 10.0) for i in range(8)}}
    assert simulate(fan, gpus=1, cpus=8).makespan_s == 81.0
    assert simulate(fan, gpus=4, cpus=8).makespan_s == 21.0
    assert simulate(fan, gpus=8, cpus=8).makespan_s == 11.0 == critical_path(fan)[0]
    # a GPU cell holds CPUs too: 2 CPUs run two cells at once whatever the GPUs
    assert simulate(fan, gpus=8, cpus=2).makespan_s == 41.0
    with pytest.raises(ValueError, match="needs a GPU"):
        simulate(fan, gpus=0, cpus=2)


# ---------------------------------------------------------------- a toy pipeline on Ray

TOY_TRAIN = '''
"""Toy training: STEPS steps of a second each, a checkpoint after every step, resumed."""
import argparse, os, sys, time
from pathlib import Path
import yaml

p = argparse.ArgumentParser()
p.add_argument("--seed"); p.add_argument("--data"); p.add_argument("--out")
p.add_argument("--checkpoints")
a = p.parse_args()
if os.environ.get("TOY_FAIL_SEED") == a.seed:
    sys.exit(3)
device = yaml.safe_load(open("params.yaml"))["runtime"]["device"]
print(f"toy-train seed={a.seed} device={device} "
      f"cuda={os.environ.get('CUDA_VISIBLE_DEVICES')}", file=sys.stderr, flush=True)
ck = Path(a.checkpoints); ck.mkdir(parents=True, exist_ok=True)
state = ck / "step"
step = int(state.read_text()) if state.is_file() else 0
if step:
    print(f"toy-train resuming from step {step}", file=sys.stderr, flush=True)
meet = os.environ.get("TOY_RENDEZVOUS")  # wait (60 s at most) until another training started:
if meet:                                 # trainings run at once overlap however loaded the host
    Path(meet).mkdir(exist_ok=True); (Path(meet) / a.seed).touch()
    deadline = time.time() + 60
    while len({p.name for p in Path(meet).iterdir()}) < 2 and time.time() < deadline:
        time.sleep(0.1)
    met = len({p.name for p in Path(meet).iterdir()}) >= 2
    print(f"toy-train {'met another training' if met else 'ran alone'}", file=sys.stderr, flush=True)
while step < 4:
    time.sleep(1.0)
    step += 1
    tmp = ck / "step.tmp"; tmp.write_text(str(step)); os.replace(tmp, state)
Path(a.out).write_text(f"model seed {a.seed} on {Path(a.data).read_text()}")
state.unlink(); ck.rmdir()
'''

TOY_DVC = """
stages:
  prep:
    cmd: python toy.py data/a.txt
    deps: [toy.py]
    outs: [data/a.txt]
  train:
    foreach: [0, 1, 2]
    do:
      cmd: python -m stages.train --seed ${item} --data data/a.txt --out data/m${item}.txt
        --checkpoints data/checkpoints/m${item}
      deps: [data/a.txt, stages/train.py]
      outs: ["data/m${item}.txt"]
  report:
    cmd: python toy.py data/report.txt data/m0.txt data/m1.txt data/m2.txt
    deps: [toy.py, data/m0.txt, data/m1.txt, data/m2.txt]
    outs: [data/report.txt]
"""

TOY_PY = """
import sys
from pathlib import Path
out, *inputs = sys.argv[1:]
Path(out).parent.mkdir(parents=True, exist_ok=True)
Path(out).write_text("".join(Path(i).read_text() + "\\n" for i in inputs) or "data\\n")
"""


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True,
                   env={**os.environ, **GIT_ENV})


def _toy_repo(tmp_path: Path) -> Path:
    repo = tmp_path / "toy"
    (repo / "stages").mkdir(parents=True)
    (repo / "stages" / "__init__.py").write_text("")
    (repo / "stages" / "train.py").write_text(TOY_TRAIN)
    (repo / "toy.py").write_text(TOY_PY)
    (repo / "dvc.yaml").write_text(TOY_DVC)
    shutil.copy(ROOT / "params.yaml", repo / "params.yaml")
    (repo / ".gitignore").write_text("/data/\n")
    _git(repo, "init", "-q")
    subprocess.run([sys.executable, "-m", "dvc", "init", "-q"], cwd=repo, check=True)
    subprocess.run([sys.executable, "-m", "dvc", "config", "core.analytics", "false"], cwd=repo,
                   check=True)
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "toy")
    return repo


def _kill_first_attempt(work: Path, slug: str, checkpoint: Path, done: threading.Event) -> None:
    """Once ``slug``'s first attempt has written a checkpoint, kill its worker and commands."""
    deadline = time.time() + 900
    while time.time() < deadline and not done.is_set():
        records = list(work.glob(f"*/attempts/{slug}.1.json"))
        if records and checkpoint.is_file():
            record = json.loads(records[0].read_text())
            os.killpg(record["pgid"], signal.SIGKILL)  # as a lost node would: everything at once
            os.kill(record["worker_pid"], signal.SIGKILL)
            return
        time.sleep(0.1)


def _run_with_a_kill(repo: Path, work: Path, opts: Options, slug: str, checkpoint: Path) -> Path:
    done = threading.Event()
    killer = threading.Thread(target=_kill_first_attempt, args=(work, slug, checkpoint, done))
    killer.start()
    try:
        return campaign(repo, opts)
    finally:
        done.set()
        killer.join()


def _overlap(cells: dict) -> bool:
    spans = sorted((c["start"], c["end"]) for c in cells.values())
    return any(b[0] < a[1] for a, b in zip(spans, spans[1:], strict=False))


@needs_git
def test_toy_pipeline_on_ray_with_simulated_gpus_and_a_killed_worker(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = _toy_repo(tmp_path)
    work = tmp_path / "work"
    monkeypatch.chdir(repo)
    monkeypatch.setenv("TOY_RENDEZVOUS", str(tmp_path / "rendezvous"))
    opts = Options(None, 2, 2, None, work, 1, False, False)
    summary = _run_with_a_kill(repo, work, opts, "train_0", repo / "data/checkpoints/m0/step")
    record = json.loads(summary.read_text())
    cells = record["cells"]
    assert set(cells) == {"prep", "train@0", "train@1", "train@2", "report"}
    assert cells["train@0"]["attempt"] == 2  # the killed worker's cell ran again ...
    retry = Path(cells["train@0"]["log"]).read_text()
    assert "toy-train resuming from step" in retry  # ... from its checkpoint
    # two trainings ran at once: the killed first attempt met another one before its checkpoint
    # (cell spans of the final attempts need not overlap on a loaded host: the retry runs late)
    assert "toy-train met another training" in next(work.glob("*/logs/train_0.1.log")).read_text()
    attempts = {p.stem: json.loads(p.read_text()) for p in work.glob("*/attempts/*.json")}
    assert {attempts[f"train_{i}.1"]["cuda_visible_devices"] for i in range(3)} <= {"0", "1"}
    assert attempts["prep.1"]["cuda_visible_devices"] == ""
    assert "device=auto" in retry and "device=auto" in Path(cells["train@1"]["log"]).read_text()
    assert cells["report"]["ran"] == ["report"]  # its upstream came from the run-cache
    assert set(cells["report"]["restored"]) == {"prep", "train@0", "train@1", "train@2"}
    gather = record["gather"]
    assert gather["ran"] == [] and gather["restored"] == 5 and gather["status_clean"]
    assert (repo / "data/report.txt").read_text().startswith("model seed 0 on data")
    assert not list(work.glob("*/clones"))  # clones are removed once every cell succeeded
    assert not (repo / "data/checkpoints/m0").exists()  # the cell removed its checkpoint


@needs_git
def test_a_failing_command_on_ray_fails_its_cell(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Ray ignores SIGCHLD in its driver and workers: unless undone, every exit status reads 0
    and a failed stage would be taken for a success (by the cell and by dvc repro inside it)."""
    repo = _toy_repo(tmp_path)
    monkeypatch.chdir(repo)
    monkeypatch.setenv("TOY_FAIL_SEED", "1")
    opts = Options(None, 2, 2, None, tmp_path / "work", 1, False, False)
    with pytest.raises(DistributeError, match=r"train@1"):
        campaign(repo, opts)
    records = sorted(p.name for p in (tmp_path / "work").glob("*/attempts/train_1.*.json"))
    assert records == ["train_1.1.json", "train_1.2.json"]  # retried once, failed both times
    assert not (repo / "data/m1.txt").exists()
    status = subprocess.run([sys.executable, "-c", "raise SystemExit(3)"], check=False)
    assert status.returncode == 3  # this (driver) process sees real exit statuses again


@needs_git
def test_the_gather_stops_before_training_a_model_again(tmp_path: Path) -> None:
    repo = _toy_repo(tmp_path)  # nothing in the run-cache: train@0 would run
    with pytest.raises(DistributeError, match="'train@0' would be trained again"):
        gather(repo, {"train@0", "train@1", "train@2"}, tmp_path / "gather.log")
    log = (tmp_path / "gather.log").read_text()
    assert "Running stage 'prep'" in log and "toy-train seed=0" not in log
    assert not (repo / "data/m0.txt").exists()


@needs_git
def test_a_dirty_tree_is_refused_with_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    from stages.tools import distribute

    repo = _toy_repo(tmp_path)
    (repo / "toy.py").write_text("# edited\n")
    monkeypatch.chdir(repo)
    with pytest.raises(SystemExit, match=r"^error: distribute: .*uncommitted changes \(toy.py\)"):
        distribute.main(["--cpus", "1"])


@needs_git
def test_a_running_cluster_is_not_sized_by_flags(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from stages.tools import distribute

    monkeypatch.chdir(_toy_repo(tmp_path))
    with pytest.raises(SystemExit, match=r"^error: distribute: --gpus/--cpus size a local"):
        distribute.main(["--address", "127.0.0.1:1", "--cpus", "2", "--work", str(tmp_path / "w")])


def test_model_cells_can_share_a_gpu(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``--cells-per-gpu N`` asks Ray for 1/N of a GPU per model cell, nothing for the others."""
    import types

    from stages.lib.distribute import RayExecutor

    asked: list[dict] = []

    class Task:
        def options(self, **kwargs: object) -> Task:
            asked.append(kwargs)
            return self

        def remote(self, job: CellJob) -> str:
            return job.slug

    monkeypatch.setitem(sys.modules, "ray", types.SimpleNamespace(remote=lambda fn: Task()))
    make = _job_factory(tmp_path)
    executor = RayExecutor(cpus_per_cell=2, cells_per_gpu=4)
    executor.submit(make(Cell("train@a", (), ("train",), (), ()), 1))
    executor.submit(make(Cell("report", (), ("report",), (), ()), 1))
    assert [(a["num_gpus"], a["num_cpus"]) for a in asked] == [(0.25, 2), (0, 2)]
    with pytest.raises(DistributeError, match=r"^--cells-per-gpu 0: must be >= 1$"):
        Options(None, 1, 2, None, tmp_path, 1, False, False, cells_per_gpu=0)


# ---------------------------------------------------------------- the smoke profile on Ray


def _outputs(repo: Path) -> dict[str, str]:
    """Every current stage's output hashes in ``dvc.lock`` but the timings (metrics/cost/) and the
    report that tabulates them, as .ci/smoke compares them."""
    lock = yaml.safe_load((repo / "dvc.lock").read_text())["stages"]
    current = set(read_cells(repo))
    return {f"{name} {out['path']}": out.get("md5") for name, stage in lock.items()
            if name in current for out in stage.get("outs", [])
            if not out["path"].startswith("metrics/cost") and out["path"] != "metrics/report.md"}


def _smoke_repo(tmp_path: Path, name: str) -> Path:
    """A fresh repository of this working tree (tracked and untracked files, not the pipeline's
    data/ and metrics/) under the smoke profile, in one commit, with a DVC cache of its own."""
    repo = copy_worktree(tmp_path / name)
    subprocess.run([sys.executable, "-m", "stages.tools.profile", ".ci/profiles/smoke.yaml"], cwd=repo,
                   check=True)
    _git(repo, "init", "-q")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "smoke profile")
    subprocess.run([sys.executable, "-m", "dvc", "cache", "dir", "--local",
                    str(tmp_path / f"cache-{name}")], cwd=repo, check=True)
    return repo


@needs_git
@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("BCB_RAY_SMOKE") != "1",
                    reason="~6 min on 2 cores; opt in with BCB_RAY_SMOKE=1")
def test_smoke_profile_on_ray_equals_the_stored_serial_run(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """The smoke pipeline on 2 CPUs + 2 simulated GPUs with one training worker killed mid-run:
    every output (metrics, models, scores) byte-identical to a serial run on the same kind of CPU:
    the one ``.ci/smoke`` just made (``BCB_SMOKE_HASHES``, as in CI), else the one stored by
    ``.ci/smoke --update``. Minutes, not seconds."""
    repo = _smoke_repo(tmp_path, "distributed")
    monkeypatch.chdir(repo)
    work = tmp_path / "work"
    opts = Options(None, 2, 2, tmp_path / "cache-distributed", work, 1, False, False)
    checkpoint = repo / "data/checkpoints/mixed23/contaminated/seed0/vocals.pt"
    summary = _run_with_a_kill(repo, work, opts, "train_baseline0-0", checkpoint)
    record = json.loads(summary.read_text())
    cells = record["cells"]
    assert cells["train@baseline0-0"]["attempt"] == 2
    assert "resuming from epoch" in Path(cells["train@baseline0-0"]["log"]).read_text()
    assert _overlap(cells)
    # only the report runs in the gather: its uncached outputs keep it out of DVC's run-cache
    assert "report" not in cells and not read_cells(repo)["report"].restorable
    assert record["gather"]["ran"] == ["report"] and record["gather"]["status_clean"]
    serial = Path(os.environ.get("BCB_SMOKE_HASHES") or ROOT / ".ci/smoke-metrics/output-hashes.txt")
    expected = {" ".join(line.split()[:2]): line.split()[2] for line in
                serial.read_text().splitlines()}
    assert len(expected) > 50 and _outputs(repo) == expected


def test_the_toy_scripts_are_valid_python() -> None:
    compile(textwrap.dedent(TOY_TRAIN), "train.py", "exec")
    compile(TOY_PY, "toy.py", "exec")
