"""Score tables: one row per training song, a score per target and a unified score.

Every cleaning method (unlearning, FAD, MLP) writes this same CSV, so filtering and the report
treat them alike. Convention: a *higher* score means *keep*; the ranks count from 1 = best.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.stats import rankdata

from .io import atomic_path, dumps_json
from .params import TARGETS


def zscore(values: np.ndarray, axis: int = 0) -> np.ndarray:
    """``(v − mean) / std`` along ``axis`` (float64); a constant slice becomes zeros."""
    values = np.asarray(values, dtype=np.float64)
    std = values.std(axis=axis, keepdims=True)
    return (values - values.mean(axis=axis, keepdims=True)) / np.where(std > 0, std, 1.0)


@dataclass
class ScoreTable:
    """Per-song scores: ``per_target[t][i]`` and ``unified[i]`` for ``songs[i]``."""

    songs: list[str]
    per_target: dict[str, np.ndarray]
    unified: np.ndarray

    def ranks(self, column: str = "unified") -> np.ndarray:
        """1 = highest score; ties get the lowest (best) rank of their group, deterministically."""
        values = self.unified if column == "unified" else self.per_target[column]
        return rankdata(-values, method="min").astype(int)

    def to_csv(self) -> str:
        """CSV text with a fixed column order and 10 significant digits."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["song", *(f"score_{t}" for t in TARGETS), "score_unified", "rank"])
        ranks = self.ranks()
        for i, song in enumerate(self.songs):
            writer.writerow([song, *(_fmt(self.per_target[t][i]) for t in TARGETS),
                             _fmt(self.unified[i]), int(ranks[i])])
        return out.getvalue()

    def write(self, path: str | Path) -> None:
        """Write the CSV atomically."""
        with atomic_path(path) as tmp:
            tmp.write_text(self.to_csv())

    @classmethod
    def read(cls, path: str | Path) -> ScoreTable:
        """Read a score CSV; missing columns or non-numeric scores name the file."""
        path = Path(path)
        try:
            rows = list(csv.DictReader(path.read_text().splitlines()))
        except FileNotFoundError:
            raise FileNotFoundError(f"{path}: score table not found") from None
        needed = {"song", "score_unified", *(f"score_{t}" for t in TARGETS)}
        if not rows or not needed <= set(rows[0]):
            raise ValueError(f"{path}: a score table needs the columns {sorted(needed)}")
        try:
            per_target = {t: np.array([float(r[f"score_{t}"]) for r in rows]) for t in TARGETS}
            unified = np.array([float(r["score_unified"]) for r in rows])
        except ValueError as err:
            raise ValueError(f"{path}: non-numeric score ({err})") from err
        if not np.isfinite(unified).all():
            raise ValueError(f"{path}: NaN or infinite unified score")
        return cls([r["song"] for r in rows], per_target, unified)


def write_score_folder(out: Path, table: ScoreTable, meta: dict,
                       delta: dict | None = None) -> None:
    """A scoring stage's output folder, atomically: ``scores.csv``, ``sidecar.json`` (``meta``)
    and, for attribution, ``delta.json`` (the N × M ΔL matrices and the names of their rows and
    columns)."""
    with atomic_path(out) as tmp:
        tmp.mkdir()
        if delta is not None:
            (tmp / "delta.json").write_text(dumps_json(delta))
        table.write(tmp / "scores.csv")
        (tmp / "sidecar.json").write_text(dumps_json(meta))


def _fmt(value: float) -> str:
    return "nan" if math.isnan(value) else f"{value:.10g}"


def method_tables(folder: Path, seeds: tuple[int, ...]) -> dict[str, Path]:
    """Score tables of one method folder: its own ``scores.csv``, or one per ``seed<k>`` of
    ``seeds`` (``{"seed0": path, ...}``). Folders of seeds outside ``seeds`` (left by an earlier
    configuration) are ignored; a wanted seed without a table is an error naming it."""
    folder = Path(folder)
    if (folder / "scores.csv").is_file():
        return {"": folder / "scores.csv"}
    tables = {f"seed{k}": folder / f"seed{k}" / "scores.csv" for k in seeds}
    missing = [str(p) for p in tables.values() if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"{missing[0]}: score table not found")
    return tables


def read_method_tables(root: Path, seeds: tuple[int, ...]) -> dict[str, dict[str, ScoreTable]]:
    """Every method folder under ``root``: ``{method: {"seed0": table, ...}}`` (``{"": table}``
    for a method with a single table), restricted to ``seeds`` as :func:`method_tables` is."""
    folders = sorted(p for p in Path(root).iterdir() if p.is_dir())
    return {f.name: {sub: ScoreTable.read(path) for sub, path in method_tables(f, seeds).items()}
            for f in folders}
