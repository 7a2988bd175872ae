"""The cross-study summary: verdicts from the runs' own intervals, methods paired with the random
control at their ratio, the plot only where a corpus has a severity axis, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stages.lib.studies import harm_verdict, parse_run, summarise, verdict, write_summary
from stages.tools import summarise as tool

KEY = "museval_sdr_db_avg"


def _margin(mean: float, half: float) -> dict:
    return {"mean": mean, "ci95_low": mean - half, "ci95_high": mean + half, "n": 3, "std": 0.1}


def _run(folder: Path, gain: float, auroc: float, harm: float = 1.0) -> Path:
    """A results folder like metrics/: one set, methods fad (r=0.5) and unlearn (r=0.5, auto)."""
    conditions = {c: {KEY: {"mean": v, "std": 0.1, "n": 3}} for c, v in (
        ("contaminated", 3.0), ("clean_only", 3.0 + harm), ("random_r0.5", 3.0),
        ("fad_r0.5", 3.0 + gain), ("unlearn_r0.5", 3.0), ("unlearn_rauto", 3.1))}
    margins = {f"clean_only_minus_contaminated_{KEY}": _margin(harm, 0.5),
               f"fad_r0.5_minus_contaminated_{KEY}": _margin(gain, 0.5),
               f"fad_r0.5_minus_random_r0.5_{KEY}": _margin(gain, 0.5),
               f"unlearn_r0.5_minus_random_r0.5_{KEY}": _margin(0.0, 0.5)}
    folder.mkdir(parents=True)
    (folder / "mixed23.json").write_text(json.dumps({"conditions": conditions, "margins": margins}))
    (folder / "detection").mkdir()
    unified = {"unified": {"any": {"auroc": auroc}}}
    (folder / "detection" / "mixed23.json").write_text(json.dumps(
        {"fad": unified, "unlearn/mean": unified, "loss/mean": unified}))
    return folder


def test_verdicts_follow_the_interval() -> None:
    assert verdict(_margin(1.0, 0.5)) == "helps"
    assert verdict(_margin(-1.0, 0.5)) == "hurts"
    assert verdict(_margin(0.2, 0.5)) == "within noise"
    assert verdict(None) == "—"
    assert harm_verdict(_margin(1.0, 0.5)) == "hurts"
    assert harm_verdict(_margin(0.1, 0.5)) == "no measurable harm"


def test_summary_pairs_each_method_with_random_removal_at_its_ratio(tmp_path: Path) -> None:
    run = parse_run(f"bach/severe={_run(tmp_path / 'a', gain=1.0, auroc=0.9)}")
    (row,) = summarise([run])
    by = {(m["method"], m["ratio"]): m for m in row["methods"]}
    assert set(by) == {("fad", "0.5"), ("unlearn", "0.5"), ("unlearn", "auto")}  # no random_*
    assert by[("fad", "0.5")]["verdict"] == "helps"
    assert by[("unlearn", "0.5")]["verdict"] == "within noise"
    assert by[("unlearn", "auto")]["versus_random"] is None  # no random control at auto
    assert by[("fad", "0.5")]["auroc"] == 0.9 and by[("unlearn", "0.5")]["auroc"] == 0.9
    assert row["detection_only"] == {"loss": 0.9} and row["harm_verdict"] == "hurts"


def test_write_summary_plots_a_severity_axis_only(tmp_path: Path) -> None:
    runs = [parse_run(f"bach/{level}={_run(tmp_path / level, gain, auroc, harm)}")
            for level, gain, auroc, harm in (("severe", 1.0, 0.95, 1.0), ("mild", 0.1, 0.6, 0.1))]
    out = tmp_path / "out"
    out.mkdir()
    rows = write_summary(out, runs)
    assert [r["severity"] for r in rows] == ["severe", "mild"]
    text = (out / "summary.md").read_text()
    assert "**mixed23, bach, mild**" in text and "no measurable harm" in text
    assert "beat random removal: fad r=0.5" in text
    assert (out / "severity.png").stat().st_size > 10_000
    alone = tmp_path / "alone"
    alone.mkdir()
    write_summary(alone, runs[:1])
    assert not (alone / "severity.png").exists()


@pytest.mark.parametrize("spec", ["bach=metrics", "bach/severe", "/severe=x"])
def test_malformed_run_is_one_line(spec: str, tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match=r"error: summarise: --run .*corpus/severity=folder"):
        tool.main(["--run", spec, "--out", str(tmp_path / "out")])
    assert not (tmp_path / "out").exists()


def test_run_without_results_names_the_folder(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match=r"error: summarise: --run .*holds no mixed23 or effectsdb"):
        tool.main(["--run", f"bach/severe={tmp_path}", "--out", str(tmp_path / "out")])


def test_output_inside_a_run_is_refused(tmp_path: Path) -> None:
    run = _run(tmp_path / "a", gain=1.0, auroc=0.9)
    with pytest.raises(SystemExit, match=r"error: summarise: .*detection"):
        tool.main(["--run", f"bach/severe={run}", "--out", str(run / "detection" / "summary")])
    tool.main(["--run", f"bach/severe={run}", "--out", str(run / "summary")])  # beside: fine
    assert (run / "summary" / "summary.md").is_file()
