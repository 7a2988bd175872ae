"""Run the DVC pipeline's cells as Ray tasks, each in its own clone on one shared cache.

DVC stays the source of truth: the graph is read from ``dvc.yaml`` with DVC's own API, every
cell is a plain ``dvc repro <cell>`` in a fresh ``git clone`` of HEAD whose cache is the shared
one (stages/lib/cells.py), and the results come home through DVC's run-cache: a final
``dvc repro`` in the workspace restores every cell ("is cached") and trains none again. Ray only
decides where and when a cell runs (a GPU cell asks for one GPU; Ray sets
``CUDA_VISIBLE_DEVICES``).

* A cell is submitted once its parents are done; a failed attempt (non-zero exit, lost worker or
  node) is retried once and resumes from its checkpoints; a cell failing twice stops its
  descendants only, and the campaign ends with an error naming it.
* Progress: one log line per finished cell with done / running / queued / failed counts and an
  ETA simulated (stages/lib/dagsim.py) from the durations measured so far.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import statistics
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from .cells import (
    Cell,
    CellJob,
    CellResult,
    DistributeError,
    GatherResult,
    apply_ignores,
    canonical_ignores,
    checkpoint_root,
    clean_head,
    gather,
    read_cells,
    reap_children,
    run_cell,
    workspace_cache,
)
from .dagsim import SimCell, simulate

log = logging.getLogger(__name__)

RETRIES = 1


class Executor(Protocol):
    """Where attempts run: ``submit`` returns a handle, ``wait`` yields finished handles."""

    def submit(self, job: CellJob) -> Any: ...

    def wait(self, timeout_s: float) -> list[tuple[Any, CellResult | BaseException]]: ...


class RayExecutor:
    """Attempts as Ray tasks: ``1 / cells_per_gpu`` of a GPU and ``cpus`` CPUs for a GPU cell
    (several small trainings share a GPU well: docs/gpu.md), ``cpus`` CPUs otherwise.

    Ray never retries by itself (``max_retries=0``): the campaign decides, so that every attempt
    is counted and logged.
    """

    def __init__(self, cpus_per_cell: int, cells_per_gpu: int = 1) -> None:
        import ray

        self._ray = ray
        self._task = ray.remote(run_cell)
        self._cpus = cpus_per_cell
        self._gpu_share = 1.0 / cells_per_gpu
        self._pending: dict[Any, CellJob] = {}

    def submit(self, job: CellJob) -> Any:
        ref = self._task.options(num_gpus=self._gpu_share if job.gpu else 0, num_cpus=self._cpus,
                                 max_retries=0, name=f"cell:{job.slug}").remote(job)
        self._pending[ref] = job
        return ref

    def wait(self, timeout_s: float) -> list[tuple[Any, CellResult | BaseException]]:
        if not self._pending:
            return []
        done, _ = self._ray.wait(list(self._pending), num_returns=1, timeout=timeout_s)
        finished: list[tuple[Any, CellResult | BaseException]] = []
        for ref in done:
            self._pending.pop(ref)
            try:
                finished.append((ref, self._ray.get(ref)))
            except self._ray.exceptions.RayError as err:  # lost worker, node, or a bug in run_cell
                finished.append((ref, err))
        return finished


@dataclass
class Progress:
    """Counts, per-cell durations and the ETA of a campaign; one log line per event."""

    cells: Mapping[str, Cell]
    gpus: int
    cpus: int
    cpus_per_cell: int
    cells_per_gpu: int = 1
    done: dict[str, CellResult] = field(default_factory=dict)
    failed: set[str] = field(default_factory=set)
    submitted: dict[str, CellJob] = field(default_factory=dict)
    retried: int = 0

    def estimate(self, name: str) -> float | None:
        """A cell's expected duration: the mean of its family's finished cells, else of all."""
        family = [r.wall_s for n, r in self.done.items() if self.cells[n].family == self.cells[name].family]
        every = [r.wall_s for r in self.done.values()]
        return statistics.fmean(family) if family else statistics.median(every) if every else None

    def eta_s(self, now: float) -> float | None:
        """Simulated wall time left: remaining cells on this cluster's slots at measured costs."""
        todo = [n for n in self.cells if n not in self.done and n not in self.failed]
        if not self.done or not todo or self.cpus < self.cpus_per_cell:
            return None if todo else 0.0
        sim: dict[str, SimCell] = {}
        for name in todo:
            cost = self.estimate(name) or 0.0
            job = self.submitted.get(name)
            if job is not None and job.record.is_file():  # running: the part left
                with contextlib.suppress(OSError, ValueError, KeyError):
                    cost = max(cost - (now - json.loads(job.record.read_text())["start"]), 0.0)
            cell = self.cells[name]
            sim[name] = SimCell(tuple(p for p in cell.parents if p in todo),
                                cell.gpu and self.gpus > 0, cost, self.cpus_per_cell)
        return simulate(sim, self.gpus * self.cells_per_gpu, self.cpus).makespan_s

    def line(self, event: str) -> str:
        """``[done 12/60 | running 2 | queued 1 | failed 0] <event> | ETA 3m05s``."""
        running = sum(1 for job in self.submitted.values() if job.record.is_file())
        queued = len(self.submitted) - running
        eta = self.eta_s(time.time())
        shown = "?" if eta is None else f"{int(eta // 60)}m{int(eta % 60):02d}s"
        return (f"[done {len(self.done)}/{len(self.cells)} | running {running} | queued {queued} "
                f"| failed {len(self.failed)}] {event} | ETA {shown}")


def run_campaign(cells: Mapping[str, Cell], make_job: Callable[[Cell, int], CellJob],
                 executor: Executor, progress: Progress, poll_s: float = 30.0) -> dict[str, CellResult]:
    """Run every cell once its parents are done; retry a failed attempt once.

    Returns the successful results; raises :class:`DistributeError` naming the cells that failed
    twice (their descendants never ran) once nothing else can run.
    """
    waiting = {n: set(c.parents) for n, c in cells.items()}
    handles: dict[Any, CellJob] = {}

    def submit(name: str, attempt: int) -> None:
        job = make_job(cells[name], attempt)
        handles[executor.submit(job)] = job
        progress.submitted[name] = job

    for name in [n for n, parents in waiting.items() if not parents]:
        waiting.pop(name)
        submit(name, 1)
    while handles:
        finished = executor.wait(poll_s)
        if not finished:
            log.info(progress.line("waiting"))
        for handle, outcome in finished:
            job = handles.pop(handle)
            progress.submitted.pop(job.cell)
            if isinstance(outcome, CellResult) and outcome.ok:
                progress.done[job.cell] = outcome
                upstream = len(outcome.restored)
                extra = [s for s in outcome.ran if s != job.cell]
                if extra:
                    log.warning("%s: its clone also ran %s (not found in the run-cache)",
                                job.cell, ", ".join(extra))
                log.info(progress.line(f"{job.cell} done in {outcome.wall_s:.1f} s on {outcome.host} "
                                       f"(attempt {job.attempt}, {upstream} upstream restored)"))
                for name in [n for n, parents in waiting.items() if job.cell in parents]:
                    waiting[name].discard(job.cell)
                    if not waiting[name]:
                        waiting.pop(name)
                        submit(name, 1)
                continue
            why = (f"exit status {outcome.returncode}, log {outcome.log}"
                   if isinstance(outcome, CellResult) else f"{type(outcome).__name__}: "
                   f"{str(outcome).strip().splitlines()[-1] if str(outcome).strip() else ''}")
            if job.attempt <= RETRIES:
                progress.retried += 1
                log.warning(progress.line(f"{job.cell} attempt {job.attempt} failed ({why}); retrying"))
                submit(job.cell, job.attempt + 1)
            else:
                progress.failed.add(job.cell)
                log.error(progress.line(f"{job.cell} failed twice ({why})"))
    if progress.failed or waiting:
        blocked = len(waiting)
        raise DistributeError(f"{len(progress.failed)} cell(s) failed twice "
                              f"({', '.join(sorted(progress.failed)[:3])}); {blocked} downstream "
                              "cell(s) not run; logs under the work folder's logs/")
    return dict(progress.done)


def write_summary(path: Path, results: Mapping[str, CellResult], result: GatherResult) -> None:
    """The campaign's record: every successful attempt and the gather's outcome (JSON)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {"cells": {n: asdict(r) for n, r in results.items()},
            "gather": {"ran": list(result.ran), "restored": len(result.restored),
                       "status_clean": result.status_clean}}
    path.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")


@dataclass(frozen=True)
class Options:
    """How to run a campaign (the entry point's flags)."""

    address: str | None   # a running Ray cluster; None starts a local one
    gpus: int | None      # local cluster only: GPUs to offer (None: Ray detects them)
    cpus: int | None      # local cluster only: CPUs to offer (None: Ray detects them)
    cache: Path | None    # the shared DVC cache (None: the workspace's)
    work: Path            # shared scratch for clones, logs and attempt records
    cpus_per_cell: int
    hardlink_lock: bool
    keep_clones: bool
    cells_per_gpu: int = 1  # model cells sharing one GPU

    def __post_init__(self) -> None:
        if self.cells_per_gpu < 1:
            raise DistributeError(f"--cells-per-gpu {self.cells_per_gpu}: must be >= 1")


def connect(opts: Options) -> tuple[int, int]:
    """Start or join the Ray cluster; return its (GPUs, CPUs)."""
    import ray

    if opts.address and (opts.gpus is not None or opts.cpus is not None):
        raise DistributeError("--gpus/--cpus size a local cluster; a running cluster's resources "
                              "are its nodes' (ray start --num-gpus ...)")
    if opts.address:
        ray.init(address=opts.address, log_to_driver=False)
    else:
        # kill a lost worker's `dvc repro` and its stage command too (Ray's raylet as subreaper)
        os.environ.setdefault("RAY_kill_child_processes_on_worker_exit_with_raylet_subreaper", "true")
        ray.init(num_gpus=opts.gpus, num_cpus=opts.cpus, include_dashboard=False, log_to_driver=False)
    reap_children()  # exit statuses of the gather's `dvc repro` must be real
    resources = ray.cluster_resources()
    return int(resources.get("GPU", 0)), int(resources.get("CPU", 0))


def campaign(root: Path, opts: Options) -> Path:
    """Run every cell of the workspace's pipeline on Ray, gather, write and return the summary."""
    root = root.resolve()
    commit = clean_head(root)
    cache = workspace_cache(root)
    if opts.cache is not None and opts.cache.resolve() != cache:
        raise DistributeError(f"the workspace's DVC cache is {cache}, not {opts.cache}: run "
                              f"`dvc cache dir --local {opts.cache}` first (the gather restores from it)")
    every = read_cells(root)
    # a stage without a run-cache entry that no other stage needs (the report) runs in the gather
    needed = {p for c in every.values() for p in c.parents}
    cells = {n: c for n, c in every.items() if c.restorable or n in needed}
    if len(cells) < len(every):
        log.info("left to the gather (no run-cache): %s", ", ".join(sorted(set(every) - set(cells))))
    work = opts.work.resolve() / time.strftime("%Y%m%d-%H%M%S")
    work.mkdir(parents=True, exist_ok=False)
    gpus, cpus = connect(opts)
    try:
        results = _run_cells(root, commit, cache, cells, work, opts, gpus, cpus)
    finally:
        import ray

        ray.shutdown()  # a local cluster stops here; a running one is only disconnected from
    if not opts.keep_clones and (work / "clones").is_dir():
        shutil.rmtree(work / "clones")  # failed attempts' clones (ours; their cells succeeded)
    if clean_head(root) != commit:
        raise DistributeError(f"HEAD moved during the campaign (was {commit[:10]}); not gathering")
    apply_ignores(work / "gitignore", root)  # the .gitignore lines of every clone, same order
    outcome = gather(root, {n for n, c in cells.items() if c.training}, work / "gather.log")
    if outcome.ran:
        log.warning("the gather ran %s (restored %d)", ", ".join(outcome.ran), len(outcome.restored))
    summary = work / "summary.json"
    write_summary(summary, results, outcome)
    if not outcome.status_clean:
        raise DistributeError(f"gather: dvc status is not clean after dvc repro; see {summary}")
    log.info("gathered: %d stages restored from the run-cache, %d ran, dvc status clean; "
             "summary %s", len(outcome.restored), len(outcome.ran), summary)
    return summary


def _run_cells(root: Path, commit: str, cache: Path, cells: Mapping[str, Cell], work: Path,
               opts: Options, gpus: int, cpus: int) -> dict[str, CellResult]:
    if cpus < opts.cpus_per_cell:
        raise DistributeError(f"--cpus-per-cell {opts.cpus_per_cell}: the cluster has {cpus} CPU(s)")
    n_gpu = sum(c.gpu for c in cells.values())
    log.info("%d cells (%d on a GPU%s) of %s at %s on %d GPU(s), %d CPU(s); work folder %s",
             len(cells), n_gpu, "" if gpus else ": none here, run on CPUs", root, commit[:10],
             gpus, cpus, work)
    ckpt = checkpoint_root(cells.values())
    canonical_ignores(str(root), commit, work / "gitignore")

    def make_job(cell: Cell, attempt: int) -> CellJob:
        return CellJob(cell.name, cell.gpu and gpus > 0, attempt, str(root), commit, str(cache),
                       str(work), ckpt, str(work / "gitignore"), opts.cpus_per_cell,
                       opts.hardlink_lock, opts.keep_clones)

    progress = Progress(cells, gpus, cpus, opts.cpus_per_cell, opts.cells_per_gpu)
    start = time.time()
    results = run_campaign(cells, make_job, RayExecutor(opts.cpus_per_cell, opts.cells_per_gpu),
                           progress)
    log.info("all %d cells done in %.1f s (%d retried); gathering with dvc repro", len(results),
             time.time() - start, progress.retried)
    return results
