"""The DVC side of a distributed run: the stage graph, one attempt of one cell, the gather.

* :func:`read_cells` reads the pipeline with DVC's own API (``Repo(...).index.graph``); a cell whose
  command runs a model (``python -m stages.train|evaluate|attribute|embed``) is a GPU cell;
* :func:`run_cell` (run by a worker) clones the workspace at HEAD, points the clone at the shared
  DVC cache, sets its ``runtime`` section for the slot it got (``device: auto`` on a GPU, ``cpu``
  otherwise; ``workers`` = its CPUs: no stage declares ``runtime``), links its checkpoint root
  (the folder above every training command's ``--checkpoints``) to the workspace's, so a retried
  attempt resumes, and runs ``dvc repro <cell>``: the upstream cells are restored from the
  run-cache ("is cached"), then the cell runs and DVC records it in the shared run-cache;
* :func:`gather` is the final ``dvc repro`` in the workspace, stopped the moment it would train a
  model again.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .profiles import apply_profile

log = logging.getLogger(__name__)

GPU_MODULES = ("train", "evaluate", "attribute", "embed")
TRAINING_MODULE = "train"
_MODULE = re.compile(r"\bpython3?\s+-m\s+stages\.(\w+)")
_CHECKPOINTS = re.compile(r"--checkpoints\s+(\S+)")
_COST = re.compile(r"--cost\s+(\S+)")
_RAN = re.compile(r"^Running stage '([^']+)'", re.M)
_RESTORED = re.compile(r"^Stage '([^']+)' is cached", re.M)


class DistributeError(ValueError):
    """A campaign that cannot start or did not finish (dirty tree, failed cell, re-run in gather)."""


@dataclass(frozen=True)
class Cell:
    """One DVC stage (``train@baseline0-0``): its parent stages, the modules it runs, paths."""

    name: str
    parents: tuple[str, ...]
    modules: tuple[str, ...]
    checkpoints: tuple[str, ...]  # its commands' --checkpoints folders
    costs: tuple[str, ...]        # its commands' --cost files (wall times)
    restorable: bool = True       # DVC keeps a run-cache entry (no uncached output but metrics/plots)

    @property
    def gpu(self) -> bool:
        """Whether the cell runs a model (train, evaluate, attribute, embed): it asks for a GPU."""
        return any(m in GPU_MODULES for m in self.modules)

    @property
    def training(self) -> bool:
        """Whether the cell trains a model (the gather must never run one again)."""
        return TRAINING_MODULE in self.modules

    @property
    def family(self) -> str:
        """The stage's name before ``@`` (all cells of one matrix cost about the same)."""
        return self.name.split("@", 1)[0]


def read_cells(root: Path) -> dict[str, Cell]:
    """The pipeline's stages with a command, parents first (DVC's ``index.graph``)."""
    from dvc.repo import Repo

    root = Path(root).resolve()
    repo = Repo(str(root))
    try:
        graph = repo.index.graph  # edge (a, b): stage a depends on an output of stage b
        position = {stage: i for i, stage in enumerate(repo.index.stages)}
        cells: dict[str, Cell] = {}
        for stage in sorted(graph.nodes, key=lambda s: position.get(s, 0)):
            if not stage.cmd:
                continue
            text = stage.cmd if isinstance(stage.cmd, str) else "\n".join(stage.cmd)
            parents = tuple(sorted(_address(p, root) for p in graph.successors(stage) if p.cmd))
            name = _address(stage, root)
            # DVC skips the run-cache of a stage with an uncached output that is not a metric or
            # plot (dvc/stage/__init__.py, Stage.run): such a stage runs again in the gather
            restorable = all(o.use_cache or o.is_metric or o.is_plot for o in stage.outs)
            cells[name] = Cell(name, parents, tuple(_MODULE.findall(text)),
                               tuple(_CHECKPOINTS.findall(text)), tuple(_COST.findall(text)),
                               restorable)
    finally:
        repo.close()
    return {name: cells[name] for name in _parents_first(cells)}


def _address(stage: Any, root: Path) -> str:
    """How ``dvc repro`` run in ``root`` names the stage (``train@0``, ``sub/dvc.yaml:prep``)."""
    where = os.path.relpath(stage.path, root)
    name = getattr(stage, "name", None)
    if name is None:  # a .dvc file
        return where
    return name if where == "dvc.yaml" else f"{where}:{name}"


def _parents_first(cells: Mapping[str, Cell]) -> list[str]:
    order: list[str] = []
    done: set[str] = set()
    todo = list(cells)
    while todo:
        ready = [n for n in todo if set(cells[n].parents) <= done]
        if not ready:
            raise DistributeError(f"the stage graph has a cycle through {todo[:3]}")
        order.extend(ready)
        done.update(ready)
        todo = [n for n in todo if n not in done]
    return order


def checkpoint_root(cells: Iterable[Cell]) -> str | None:
    """The folder holding every training command's ``--checkpoints`` (relative), if any."""
    paths = [p for c in cells for p in c.checkpoints]
    if not paths:
        return None
    common = os.path.commonpath(paths)
    # a folder above every checkpoint folder: the stages refuse a checkpoint folder that is a link
    return os.path.dirname(common) if common in paths else common


def _git(root: Path, *args: str) -> str:
    out = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True)
    if out.returncode:
        raise DistributeError(f"git {' '.join(args)}: {out.stderr.strip() or out.returncode}")
    return out.stdout


def clean_head(root: Path) -> str:
    """HEAD's commit; refuses a tree with uncommitted or untracked files (clones see only HEAD)."""
    dirty = _git(root, "status", "--porcelain").splitlines()
    if dirty:
        shown = ", ".join(line[3:] for line in dirty[:3]) + (", ..." if len(dirty) > 3 else "")
        raise DistributeError(f"{root}: uncommitted changes ({shown}); commit them first: every "
                              "cell runs in a clone of HEAD")
    return _git(root, "rev-parse", "HEAD").strip()


def workspace_cache(root: Path) -> Path:
    """The DVC cache folder the workspace uses (where the gather looks)."""
    from dvc.repo import Repo

    repo = Repo(str(root))
    try:
        return Path(repo.cache.local_cache_dir).resolve()
    finally:
        repo.close()


@dataclass(frozen=True)
class CellJob:
    """Everything a worker needs to run one attempt of one cell (plain data: Ray pickles it)."""

    cell: str
    gpu: bool
    attempt: int
    source: str        # the workspace (a git repository the worker can read)
    commit: str
    cache: str         # the shared DVC cache
    work: str          # shared scratch: clones/, logs/, attempts/ of this campaign
    checkpoints: str | None  # relative checkpoint root, linked to the workspace's
    ignores: str | None      # the campaign's .gitignore files (see canonical_ignores)
    workers: int
    hardlink_lock: bool
    keep_clone: bool

    @property
    def slug(self) -> str:
        """The cell's name as a file name, with the attempt number."""
        return re.sub(r"[^\w.-]", "_", self.cell) + f".{self.attempt}"

    @property
    def record(self) -> Path:
        """The file a started attempt writes (host, pids, clone): running, or where to look."""
        return Path(self.work) / "attempts" / f"{self.slug}.json"


@dataclass(frozen=True)
class CellResult:
    """How one attempt ended: exit status, times (epoch s), stages its ``dvc repro`` ran / restored."""

    cell: str
    attempt: int
    returncode: int
    start: float
    end: float
    host: str
    ran: tuple[str, ...]
    restored: tuple[str, ...]
    log: str

    @property
    def ok(self) -> bool:
        """Whether the cell's ``dvc repro`` succeeded."""
        return self.returncode == 0

    @property
    def wall_s(self) -> float:
        """Duration of the attempt, clone and upstream restores included."""
        return self.end - self.start


def _local_config(cache: str, site: Path, hardlink_lock: bool) -> str:
    """``.dvc/config.local`` of a clone: the shared cache, a site cache inside the clone."""
    core = f"[core]\n    site_cache_dir = {site}\n" + ("    hardlink_lock = true\n" if hardlink_lock else "")
    return f"{core}[cache]\n    dir = {cache}\n"


def prepare_clone(job: CellJob, clone: Path) -> None:
    """A clone of ``job.commit`` on the shared cache, runtime set, checkpoints linked."""
    clone.parent.mkdir(parents=True, exist_ok=True)
    _git(clone.parent, "clone", "--quiet", "--no-checkout", job.source, str(clone))
    _git(clone, "checkout", "--quiet", "--detach", job.commit)
    (clone / ".dvc" / "config.local").write_text(
        _local_config(job.cache, clone / ".dvc" / "tmp" / "site", job.hardlink_lock))
    params = clone / "params.yaml"
    runtime = {"device": "auto" if job.gpu else "cpu", "workers": job.workers}
    params.write_text(apply_profile(params.read_text(), {"runtime": runtime}, "distribute"))
    if job.checkpoints:
        shared = Path(job.source) / job.checkpoints
        shared.mkdir(parents=True, exist_ok=True)
        link = clone / job.checkpoints
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(shared, target_is_directory=True)
    if job.ignores:
        apply_ignores(Path(job.ignores), clone)


def ignore_outputs(root: Path) -> None:
    """Write every output's ``.gitignore`` line now, in the pipeline's order, as DVC would.

    DVC appends an output's line to the ``.gitignore`` of its folder when it first writes or
    restores it, so a folder holding several stages' outputs (``metrics/cost``,
    ``data/scores/<set>``) gets lines in the order this workspace happened to restore them; a
    stage depending on that folder hashes those files too, and a clone that restored its upstream
    in another order than the gather would miss the run-cache there. Written first, in one order,
    the files are the same in every clone and in the workspace.
    """
    from dvc.repo import Repo

    repo = Repo(str(root))
    try:
        with repo.scm_context(autostage=False, quiet=True):
            for stage in repo.index.stages:
                for out in stage.outs:
                    if out.use_scm_ignore:
                        Path(out.fs_path).parent.mkdir(parents=True, exist_ok=True)
                    out.ignore()
    finally:
        repo.close()


def canonical_ignores(source: str, commit: str, dest: Path) -> None:
    """The ``.gitignore`` files :func:`ignore_outputs` writes into a clone of ``commit``, saved
    under ``dest`` (relative paths kept): one scratch clone per campaign instead of one per cell."""
    scratch = dest.parent / f"{dest.name}.clone"
    _git(dest.parent, "clone", "--quiet", "--no-checkout", source, str(scratch))
    _git(scratch, "checkout", "--quiet", "--detach", commit)
    ignore_outputs(scratch)
    for line in _git(scratch, "status", "--porcelain", "--untracked-files=all").splitlines():
        rel = line[3:]
        if Path(rel).name == ".gitignore":
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(scratch / rel, dest / rel)
    shutil.rmtree(scratch)


def apply_ignores(saved: Path, root: Path) -> None:
    """Copy the ``.gitignore`` files saved by :func:`canonical_ignores` into ``root``."""
    for path in saved.rglob(".gitignore"):
        target = root / path.relative_to(saved)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)


def parse_repro_log(text: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Stages a ``dvc repro`` log says it ran, and those it restored from the run-cache."""
    return tuple(_RAN.findall(text)), tuple(_RESTORED.findall(text))


def _command_env() -> dict[str, str]:
    """This environment, with this interpreter's folder first on PATH (the stages' ``python``)."""
    return {**os.environ, "PATH": os.pathsep.join([str(Path(sys.executable).parent),
                                                   os.environ.get("PATH", "")])}


def reap_children() -> None:
    """Undo Ray's ``SIGCHLD = SIG_IGN`` in this process (its driver and its workers set it).

    With SIGCHLD ignored the kernel reaps children itself, so ``subprocess`` reports exit status
    0 for a failed command, and every program started from here inherits the setting across
    ``exec``: ``dvc repro`` would then take a failed stage command for a success.
    """
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)


def run_cell(job: CellJob) -> CellResult:
    """One attempt of one cell on this machine: clone, ``dvc repro <cell>``, log, clean up."""
    reap_children()
    start, host = time.time(), socket.gethostname()
    clone = Path(job.work) / "clones" / job.slug
    logfile = Path(job.work) / "logs" / f"{job.slug}.log"
    logfile.parent.mkdir(parents=True, exist_ok=True)
    job.record.parent.mkdir(parents=True, exist_ok=True)
    prepare_clone(job, clone)
    env = _command_env()
    if not job.gpu:
        env["CUDA_VISIBLE_DEVICES"] = ""
    with logfile.open("w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "dvc", "repro", job.cell], cwd=clone,
                                stdout=out, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True)
        partial = job.record.with_suffix(".tmp")
        partial.write_text(json.dumps({
            "cell": job.cell, "attempt": job.attempt, "host": host, "worker_pid": os.getpid(),
            "pgid": proc.pid, "clone": str(clone), "start": start,
            "cuda_visible_devices": env.get("CUDA_VISIBLE_DEVICES")}))
        os.replace(partial, job.record)  # the driver reads it while we run: never half-written
        log.debug("%s: attempt %d running in %s (pid %d)", job.cell, job.attempt, clone, proc.pid)
        returncode = proc.wait()
    ran, restored = parse_repro_log(logfile.read_text(errors="replace"))
    if returncode == 0 and not job.keep_clone:
        shutil.rmtree(clone)
    return CellResult(job.cell, job.attempt, returncode, start, time.time(), host, ran, restored,
                      str(logfile))


@dataclass(frozen=True)
class GatherResult:
    """What the final ``dvc repro`` in the workspace did."""

    ran: tuple[str, ...]
    restored: tuple[str, ...]
    status_clean: bool
    log: str


def gather(root: Path, guarded: set[str], logfile: Path) -> GatherResult:
    """``dvc repro`` in the workspace, stopped (SIGTERM) the moment it starts a ``guarded`` stage.

    Every cell already ran on the shared cache, so each one is restored from the run-cache; a
    guarded stage (a model's training) that would run again means its entry is missing: an
    error, before any training happens. Then ``dvc status`` must find nothing changed.
    """
    logfile.parent.mkdir(parents=True, exist_ok=True)
    lines: list[str] = []
    with logfile.open("w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "dvc", "repro"], cwd=root, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                env=_command_env(), start_new_session=True)
        assert proc.stdout is not None
        for line in proc.stdout:
            out.write(line)
            lines.append(line)
            ran = _RAN.match(line)
            if ran and ran.group(1) in guarded:
                # SIGTERM, not SIGINT: a shell's background jobs ignore SIGINT, and so would dvc;
                # DVC's lock files name their process, and a dead one's are ignored next time
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
                raise DistributeError(f"gather: '{ran.group(1)}' would be trained again (its "
                                      f"run-cache entry is missing); stopped; log {logfile}")
        returncode = proc.wait()
    text = "".join(lines)
    if returncode:
        raise DistributeError(f"gather: dvc repro failed (exit status {returncode}); log {logfile}")
    status = subprocess.run([sys.executable, "-m", "dvc", "status", "--quiet"], cwd=root,
                            capture_output=True, text=True)
    ran, restored = parse_repro_log(text)
    return GatherResult(ran, restored, status.returncode == 0, text)
