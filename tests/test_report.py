"""The report stage renders the tables from metrics files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import params_of, write_params

from stages import report
from stages.lib import tables
from stages.lib.params import TARGETS


def test_report_tables(tmp_path: Path) -> None:
    stats = {"mean": 4.0, "std": 0.1, "n": 2}
    mixed = {"conditions": {c: {f"museval_sdr_db_{k}": stats for k in (*TARGETS, "avg")}
                            for c in ("contaminated", "clean_only", "fad_r0.5")},
             "gap_closed": {"fad_r0.5": {"museval_sdr_db_avg": {"mean": 0.5, "std": 0.1, "n": 2}}},
             "composition": {"fad_r0.5": {"pct_clean_kept": 87.5}}}
    (tmp_path / "m.json").write_text(json.dumps(mixed))
    edb = {"conditions": {"contaminated": {f"museval_sdr_db_{k}": {"mean": 2.0, "std": 0.0, "n": 1}
                                           for k in (*TARGETS, "avg")}}}
    (tmp_path / "e.json").write_text(json.dumps(edb))
    (tmp_path / "det").mkdir()
    kinds = {"any": {"auroc": 0.9}, "bleeding": {"auroc": 1.0}}
    (tmp_path / "det" / "mixed23.json").write_text(json.dumps(
        {"fad": {"unified": kinds, **{t: kinds for t in TARGETS}}}))
    (tmp_path / "cost" / "train").mkdir(parents=True)
    (tmp_path / "cost" / "train" / "a.json").write_text(json.dumps({"wall_s": 10.0}))
    params = tmp_path / "params.yaml"
    write_params(params, {"base": {"seeds": [0]}})
    report.main(["--params", str(params), "--mixed23", str(tmp_path / "m.json"), "--effectsdb",
                 str(tmp_path / "e.json"), "--detection", str(tmp_path / "det"), "--cost",
                 str(tmp_path / "cost"), "--out", str(tmp_path / "r.md")])
    text = (tmp_path / "r.md").read_text()
    assert "| fad_r0.5 | 4.00 ± 0.10" in text and "| 88% | 0.50 ± 0.10 |" in text
    assert "| contaminated | 2.00 ± 0.00 | 2.00 ± 0.00 | 2.00 ± 0.00 | 2.00 ± 0.00 | **2.00 ± 0.00** " \
        "| 50% of set | — | 1 | 4.25 |" in text
    assert "| mixed23 | fad | 0.900 | bleeding 1.00 |" in text
    assert "| train | 1 | 10 | 10.0 |" in text


def test_sdr_vs_ratio_rows_place_auto_at_its_chosen_ratio() -> None:
    def stats(mean: float) -> dict:
        return {"museval_sdr_db_avg": {"mean": mean, "std": 0.1, "n": 3}}

    data = {"conditions": {"contaminated": stats(3.0), "fad_r0.5": stats(4.0),
                           "fad_rauto": stats(4.2)},
            "composition": {"fad_rauto": {"ratio_retained": 0.44}}}
    assert tables.sdr_vs_ratio_rows(data) == [
        ["fad", 0.5, 4.0, 0.1], ["fad", 1.0, 3.0, 0.1],
        ["fad (auto)", 0.44, 4.2, 0.1], ["fad (auto)", 1.0, 3.0, 0.1]]


def test_cost_table_skips_cells_outside_the_current_grid(tmp_path: Path) -> None:
    from stages.lib.cleaning import CleaningParams

    for rel in ("retrain/mixed23/unified/fad_r0.5/seed0.json",
                "retrain/mixed23/unified/fad_r0.9/seed0.json",
                "retrain/mixed23/per_target/fad_r0.5/seed0.json",  # a mode not in the grid
                "retrain/mixed23/unified/fad_r0.5/seed7.json", "train/mixed23/contaminated/seed0.json",
                "render.json", "retrain/mixed23/random_r0.5/seed3.json",  # draw 3: counted
                "retrain/mixed23/random_r0.5/seed9.json", "retrain/mixed23/random_r0.9/seed0.json"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(json.dumps({"wall_s": 10.0}))
    lines = tables.cost_table(tmp_path, (0,), params_of(CleaningParams, "cleaning",
        methods=("fad",), ratios=(0.5,), random_ratios=(0.5,), random_draws=(0, 3)))
    assert "| retrain | 2 | 20 | 10.0 |" in lines and "| train | 1 | 10 | 10.0 |" in lines
    assert "| render | 1 | 10 | 10.0 |" in lines


def test_auto_vs_grid_table_compares_with_the_best_fixed_ratio(tmp_path: Path) -> None:
    def stats(mean: float, std: float = 0.2) -> dict:
        return {"museval_sdr_db_avg": {"mean": mean, "std": std, "n": 3}}

    data = {"conditions": {"contaminated": stats(3.0), "fad_r0.5": stats(4.0),
                           "fad_r0.75": stats(4.5), "fad_rauto": stats(4.35),
                           "mlp_r0.5": stats(4.0), "mlp_rauto": stats(3.7),
                           "unlearn_rauto": stats(4.0)},  # no grid: no row
            "composition": {"fad_rauto": {"ratio_retained": 0.44},
                            "mlp_rauto": {"ratio_retained": 0.6}}}
    for cond, wall in (("fad_r0.5", 100.0), ("fad_r0.75", 110.0), ("fad_rauto", 90.0)):
        (tmp_path / "retrain" / "m" / "unified" / cond).mkdir(parents=True)
        (tmp_path / "retrain" / "m" / "unified" / cond / "seed0.json").write_text(
            json.dumps({"wall_s": wall}))
    lines = tables.auto_vs_grid_table({"m": data}, tmp_path, (0,))
    assert lines[2] == ("| m | fad | 0.5, 0.75 | 0.75 | 4.50 ± 0.20 | 0.44 | 4.35 ± 0.20 | yes "
                        "| 2, 210 s | 1, 90 s |")
    assert lines[3] == ("| m | mlp | 0.5 | 0.5 | 4.00 ± 0.20 | 0.60 | 3.70 ± 0.20 | **no** "
                        "| 1, — | 1, — |")
    assert len(lines) == 4


def test_the_sanity_check_is_stated_on_the_first_screen() -> None:
    sanity = {"copy_above_clean_median": 0.0, "copy_rank": 15.0, "copy_rank_own_reference": 1.0,
              "n_songs": 34, "noise_below_all_clean": 1.0, "noise_rank": 27.0}
    sets = {"mixed23": {"conditions": {}}, "effectsdb": {"conditions": {}}}
    lines = tables.report_lines(sets, None, {}, sanity, [], [], [])
    first = "\n".join(lines[:8])
    assert "Attribution sanity check: NOT met" in first and "15/34 in the unified score" in first
    assert "noise song ranks 27/34 (below every clean song)" in first


def test_paired_differences_carry_a_t_interval_and_a_noise_mark() -> None:
    from stages.lib.aggregate import paired_difference
    from stages.lib.tables import difference_table

    runs = {"a": {s: {"museval_sdr_db_avg": 5.0 + d} for s, d in enumerate((1.0, 2.0, 3.0))},
            "b": {s: {"museval_sdr_db_avg": 5.0} for s in range(3)},
            "c": {s: {"museval_sdr_db_avg": 5.0 + d} for s, d in enumerate((0.9, 1.0, 1.1))}}
    wide = paired_difference(runs, "a", "b", "museval_sdr_db_avg")
    half = 4.302652729911275 / 3 ** 0.5  # t(0.975, 2) x std 1 / sqrt(3)
    assert wide["mean"] == 2.0 and wide["std"] == 1.0 and wide["n"] == 3
    assert abs(wide["ci95_low"] - (2.0 - half)) < 1e-9 and abs(wide["ci95_high"] - (2.0 + half)) < 1e-9
    narrow = paired_difference(runs, "c", "b", "museval_sdr_db_avg")
    one = paired_difference({k: {0: v[0]} for k, v in runs.items()}, "a", "b", "museval_sdr_db_avg")
    assert one["ci95_low"] is None and one["n"] == 1
    rows = difference_table({"margins": {"a_minus_b_museval_sdr_db_avg": wide,
                                         "c_minus_b_museval_sdr_db_avg": narrow,
                                         "a_minus_b_mdx_sdr_db_avg": wide}})
    assert rows[2] == "| a − b | +2.00 ± 1.00 | [-0.48, +4.48] | 3 | inside the noise |"
    assert rows[3] == "| c − b | +1.00 ± 0.10 | [+0.75, +1.25] | 3 |  |"
    assert len(rows) == 4  # the MDX margin is not in the museval table


def test_aggregate_pairs_each_cleaning_with_contaminated_and_methods_at_one_ratio(
        tmp_path: Path) -> None:
    from stages import aggregate

    sdr = {"contaminated": 3.0, "fad_r0.5": 4.0, "mlp_r0.5": 3.5, "fad_r0.75": 3.8,
           "mlp_r0.75": 3.2}
    (tmp_path / "runs" / "unified").mkdir(parents=True)
    for condition, value in sdr.items():
        folder = tmp_path / "runs" / ("" if condition == "contaminated" else "unified")
        (folder / f"{condition}.json").write_text(json.dumps({
            f"seed{seed}": {"museval_sdr_db_avg": value + 0.1 * seed, "mdx_sdr_db_avg": value,
                            "n_songs": 2} for seed in (0, 1, 2)}))
    params = write_params(tmp_path / "params.yaml", {
        "base": {"seeds": [0, 1, 2]},
        "cleaning": {"methods": ["fad", "mlp"], "ratios": [0.5, 0.75],
                     "random_ratios": []}})
    aggregate.main(["--params", str(params), "--dataset", "mixed23", "--runs",
                    str(tmp_path / "runs"), "--out", str(tmp_path / "agg.json")])
    margins = json.loads((tmp_path / "agg.json").read_text())["margins"]
    pairs = {k.removesuffix("_museval_sdr_db_avg") for k in margins if k.endswith("museval_sdr_db_avg")}
    assert pairs == {"fad_r0.5_minus_contaminated", "mlp_r0.5_minus_contaminated",
                     "fad_r0.75_minus_contaminated", "mlp_r0.75_minus_contaminated",
                     "fad_r0.5_minus_mlp_r0.5", "fad_r0.75_minus_mlp_r0.75"}
    fad_vs_mlp = margins["fad_r0.5_minus_mlp_r0.5_museval_sdr_db_avg"]
    assert abs(fad_vs_mlp["mean"] - 0.5) < 1e-9 and fad_vs_mlp["std"] < 1e-9
    assert abs(fad_vs_mlp["ci95_low"] - 0.5) < 1e-9  # identical per-seed differences: no width


def test_the_random_control_is_compared_unpaired_over_all_its_draws(tmp_path: Path) -> None:
    from stages import aggregate
    from stages.lib.aggregate import unpaired_difference

    runs = {"contaminated": {s: {"museval_sdr_db_avg": v} for s, v in enumerate((3.0, 3.2, 3.4))},
            "random_r0.5": {d: {"museval_sdr_db_avg": v} for d, v in
                            zip((0, 1, 2, 3, 4), (2.0, 2.5, 3.0, 3.5, 4.0), strict=True)}}
    diff = unpaired_difference(runs, "random_r0.5", "contaminated", "museval_sdr_db_avg")
    # Welch by hand: means 3.0 and 3.2, variances 0.625 / 5 and 0.04 / 3
    se = (0.625 / 5 + 0.04 / 3) ** 0.5
    dof = se ** 4 / ((0.625 / 5) ** 2 / 4 + (0.04 / 3) ** 2 / 2)
    from scipy.stats import t

    half = t.ppf(0.975, dof) * se
    assert diff["n"] == 5 and diff["n_other"] == 3 and abs(diff["mean"] + 0.2) < 1e-12
    assert abs(diff["std"] - (0.625 + 0.04) ** 0.5) < 1e-12
    assert abs(diff["ci95_low"] - (-0.2 - half)) < 1e-9 and abs(diff["ci95_high"] - (-0.2 + half)) < 1e-9
    from stages.lib.tables import difference_table

    row = difference_table({"margins": {"random_r0.5_minus_contaminated_museval_sdr_db_avg": diff}})[2]
    assert row.startswith("| random_r0.5 − contaminated | -0.20 ± 0.82 |") and "| 5 vs 3 |" in row

    # through the stage: draws 0..4 (3 and 4 have no seed partner), composition averaged over draws
    truth = {"tracks": [{"name": f"s{i}", "corruption": "clean" if i < 2 else "bleeding"}
                        for i in range(4)]}
    (tmp_path / "truth.json").write_text(json.dumps(truth))
    every = {**runs, "clean_only": {s: {"museval_sdr_db_avg": 5.0} for s in range(3)},
             "fad_r0.5": {s: {"museval_sdr_db_avg": 4.0 + 0.1 * s} for s in range(3)}}
    (tmp_path / "runs" / "unified").mkdir(parents=True)
    for condition, by_seed in every.items():
        folder = tmp_path / "runs" / ("unified" if condition == "fad_r0.5" else "")
        (folder / f"{condition}.json").write_text(json.dumps({
            f"seed{seed}": {**metrics, "mdx_sdr_db_avg": 1.0} for seed, metrics in by_seed.items()}))
    kept = {"unified/fad/r0.5.json": ["s0", "s1"], **{f"random/r0.5/draw{d}.json": ["s0", f"s{1 + d % 3}"]
                                             for d in range(5)}}
    for rel, songs in kept.items():
        (tmp_path / "filtered" / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "filtered" / rel).write_text(json.dumps(
            {"songs": {t: [f"/x/{s}" for s in songs] for t in TARGETS}, "ratio": 0.5}))
    params = write_params(tmp_path / "params.yaml", {
        "base": {"seeds": [0, 1, 2]}, "cleaning": {"methods": ["fad"], "ratios": [0.5],
                                                   "random_ratios": [0.5], "random_draws": [0, 1, 2, 3, 4]}})
    args = ["--params", str(params), "--dataset", "mixed23", "--runs", str(tmp_path / "runs"),
            "--out", str(tmp_path / "agg.json"), "--filtered", str(tmp_path / "filtered"),
            "--truth", str(tmp_path / "truth.json")]
    aggregate.main(args)
    agg = json.loads((tmp_path / "agg.json").read_text())
    assert agg["conditions"]["random_r0.5"]["museval_sdr_db_avg"]["n"] == 5
    assert agg["margins"]["random_r0.5_minus_contaminated_museval_sdr_db_avg"]["ci95_low"] == \
        diff["ci95_low"]
    fad = agg["margins"]["fad_r0.5_minus_random_r0.5_museval_sdr_db_avg"]  # method first
    assert abs(fad["mean"] - 1.1) < 1e-12 and fad["n_other"] == 5
    # clean kept per draw: s0 + s1 (draws 0, 3: 100 %), s0 + s2 / s3 (draws 1, 2, 4: 50 %)
    assert agg["composition"]["random_r0.5"]["pct_clean_kept"] == pytest.approx(70.0)
    gap = agg["gap_closed"]["random_r0.5"]["museval_sdr_db_avg"]  # per draw vs baseline means
    assert gap["n"] == 5 and abs(gap["mean"] - (3.0 - 3.2) / (5.0 - 3.2)) < 1e-12
    random = tmp_path / "runs" / "random_r0.5.json"
    random.write_text(json.dumps({k: v for k, v in json.loads(random.read_text()).items()
                                  if k != "seed4"}))
    with pytest.raises(SystemExit, match=r"random_r0.5.json: run seed4 of a random-control draw"):
        aggregate.main(args)


def test_aggregate_names_the_per_target_mode_in_its_conditions(tmp_path: Path) -> None:
    """A cleaned cell's runs live under ``<mode>/<method>_r<ratio>.json``; the per-target mode
    is its own condition, ``<method>_per_target_r<ratio>``, paired with the contaminated set."""
    from stages import aggregate

    for rel, value in (("contaminated", 3.0), ("unified/fad_r0.5", 4.0),
                       ("per_target/fad_r0.5", 3.5)):
        (tmp_path / "runs" / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "runs" / f"{rel}.json").write_text(json.dumps({
            f"seed{seed}": {"museval_sdr_db_avg": value + 0.1 * seed, "mdx_sdr_db_avg": value}
            for seed in (0, 1)}))
    params = write_params(tmp_path / "params.yaml", {
        "base": {"seeds": [0, 1]}, "cleaning": {"methods": ["fad"], "modes": ["unified", "per_target"],
                                                "ratios": [0.5], "random_ratios": []}})
    aggregate.main(["--params", str(params), "--dataset", "mixed23", "--runs",
                    str(tmp_path / "runs"), "--out", str(tmp_path / "agg.json")])
    agg = json.loads((tmp_path / "agg.json").read_text())
    assert set(agg["conditions"]) == {"contaminated", "fad_r0.5", "fad_per_target_r0.5"}
    assert agg["conditions"]["fad_per_target_r0.5"]["museval_sdr_db_avg"]["mean"] == pytest.approx(3.55)
    (tmp_path / "runs" / "per_target" / "fad_r0.5.json").unlink()
    with pytest.raises(SystemExit, match=r"per_target/fad_r0.5.json: run metrics of a cleaned"):
        aggregate.main(["--params", str(params), "--dataset", "mixed23", "--runs",
                        str(tmp_path / "runs"), "--out", str(tmp_path / "agg2.json")])
