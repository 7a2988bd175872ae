"""``python -m stages.tools.clean``: rank a user's folder against a trusted clean set, keep the top."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import tone_stems, write_params, write_stems
from test_scoring_stages import _params as _scoring_params

from stages.lib.params import TARGETS, read_yaml
from stages.lib.scores import ScoreTable
from stages.tools import clean


def _params(tmp: Path) -> Path:
    # unified FAD = plain mean over stems: with six songs, per-stem z-scores would bound the two
    # swapped songs' huge vocals/bass FADs to the size of the noise in the other stems
    path = _scoring_params(tmp)
    data = read_yaml(path)
    data["fad_scores"]["normalize"] = "none"
    return write_params(path, data)


@pytest.fixture
def folders(tmp_path: Path) -> Path:
    for i in range(6):
        stems = tone_stems(seconds=1.0, seed=i)
        if i >= 4:  # label noise: vocals and bass swapped
            stems["vocals"], stems["bass"] = stems["bass"], stems["vocals"]
        write_stems(tmp_path / "mine" / f"song{i}", stems)
    for i in range(2):
        write_stems(tmp_path / "trusted" / f"ref{i}", tone_stems(seconds=1.0, seed=10 + i))
    return tmp_path


@pytest.mark.parametrize("method", ["fad", "mlp"])
def test_clean_ranks_corrupted_songs_last(folders: Path, method: str,
                                          capsys: pytest.CaptureFixture) -> None:
    out = folders / f"out_{method}"
    clean.main(["--params", str(_params(folders)), "--songs", str(folders / "mine"),
                "--reference", str(folders / "trusted"), "--method", method, "--ratio",
                "0.5", "--out", str(out), "--quiet"])
    table = ScoreTable.read(out / "ranking.csv")
    worst = {table.songs[i] for i in table.unified.argsort()[:2]}
    assert worst == {"song4", "song5"}
    kept = json.loads((out / "kept.json").read_text())
    assert set(kept["songs"]) == set(TARGETS) and kept["rule"] == "fixed"
    names = {Path(p).name for p in kept["songs"]["drums"]}
    assert len(names) == 3 and names <= {"song0", "song1", "song2", "song3"}
    summary = capsys.readouterr().err  # the summary is logged, even with --quiet
    assert f"{method}: 6 songs scored" in summary and "kept 3 (r = 0.50, fixed)" in summary


def test_clean_with_unlearning_and_auto_ratio(folders: Path) -> None:
    out = folders / "out_unlearn"
    clean.main(["--params", str(_params(folders)), "--songs", str(folders / "mine"),
                "--reference", str(folders / "trusted"), "--method", "unlearn", "--out",
                str(out), "--quiet"])
    table = ScoreTable.read(out / "ranking.csv")
    assert sorted(table.songs) == [f"song{i}" for i in range(6)]
    kept = json.loads((out / "kept.json").read_text())
    assert kept["rule"] == "auto" and 0 < kept["ratio"] <= 1
    assert json.loads((out / "sidecar.json").read_text())["params"]["method"] == "unlearn"


@pytest.mark.parametrize(("extra", "message"), [
    (["--ratio", "1.5"], "outside"), (["--ratio", "most"], "'most'"),
    (["--method", "unlearn", "--kind", "musdb"], "use --kind folder")])
def test_clean_bad_arguments(folders: Path, extra: list[str], message: str) -> None:
    with pytest.raises(SystemExit, match=message):
        clean.main(["--params", str(_params(folders)), "--songs", str(folders / "mine"),
                    "--reference", str(folders / "trusted"), "--out", str(folders / "x"),
                    "--quiet", *extra])
    assert not (folders / "x").exists()


def test_a_moisesdb_kept_list_is_trainable(folders: Path) -> None:
    from test_readers import _moises_track

    from stages.lib.readers import read_track_folder
    from stages.lib.songs import SongList

    for uuid in ("0001", "0002", "0003"):
        _moises_track(folders / "moises", uuid)
    out = folders / "out_moises"
    clean.main(["--params", str(_params(folders)), "--songs", str(folders / "moises"), "--kind",
                "moisesdb", "--reference", str(folders / "trusted"), "--method", "fad",
                "--ratio", "0.5", "--out", str(out), "--quiet"])
    kept = SongList.read(out / "kept.json").songs["vocals"]
    assert len(kept) == 2 and all(Path(f).parent == out / "tracks" for f in kept)
    track = read_track_folder(kept[0], 8000)  # what stages.train reads: a track folder
    assert set(track.stems) == set(TARGETS)


def test_kept_songs_at_another_rate_are_resampled_once(folders: Path) -> None:
    """Training seeks excerpts without resampling: songs stored at 16 kHz (the params say 8 kHz)
    come out of clean as 8 kHz track folders, the others stay where they are."""
    from stages.lib.songs import SongList, SongTable

    for i in range(6):
        stems = tone_stems(seconds=1.0, sr=16000, seed=i) if i % 2 else tone_stems(seed=i)
        write_stems(folders / "mixed_rates" / f"song{i}", stems, sr=16000 if i % 2 else 8000)
    out = folders / "out_rates"
    clean.main(["--params", str(_params(folders)), "--songs", str(folders / "mixed_rates"),
                "--reference", str(folders / "trusted"), "--method", "fad", "--ratio", "1.0",
                "--out", str(out), "--quiet"])
    kept = SongList.read(out / "kept.json").songs["vocals"]
    assert {Path(f).parent for f in kept} == {out / "tracks", folders / "mixed_rates"}
    assert all((Path(f).parent == out / "tracks") == (int(f[-1]) % 2 == 1) for f in kept)
    assert len(SongTable.open(kept, 8000)) == 6  # every kept song is trainable as listed
