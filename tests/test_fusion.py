"""Hybrid scores: normalization, weighted fusion, the fuse stage and its bad inputs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import params_of, write_params

from stages import fuse as fuse_stage
from stages.lib.fusion import FuseParams, fuse, normalize
from stages.lib.params import TARGETS, ParamsError
from stages.lib.scores import ScoreTable


def _table(songs: list[str], unified: list[float]) -> ScoreTable:
    values = np.array(unified, dtype=float)
    return ScoreTable(songs, {t: values.copy() for t in TARGETS}, values)


def test_normalize_rank_and_zscore() -> None:
    np.testing.assert_allclose(normalize(np.array([10.0, -5.0, 0.0]), "rank"), [1.0, 0.0, 0.5])
    z = normalize(np.array([1.0, 2.0, 3.0]), "zscore")
    assert z.mean() == pytest.approx(0.0) and z.std() == pytest.approx(1.0)
    np.testing.assert_array_equal(normalize(np.ones(3), "zscore"), np.zeros(3))


def test_fuse_aligns_songs_and_weights_parts() -> None:
    a = _table(["x", "y", "z"], [3.0, 2.0, 1.0])  # x best
    b = _table(["z", "y", "x"], [300.0, 200.0, 100.0])  # z best, other order and scale
    equal = fuse({"a": a, "b": b}, {"a": 1.0, "b": 1.0}, "rank")
    assert equal.songs == ["x", "y", "z"]
    np.testing.assert_allclose(equal.unified, [0.5, 0.5, 0.5])
    a_only = fuse({"a": a, "b": b}, {"a": 1.0, "b": 0.0}, "rank")
    np.testing.assert_allclose(a_only.unified, [1.0, 0.5, 0.0])
    np.testing.assert_allclose(a_only.per_target["bass"], a_only.unified)
    with pytest.raises(ValueError, match="other songs"):
        fuse({"a": a, "b": _table(["x", "y", "w"], [1, 2, 3])}, {"a": 1, "b": 1}, "rank")
    with pytest.raises(ValueError, match="sum to zero"):
        fuse({"a": a, "b": b}, {"a": 0.0, "b": 0.0}, "rank")


@pytest.mark.parametrize(("raw", "key"), [({"hybrids": ["unlearn"]}, "fuse.hybrids"),
                                          ({"hybrids": ["unlearn+knn"]}, "fuse.weights"),
                                          ({"weights": {"unlearn": -1.0, "fad": 1.0}},
                                           "fuse.weights.unlearn"),
                                          ({"normalize": "minmax"}, "fuse.normalize")])
def test_fuse_params_errors_name_the_key(raw: dict, key: str) -> None:
    with pytest.raises(ParamsError, match=key):
        params_of(FuseParams, "fuse", **raw)


def test_fuse_stage_averages_seeds_then_fuses(tmp_path: Path) -> None:
    songs = ["s0", "s1", "s2", "s3"]
    for seed, values in ((0, [1.0, 2.0, 3.0, 4.0]), (1, [1.2, 2.2, 2.9, 4.1])):
        (tmp_path / "unlearn" / f"seed{seed}").mkdir(parents=True)
        _table(songs, values).write(tmp_path / "unlearn" / f"seed{seed}" / "scores.csv")
    (tmp_path / "fad").mkdir()
    _table(songs, [-4.0, -3.0, -2.0, -1.0]).write(tmp_path / "fad" / "scores.csv")
    params = tmp_path / "params.yaml"
    write_params(params, {"base": {"seeds": [0, 1]}, "fuse": {"normalize": "rank"}})
    out = tmp_path / "unlearn+fad"
    fuse_stage.main(["--params", str(params), "--part", str(tmp_path / "unlearn"), "--part",
                     str(tmp_path / "fad"), "--hybrid", "unlearn+fad", "--out", str(out)])
    table = ScoreTable.read(out / "scores.csv")
    np.testing.assert_allclose(table.unified, [0.0, 1 / 3, 2 / 3, 1.0])
    assert json.loads((out / "sidecar.json").read_text())["weights"] == {"unlearn": 1.0, "fad": 1.0}
    with pytest.raises(SystemExit, match="not in fuse.hybrids"):
        fuse_stage.main(["--params", str(params), "--part", str(tmp_path / "fad"), "--hybrid",
                         "fad+mlp", "--out", str(tmp_path / "x")])
