"""The regression gate's logic: compare aggregate SDR metrics with a baseline's."""

from __future__ import annotations

import json
import math
import subprocess
from dataclasses import dataclass
from pathlib import Path

from .params import check


@dataclass(frozen=True)
class CheckParams:
    """``check_metrics`` section: a drop fails when it exceeds
    ``max(tolerance_db, noise_sigmas * std * sqrt(2 / n))`` of the baseline's condition — the
    spread of the difference of two n-seed means if a change re-draws the training noise."""

    tolerance_db: float
    noise_sigmas: float
    suffix: str

    def __post_init__(self) -> None:
        check(0 <= self.tolerance_db <= 100, "check_metrics.tolerance_db", "must be in [0, 100]")
        check(0 <= self.noise_sigmas <= 10, "check_metrics.noise_sigmas", "must be in [0, 10]")


def allowed_drop(stats: dict, params: CheckParams) -> float:
    """The tolerance of one condition from its baseline ``{mean, std, n}``."""
    std, n = stats.get("std") or 0.0, stats.get("n") or 1
    noise = params.noise_sigmas * std * math.sqrt(2.0 / n) if n > 1 else 0.0
    return max(params.tolerance_db, noise)


def metrics_at(rev: str, path: Path) -> dict:
    """The JSON file ``path`` as committed at git revision ``rev``."""
    try:
        text = subprocess.run(["git", "show", f"{rev}:{path.as_posix()}"], check=True,
                              capture_output=True, text=True).stdout
    except subprocess.CalledProcessError as err:
        raise ValueError(f"{rev}:{path}: not in git ({err.stderr.strip()})") from None
    return json.loads(text)


def revision_exists(rev: str) -> bool:
    """Whether ``rev`` names a commit of the repository."""
    return subprocess.run(["git", "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"],
                          capture_output=True).returncode == 0


def compare(old: dict, new: dict, params: CheckParams) -> tuple[list[tuple], bool]:
    """Rows ``(condition, key, old, new, change, allowed, status)`` and whether anything
    regressed."""
    rows, failed = [], False
    for cond in sorted(set(old.get("conditions", {})) & set(new.get("conditions", {}))):
        for key in sorted(new["conditions"][cond]):
            if not key.endswith(params.suffix):
                continue
            base = old["conditions"][cond].get(key, {})
            a, b = base.get("mean"), new["conditions"][cond][key].get("mean")
            if a is None or b is None:
                continue
            change, allowed = b - a, allowed_drop(base, params)
            bad = change < -allowed
            failed |= bad
            rows.append((cond, key, a, b, change, allowed, "REGRESSION" if bad else "ok"))
    return rows, failed
