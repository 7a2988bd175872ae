"""Wall time of a DAG of cells on a pool of GPUs and CPUs: list scheduling and the critical path.

The model is the distributed runner's (stages/lib/distribute.py): a cell starts once its parents
are done and its resources are free (a GPU cell holds one GPU and ``cpus`` CPUs, a CPU cell
``cpus`` CPUs); ready cells are taken in the order they became ready, and a later one that fits
starts before an earlier one that does not (Ray's queueing, with backfill). Transfers and
start-up are part of each cell's cost. Two bounds frame every answer: no schedule beats the
critical path (the longest chain of costs) nor the total work divided among the slots.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class SimCell:
    """A cell to place: its parents (names), whether it needs a GPU, its cost in seconds."""

    parents: tuple[str, ...]
    gpu: bool
    cost_s: float
    cpus: int = 1


@dataclass(frozen=True)
class Simulation:
    """A simulated campaign: its wall time and the two bounds on it (all in seconds)."""

    makespan_s: float
    total_work_s: float
    gpu_work_s: float
    critical_path_s: float
    critical_path: tuple[str, ...]

    @property
    def speedup(self) -> float:
        """Total work over wall time (1.0 = serial)."""
        return self.total_work_s / self.makespan_s if self.makespan_s else 1.0


def _order(cells: Mapping[str, SimCell]) -> list[str]:
    """Cells in an order where every parent comes before its children (input order kept)."""
    missing = {p for c in cells.values() for p in c.parents if p not in cells}
    if missing:
        raise ValueError(f"parents not in the graph: {sorted(missing)[:3]}")
    done: set[str] = set()
    order: list[str] = []
    todo = list(cells)
    while todo:
        rest = [n for n in todo if not set(cells[n].parents) <= done]
        ready = [n for n in todo if set(cells[n].parents) <= done]
        if not ready:
            raise ValueError(f"the graph has a cycle through {rest[:3]}")
        order.extend(ready)
        done.update(ready)
        todo = rest
    return order


def critical_path(cells: Mapping[str, SimCell]) -> tuple[float, tuple[str, ...]]:
    """Length (s) and cells of the longest chain of costs."""
    finish: dict[str, float] = {}
    via: dict[str, str | None] = {}
    for name in _order(cells):
        cell = cells[name]
        parent = max(cell.parents, key=lambda p: finish[p], default=None)
        finish[name] = cell.cost_s + (finish[parent] if parent else 0.0)
        via[name] = parent
    if not finish:
        return 0.0, ()
    node: str | None = max(finish, key=lambda n: finish[n])
    length = finish[node]
    path: list[str] = []
    while node is not None:
        path.append(node)
        node = via[node]
    return length, tuple(reversed(path))


def simulate(cells: Mapping[str, SimCell], gpus: int, cpus: int) -> Simulation:
    """Place every cell on ``gpus`` GPUs and ``cpus`` CPUs; return the wall time and bounds."""
    for name, cell in cells.items():
        if cell.cpus > cpus or (cell.gpu and gpus < 1):
            raise ValueError(f"{name}: needs {'a GPU and ' if cell.gpu else ''}{cell.cpus} CPU(s); "
                             f"the pool has {gpus} GPU(s) and {cpus} CPU(s)")
    order = {n: i for i, n in enumerate(_order(cells))}
    waiting = {n: len(c.parents) for n, c in cells.items()}
    children: dict[str, list[str]] = {n: [] for n in cells}
    for name, cell in cells.items():
        for parent in cell.parents:
            children[parent].append(name)
    ready = sorted((n for n, k in waiting.items() if k == 0), key=order.__getitem__)
    running: list[tuple[float, int, str]] = []
    free_gpus, free_cpus, now = gpus, cpus, 0.0
    while ready or running:
        still: list[str] = []
        for name in ready:
            cell = cells[name]
            if cell.cpus <= free_cpus and (not cell.gpu or free_gpus > 0):
                free_cpus -= cell.cpus
                free_gpus -= cell.gpu
                heapq.heappush(running, (now + cell.cost_s, order[name], name))
            else:
                still.append(name)
        ready = still
        now, _, name = heapq.heappop(running)
        free_cpus += cells[name].cpus
        free_gpus += cells[name].gpu
        for child in children[name]:
            waiting[child] -= 1
            if waiting[child] == 0:
                ready.append(child)
    length, path = critical_path(cells)
    return Simulation(makespan_s=now, total_work_s=sum(c.cost_s for c in cells.values()),
                      gpu_work_s=sum(c.cost_s for c in cells.values() if c.gpu),
                      critical_path_s=length, critical_path=path)
