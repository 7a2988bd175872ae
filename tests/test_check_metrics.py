"""The regression gate compares against a committed revision and fails on drops."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from conftest import write_params

from stages.tools import check_metrics


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
    for name in ("mixed23", "effectsdb"):
        (tmp_path / "metrics" / f"{name}.json").write_text(json.dumps(_metrics(4.0)))
    write_params((tmp_path / "params.yaml"), {"check_metrics": {"tolerance_db": 0.3}})
    subprocess.run(["git", "add", "."], check=True, env=env)
    subprocess.run(["git", "commit", "-qm", "base"], check=True, env=env)
    return tmp_path


@pytest.mark.parametrize("name", ["mixed23", "effectsdb"])
@pytest.mark.parametrize(("avg", "status"), [(3.8, 0), (4.5, 0), (3.5, 1)])
def test_gate(repo: Path, name: str, avg: float, status: int,
              capsys: pytest.CaptureFixture) -> None:
    (repo / "metrics" / f"{name}.json").write_text(json.dumps(_metrics(avg)))
    with pytest.raises(SystemExit) as exit_info:
        check_metrics.main(["--against", "HEAD"])
    assert exit_info.value.code == status
    out = capsys.readouterr().out
    assert f"| {name} | contaminated | museval_sdr_db_avg | 4.000 |" in out
    assert ("REGRESSION" in out) == bool(status)


def test_gate_against_a_baseline_folder(repo: Path, capsys: pytest.CaptureFixture) -> None:
    baseline = repo / "baseline"
    baseline.mkdir()
    (baseline / "effectsdb.json").write_text(json.dumps(_metrics(5.0)))
    with pytest.raises(SystemExit) as exit_info:
        check_metrics.main(["--baseline", str(baseline), "--file", "metrics/effectsdb.json"])
    assert exit_info.value.code == 1
    assert "| effectsdb | contaminated | museval_sdr_db_avg | 5.000 | 4.000 | -1.000 | 0.300 | REGRESSION |" \
        in capsys.readouterr().out


def test_unknown_revision(repo: Path) -> None:
    with pytest.raises(SystemExit, match="not in git"):
        check_metrics.main(["--against", "nonexistent-rev"])


def test_a_set_missing_at_the_revision_is_new_not_an_error(repo: Path,
                                                           capsys: pytest.CaptureFixture) -> None:
    (repo / "metrics" / "extra.json").write_text(json.dumps(_metrics(1.0)))
    with pytest.raises(SystemExit) as exit_info:
        check_metrics.main(["--against", "HEAD", "--file", "metrics/mixed23.json", "--file",
                            "metrics/extra.json"])
    assert exit_info.value.code == 0
    assert "| extra | (all) | — | not in HEAD | — | — | — | new |" in capsys.readouterr().out


@pytest.mark.parametrize(("new", "failed"), [(3.6, False), (3.4, True)])
def test_the_allowed_drop_grows_with_the_seed_noise(new: float, failed: bool) -> None:
    from conftest import params_of

    from stages.lib.gate import CheckParams, compare

    params = params_of(CheckParams, "check_metrics", tolerance_db=0.15, noise_sigmas=2.0)
    old = {"conditions": {"c": {"museval_sdr_db_avg": {"mean": 4.0, "std": 0.3, "n": 3}}}}
    rows, bad = compare(old, {"conditions": {"c": {"museval_sdr_db_avg": {"mean": new}}}}, params)
    assert rows[0][5] == pytest.approx(2 * 0.3 * (2 / 3) ** 0.5)  # 0.49 dB allowed
    assert bad is failed
