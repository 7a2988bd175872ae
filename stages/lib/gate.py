"""The regression gate's logic: compare aggregate SDR metrics with a baseline's."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

from .params import check


@dataclass(frozen=True)
class CheckParams:
    """``check_metrics`` section."""

    tolerance_db: float
    suffix: str

    def __post_init__(self) -> None:
        check(self.tolerance_db >= 0, "check_metrics.tolerance_db", "must be >= 0")


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
    """Rows ``(condition, key, old, new, change, status)`` and whether anything regressed."""
    rows, failed = [], False
    for cond in sorted(set(old.get("conditions", {})) & set(new.get("conditions", {}))):
        for key in sorted(new["conditions"][cond]):
            if not key.endswith(params.suffix):
                continue
            a = old["conditions"][cond].get(key, {}).get("mean")
            b = new["conditions"][cond][key].get("mean")
            if a is None or b is None:
                continue
            change = b - a
            bad = change < -params.tolerance_db
            failed |= bad
            rows.append((cond, key, a, b, change, "REGRESSION" if bad else "ok"))
    return rows, failed
