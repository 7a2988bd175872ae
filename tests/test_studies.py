"""The cross-study summary: verdicts from the runs' own intervals, methods paired with the random
control at their ratio, the plot only where a corpus has a severity axis, one-line errors."""

from __future__ import annotations

import json
import re
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
    assert "fad r=0.5 +1.00 [+0.50, +1.50] over contaminated (helps)" in text
    assert "+0.10 [-0.40, +0.60] over random removal (within noise)" in text
    assert (out / "severity.png").stat().st_size > 10_000
    alone = tmp_path / "alone"
    alone.mkdir()
    write_summary(alone, runs[:1])
    assert not (alone / "severity.png").exists()
    # another setting of the same corpus (a share of corrupted songs) is tabulated, not plotted
    share = parse_run(f"bach/20%-corrupted={_run(tmp_path / 'share', 0.5, 0.9)}")
    other = tmp_path / "other"
    other.mkdir()
    write_summary(other, [runs[0], share])
    assert "| bach | 20%-corrupted | +1.00 [+0.50, +1.50] | fad r=0.5 |" in (
        other / "summary.md").read_text()
    assert not (other / "severity.png").exists()


def test_a_run_can_name_the_sets_its_label_describes(tmp_path: Path) -> None:
    folder = _run(tmp_path / "a", gain=1.0, auroc=0.9)
    (folder / "effectsdb.json").write_text((folder / "mixed23.json").read_text())
    both = summarise([parse_run(f"bach/severe={folder}")])
    only = parse_run(f"bach/minimal={folder}#effectsdb")
    assert [r["set"] for r in both] == ["mixed23", "effectsdb"]
    assert [r["set"] for r in summarise([only])] == ["effectsdb"]
    assert only.spec == f"bach/minimal={folder.as_posix()}#effectsdb"
    out = tmp_path / "out"
    out.mkdir()
    write_summary(out, [only])
    assert "(effectsdb only)" in (out / "summary.md").read_text()
    with pytest.raises(ValueError, match="unknown set"):
        parse_run(f"bach/minimal={folder}#musdb")


@pytest.mark.parametrize("spec", ["bach=metrics", "bach/severe", "/severe=x"])
def test_malformed_run_is_one_line(spec: str, tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match=r"error: summarise: --run .*corpus/setting=folder"):
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


def test_the_committed_summary_is_what_the_committed_results_give(tmp_path: Path) -> None:
    """metrics/studies/summary/ is regenerated by .ci/summary from committed results: after a
    new default run or study, a stale summary fails here instead of drifting."""
    root = Path(__file__).resolve().parents[1]
    folder = root / "metrics/studies/summary"
    committed = json.loads((folder / "summary.json").read_text())
    script = re.findall(r"--run (\S+)", (root / ".ci/summary").read_text())
    assert committed["runs"] == script  # the runs .ci/summary names, in its order
    runs = [parse_run(f"{label}={root / path}") for label, path in
            (spec.split("=", 1) for spec in script)]
    assert json.loads(json.dumps(summarise(runs))) == committed["rows"]
    out = tmp_path / "summary"
    out.mkdir()
    write_summary(out, runs)
    relative = (out / "summary.md").read_text().replace(f"{root}/", "")
    assert relative == (folder / "summary.md").read_text()


def test_per_target_conditions_keep_their_method_s_detection(tmp_path: Path) -> None:
    folder = _run(tmp_path / "a", gain=1.0, auroc=0.9)
    data = json.loads((folder / "mixed23.json").read_text())
    data["conditions"]["fad_per_target_r0.5"] = data["conditions"]["fad_r0.5"]
    data["margins"][f"fad_per_target_r0.5_minus_random_r0.5_{KEY}"] = {"mean": 0.3}  # one draw
    (folder / "mixed23.json").write_text(json.dumps(data))
    (row,) = summarise([parse_run(f"bach/severe={folder}")])
    per_target = next(m for m in row["methods"] if m["method"] == "fad (per_target)")
    assert per_target["auroc"] == 0.9 and per_target["verdict"] == "—"
    out = tmp_path / "out"
    out.mkdir()
    write_summary(out, [parse_run(f"bach/severe={folder}")])  # no interval: no crash
    assert "+0.30 [no interval]" in (out / "summary.md").read_text()
