"""Filtering: proportion retained, ties, unified vs per-target, bad ratios."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import tone_stems, write_params, write_stems

from stages import filter as filter_stage
from stages import random_filter
from stages.lib.filtering import auto_ratio, keep_top, kept_songs, mean_table, random_table, two_gaussians
from stages.lib.params import TARGETS
from stages.lib.scores import ScoreTable


def _table(unified, per=None) -> ScoreTable:
    songs = [f"s{i}" for i in range(len(unified))]
    per = per or {t: np.array(unified, float) for t in TARGETS}
    return ScoreTable(songs, per, np.array(unified, float))


def test_keep_top_counts_and_ties() -> None:
    songs = ["a", "b", "c", "d"]
    assert keep_top(songs, np.array([0.1, 0.9, 0.5, 0.5]), 0.5) == ["b", "c"]  # tie -> name
    assert keep_top(songs, np.array([4.0, 3.0, 2.0, 1.0]), 0.75) == ["a", "b", "c"]
    assert keep_top(songs, np.array([4.0, 3.0, 2.0, 1.0]), 1.0) == songs
    assert keep_top(songs, np.array([4.0, 3.0, 2.0, 1.0]), 0.01) == ["a"]


@pytest.mark.parametrize("ratio", [0.0, -0.5, 1.5])
def test_ratio_outside_unit_interval(ratio: float) -> None:
    with pytest.raises(ValueError, match="outside \\(0, 1\\]"):
        keep_top(["a"], np.array([1.0]), ratio)


def test_per_target_lists_differ() -> None:
    per = {t: np.array([1.0, 2.0, 3.0, 4.0]) for t in TARGETS}
    per["bass"] = np.array([4.0, 3.0, 2.0, 1.0])
    kept = kept_songs(_table([1, 2, 3, 4], per), 0.5, "per_target")
    assert kept["vocals"] == ["s2", "s3"] and kept["bass"] == ["s0", "s1"]
    unified = kept_songs(_table([1, 2, 3, 4], per), 0.5, "unified")
    assert all(v == ["s2", "s3"] for v in unified.values())


def test_mean_table() -> None:
    avg = mean_table([_table([1, 2]), _table([3, 0])])
    np.testing.assert_allclose(avg.unified, [2.0, 1.0])
    with pytest.raises(ValueError, match="same songs"):
        mean_table([_table([1, 2]), _table([1, 2, 3])])


def test_filter_stage(tmp_path: Path) -> None:
    for i in range(4):
        write_stems(tmp_path / "set" / f"s{i}", tone_stems(seconds=0.1, seed=i))
    _table([1, 2, 3, 4]).write(tmp_path / "a.csv")
    _table([4, 3, 2, 1.5]).write(tmp_path / "b.csv")
    filter_stage.main(["--dataset", str(tmp_path / "set"), "--scores", str(tmp_path / "a.csv"),
                       "--scores", str(tmp_path / "b.csv"), "--ratio", "0.5", "--mode", "unified",
                       "--out", str(tmp_path / "kept.json")])
    kept = json.loads((tmp_path / "kept.json").read_text())
    assert [Path(p).name for p in kept["songs"]["drums"]] == ["s0", "s3"]  # means 2.5,2.5,2.5,2.75
    with pytest.raises(SystemExit, match="outside"):
        filter_stage.main(["--dataset", str(tmp_path / "set"), "--scores", str(tmp_path / "a.csv"),
                           "--ratio", "1.5", "--mode", "unified", "--out", str(tmp_path / "x.json")])


def test_detection_stage(tmp_path: Path) -> None:
    from stages import detection

    for seed, scores in ((0, [0.1, 0.2, 0.9, 0.8]), (1, [0.2, 0.1, 0.7, 0.9])):
        folder = tmp_path / "scores" / "unlearn" / f"seed{seed}"
        folder.mkdir(parents=True)
        _table(scores).write(folder / "scores.csv")
    (tmp_path / "scores" / "fad").mkdir()
    _table([0.9, 0.1, 0.5, 0.6]).write(tmp_path / "scores" / "fad" / "scores.csv")
    truth = {"tracks": [{"name": "s0", "corruption": "bleeding"},
                        {"name": "s1", "corruption": "label_noise"},
                        {"name": "s2", "corruption": "clean"}, {"name": "s3", "corruption": "clean"}]}
    (tmp_path / "truth.json").write_text(json.dumps(truth))
    params = tmp_path / "params.yaml"
    write_params(params, {"base": {"seeds": [0, 1]}})
    (tmp_path / "scores" / "unlearn" / "seed5").mkdir()  # stale: not in base.seeds, ignored
    detection.main(["--params", str(params), "--truth", str(tmp_path / "truth.json"), "--scores-root",
                    str(tmp_path / "scores"), "--out", str(tmp_path / "det.json")])
    report = json.loads((tmp_path / "det.json").read_text())
    assert set(report) == {"fad", "unlearn/mean", "unlearn/seed0", "unlearn/seed1"}
    assert report["unlearn/mean"]["unified"]["any"]["auroc"] == 1.0
    assert report["fad"]["unified"]["bleeding"]["auroc"] == 0.0
    assert report["fad"]["vocals"]["label_noise"]["auroc"] == 1.0


def test_filter_stage_by_method(tmp_path: Path) -> None:
    for i in range(4):
        write_stems(tmp_path / "set" / f"s{i}", tone_stems(seconds=0.1, seed=i))
    per = {t: np.array([4.0, 3.0, 2.0, 1.0]) for t in TARGETS}
    for seed in (0, 1):
        (tmp_path / "scores" / "unlearn" / f"seed{seed}").mkdir(parents=True)
        _table([1, 2, 3, 4], per).write(tmp_path / "scores" / "unlearn" / f"seed{seed}" /
                                        "scores.csv")
    params = tmp_path / "params.yaml"
    write_params(params, {"base": {"seeds": [0, 1]}})
    for mode, expected in (("unified", ["s2", "s3"]), ("per_target", ["s0", "s1"])):
        out = tmp_path / f"{mode}.json"
        filter_stage.main(["--params", str(params), "--dataset", str(tmp_path / "set"),
                           "--scores", str(tmp_path / "scores" / "unlearn"), "--mode", mode,
                           "--ratio", "0.5", "--out", str(out)])
        kept = json.loads(out.read_text())
        assert [Path(p).name for p in kept["songs"]["bass"]] == expected
        assert kept["n_tables"] == 2 and kept["mode"] == mode
    with pytest.raises(SystemExit, match=r"error: filter: --scores: .*fad: no scores.csv there"):
        filter_stage.main(["--params", str(params), "--dataset", str(tmp_path / "set"),
                           "--scores", str(tmp_path / "scores" / "fad"), "--ratio", "0.5",
                           "--out", str(out)])


def test_gap_closed_and_composition() -> None:
    from stages.lib.aggregate import composition, gap_closed

    runs = {"contaminated": {0: {"k": 1.0}, 1: {"k": 2.0}}, "clean_only": {0: {"k": 3.0}, 1: {"k": 4.0}},
            "fad_r0.5": {0: {"k": 2.0}, 1: {"k": 3.5}}}
    gap = gap_closed(runs, "fad_r0.5", "k")
    assert gap["mean"] == pytest.approx((0.5 + 0.75) / 2) and gap["n"] == 2
    truth = {"a": "clean", "b": "clean", "c": "bleeding", "d": "label_noise"}
    comp = composition({"vocals": ["a", "c"], "bass": ["a", "b"]}, truth)
    assert comp == {"pct_clean_kept": 75.0, "pct_bleeding_removed": 50.0,
                    "pct_label_noise_removed": 100.0}


def test_auto_ratio_follows_the_score_distribution() -> None:
    rng = np.random.default_rng(0)
    assert auto_ratio(rng.standard_normal(32)) == 1.0  # one population: keep everything
    two = np.r_[rng.normal(0.0, 1.0, 12), rng.normal(6.0, 1.0, 20)]
    assert auto_ratio(two) == pytest.approx(20 / 32)  # the upper population is kept
    assert auto_ratio(np.r_[rng.normal(0.0, 1.0, 28), rng.normal(6.0, 1.0, 4)],
                      min_ratio=0.25) == 0.25  # never below the floor
    assert auto_ratio(np.ones(8)) == 1.0 and auto_ratio(np.arange(3.0)) == 1.0
    w, mu, var, _ = two_gaussians((two - two.mean()) / two.std())
    assert mu[0] < mu[1] and w[1] == pytest.approx(20 / 32, abs=0.02)


def test_filter_stage_auto_ratio(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    scores = np.r_[rng.normal(0.0, 1.0, 6), rng.normal(8.0, 1.0, 10)]
    for i in range(16):
        write_stems(tmp_path / "set" / f"s{i}", tone_stems(seconds=0.1, seed=i))
    (tmp_path / "scores" / "fad").mkdir(parents=True)
    _table(list(scores)).write(tmp_path / "scores" / "fad" / "scores.csv")
    params = tmp_path / "params.yaml"
    write_params(params, {"base": {"seeds": [0]}, "cleaning": {"auto_min_ratio": 0.3}})
    out = tmp_path / "auto.json"
    filter_stage.main(["--params", str(params), "--dataset", str(tmp_path / "set"), "--scores",
                       str(tmp_path / "scores" / "fad"), "--ratio", "auto", "--out", str(out)])
    kept = json.loads(out.read_text())
    assert kept["rule"] == "auto" and kept["ratio"] == pytest.approx(10 / 16)
    assert sorted(Path(p).name for p in kept["songs"]["vocals"]) == sorted(
        f"s{i}" for i in range(6, 16))
    with pytest.raises(SystemExit, match="'half'"):
        filter_stage.main(["--params", str(params), "--dataset", str(tmp_path / "set"),
                           "--scores", str(tmp_path / "scores" / "fad" / "scores.csv"),
                           "--ratio", "half", "--out", str(out)])


def test_random_removal_is_keyed_by_draw_and_song() -> None:
    songs = [f"s{i}" for i in range(20)]
    table = random_table(songs, draw=3)
    shuffled = random_table(songs[::-1], draw=3)
    by_song = dict(zip(table.songs, table.unified, strict=True))
    assert by_song == dict(zip(shuffled.songs, shuffled.unified, strict=True))
    half, quarter = (set(keep_top(songs, table.unified, r)) for r in (0.5, 0.25))
    assert len(half) == 10 and quarter < half  # ratios are nested within one draw
    others = [set(keep_top(songs, random_table(songs, d).unified, 0.5)) for d in range(5)]
    assert len({frozenset(o) for o in others}) == 5  # every draw keeps other songs


def test_random_filter_stage_writes_one_list_per_draw(tmp_path: Path) -> None:
    for i in range(8):
        write_stems(tmp_path / "set" / f"s{i}", tone_stems(seconds=0.1, seed=i))
    params = write_params(tmp_path / "params.yaml", {"cleaning": {"random_draws": [0, 1]}})
    out = tmp_path / "filtered" / "random" / "r0.5"
    random_filter.main(["--params", str(params), "--dataset", str(tmp_path / "set"),
                        "--ratio", "0.5", "--out", str(out)])
    assert sorted(p.name for p in out.glob("*.json")) == ["draw0.json", "draw1.json"]
    kept = {d: json.loads((out / f"draw{d}.json").read_text()) for d in (0, 1)}
    for draw, lists in kept.items():
        assert lists["rule"] == "random" and lists["draw"] == draw and lists["ratio"] == 0.5
        assert len(lists["songs"]["vocals"]) == 4
        assert lists["songs"]["vocals"] == lists["songs"]["drums"]
        # paths relative to the list's final place (not the temporary folder it was written in)
        assert all((out / p).resolve().parent == (tmp_path / "set").resolve()
                   for p in lists["songs"]["vocals"])
    assert kept[0]["songs"] != kept[1]["songs"]
    table = random_table(sorted(f"s{i}" for i in range(8)), 1)  # the draw's own scores
    assert [Path(p).name for p in kept[1]["songs"]["bass"]] == keep_top(table.songs,
                                                                         table.unified, 0.5)
    with pytest.raises(SystemExit, match="--ratio auto needs scores"):
        random_filter.main(["--params", str(params), "--dataset", str(tmp_path / "set"),
                            "--ratio", "auto", "--out", str(tmp_path / "bad")])
    assert not (tmp_path / "bad").exists()
