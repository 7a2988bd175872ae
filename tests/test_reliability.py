"""Crash safety: a stage killed with SIGKILL leaves no output that DVC could cache as valid."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import write_params

from stages.lib.io import MARKER, atomic_path, mark
from stages.lib.params import TARGETS

ROOT = Path(__file__).resolve().parents[1]


def test_atomic_path_cleans_up_on_error(tmp_path: Path) -> None:
    final = tmp_path / "out.json"
    with pytest.raises(RuntimeError), atomic_path(final) as tmp:
        tmp.write_text("half")
        raise RuntimeError("crash")
    assert list(tmp_path.iterdir()) == []


def test_atomic_path_replaces_old_output_and_sweeps_stale_temps(tmp_path: Path) -> None:
    final = tmp_path / "out"
    final.mkdir()
    (final / "old.txt").write_text("old")
    mark(final)  # an earlier output of this project
    (tmp_path / ".out.abc123.tmp").mkdir()  # as left by a SIGKILLed run
    with atomic_path(final) as tmp:
        tmp.mkdir()
        (tmp / "new.txt").write_text("new")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    assert sorted(p.name for p in final.iterdir()) == [MARKER, "new.txt"]


@pytest.mark.slow
def test_sigkill_mid_render_leaves_no_output(tmp_path: Path) -> None:
    params = tmp_path / "params.yaml"
    write_params(params, {
        "base": {"seeds": [0], "sample_rate": 22050, "targets": list(TARGETS)},
        "render": {"n_train": 30, "n_reference": 1, "n_test": 1, "excerpt_seconds": 4.0}})
    out = tmp_path / "rendered"
    proc = subprocess.Popen([sys.executable, "-m", "stages.render", "--params", str(params),
                             "--out", str(out), "--quiet"], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while time.time() < deadline and not list(tmp_path.glob(".rendered.*.tmp/rendered/train/*")):
        time.sleep(0.1)  # wait until it is mid-way: some songs written into its temp folder
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not out.exists(), "a killed stage must not leave its output in place"
