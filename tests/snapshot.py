"""The working tree as a fresh repository's files: what tests and benchmarks run the pipeline in."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def copy_worktree(dest: Path) -> Path:
    """Copy this working tree's tracked and untracked (not ignored) files to ``dest``, without
    the pipeline's results (data/, metrics/, dvc.lock)."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT,
                           capture_output=True, text=True, check=True).stdout.splitlines()
    for rel in files:
        if (ROOT / rel).is_file() and not rel.startswith(("data/", "metrics/")) and rel != "dvc.lock":
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / rel, dest / rel)
    return dest
