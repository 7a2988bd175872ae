"""The attribution sanity check: planting a reference copy and a noise song, and ranking them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import SR, tone_stems, write_params, write_stems

from stages import sanity
from stages.lib.attribution import descending_ranks, sanity_ranks
from stages.lib.audio import read_wav
from stages.lib.params import TARGETS
from stages.lib.songs import SongList


def test_descending_ranks_put_the_largest_first() -> None:
    np.testing.assert_array_equal(descending_ranks(np.array([0.1, 3.0, -2.0, 3.0])),
                                  [3.0, 1.5, 4.0, 1.5])


def test_sanity_ranks_on_hand_made_matrices() -> None:
    names = ["clean_a", "clean_b", "bad", "copy_r0", "noise"]
    # rows: songs, columns: references r0, r1. The copy helps only its own reference a lot.
    delta = np.array([[2.0, 2.0], [1.5, 1.0], [-1.0, -1.0], [6.0, 0.0], [0.5, 0.0]])
    out = sanity_ranks({t: delta for t in TARGETS}, names, "copy_r0", 0, "noise",
                       {"clean_a", "clean_b"})
    assert out == {"n_songs": 5, "copy_rank": 1.0, "copy_rank_own_reference": 1.0,
                   "copy_rank_other_references_median": 3.5,  # ties with the noise in r1
                   "noise_rank": 4.0, "copy_above_clean_median": 1.0,
                   "noise_below_all_clean": 1.0}
    flipped = sanity_ranks({t: -delta for t in TARGETS}, names, "copy_r0", 0, "noise",
                           {"clean_a", "clean_b"})
    assert flipped["copy_rank"] == 5.0 and flipped["noise_below_all_clean"] == 0.0
    with pytest.raises(ValueError, match="no clean song"):
        sanity_ranks({"vocals": delta}, names, "copy_r0", 0, "noise", set())


def test_plant_and_check(tmp_path: Path) -> None:
    for i in range(2):
        write_stems(tmp_path / "ref" / f"r{i}", tone_stems(seed=i))
        write_stems(tmp_path / "train" / f"s{i}", tone_stems(seed=10 + i))
    songs = tmp_path / "list.json"
    songs.write_text(json.dumps({"songs": {t: [str(tmp_path / "train" / "s0"),
                                               str(tmp_path / "train" / "s1")] for t in TARGETS}}))
    params = tmp_path / "params.yaml"
    write_params(params, {"base": {"sample_rate": SR}})
    out = tmp_path / "sanity"
    sanity.main(["--params", str(params), "plant", "--songs", str(songs), "--reference",
                 str(tmp_path / "ref"), "--out", str(out)])
    planted = SongList.read(out / "songs.json").songs
    assert set(planted["vocals"]) == {str(tmp_path / "train" / "s0"), str(tmp_path / "train" / "s1"),
                                      str(out / "songs" / "copy_r0"), str(out / "songs" / "noise")}
    for target in TARGETS:
        assert (out / "songs" / "copy_r0" / f"{target}.wav").read_bytes() == \
            (tmp_path / "ref" / "r0" / f"{target}.wav").read_bytes()
        noise = read_wav(out / "songs" / "noise" / f"{target}.wav", SR)
        ref = read_wav(tmp_path / "ref" / "r0" / f"{target}.wav", SR)
        assert noise.shape == ref.shape
        assert np.sqrt(np.mean(noise**2)) == pytest.approx(np.sqrt(np.mean(ref**2)), rel=0.05)
    # check: reads the attribute stage's delta.json layout
    scores = tmp_path / "scores"
    scores.mkdir()
    names = ["s0", "s1", "copy_r0", "noise"]
    delta = [[1.0, 1.0], [0.8, 0.9], [3.0, 0.5], [0.1, 0.2]]
    (scores / "delta.json").write_text(json.dumps({"train_names": names,
                                                    "reference_names": ["r0", "r1"],
                                                    "delta": {t: delta for t in TARGETS}}))
    truth = tmp_path / "truth.json"
    truth.write_text(json.dumps({"tracks": [{"name": "s0", "corruption": "clean"},
                                            {"name": "s1", "corruption": "clean"}]}))
    sanity.main(["--params", str(params), "check", "--scores", str(scores), "--truth", str(truth),
                 "--metrics", str(tmp_path / "m.json")])
    result = json.loads((tmp_path / "m.json").read_text())
    assert result["copy_rank"] == 1.0 and result["noise_rank"] == 4.0
    # z-scored columns (by hand): s0 0.44, s1 0.19, copy 0.59, noise -1.22
    assert result["copy_rank_zscore"] == 1.0 and result["noise_rank_zscore"] == 4.0
    assert result["noise_below_all_clean_zscore"] == 1.0


def test_check_needs_its_arguments() -> None:
    with pytest.raises(SystemExit, match="check needs --scores --truth --metrics"):
        sanity.main(["check"])
