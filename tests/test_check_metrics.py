"""The regression gate compares against a committed revision and fails on drops."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml

from stages import check_metrics


def _metrics(avg: float) -> dict:
    return {"conditions": {"contaminated": {"museval_sdr_db_avg": {"mean": avg, "std": 0, "n": 3},
                                            "museval_sdr_db_vocals": {"mean": 0.0}}}}


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t"}
    subprocess.run(["git", "init", "-q"], check=True)
    (tmp_path / "metrics").mkdir()
    (tmp_path / "metrics" / "mixed23.json").write_text(json.dumps(_metrics(4.0)))
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"check_metrics": {"tolerance_db": 0.3}}))
    subprocess.run(["git", "add", "."], check=True, env=env)
    subprocess.run(["git", "commit", "-qm", "base"], check=True, env=env)
    return tmp_path


@pytest.mark.parametrize(("avg", "status"), [(3.8, 0), (4.5, 0), (3.5, 1)])
def test_gate(repo: Path, avg: float, status: int, capsys: pytest.CaptureFixture) -> None:
    (repo / "metrics" / "mixed23.json").write_text(json.dumps(_metrics(avg)))
    with pytest.raises(SystemExit) as exit_info:
        check_metrics.main(["--against", "HEAD"])
    assert exit_info.value.code == status
    out = capsys.readouterr().out
    assert "| contaminated | museval_sdr_db_avg | 4.000 |" in out
    assert ("REGRESSION" in out) == bool(status)


def test_unknown_revision(repo: Path) -> None:
    with pytest.raises(SystemExit, match="not in git"):
        check_metrics.main(["--against", "nonexistent-rev"])
