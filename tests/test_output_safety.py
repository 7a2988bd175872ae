"""No command deletes or replaces what this project did not write (issue: trust, part 1)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from conftest import tone_stems, write_params, write_stems

from stages import train
from stages.lib.io import (
    MARKER,
    OutputError,
    atomic_path,
    check_outputs,
    is_marked,
    mark,
    remove_stale,
)
from stages.tools import clean


@pytest.fixture
def user_data(tmp_path: Path) -> Path:
    """A user's folder: four songs, a trusted set, and an unrelated file of theirs."""
    for i in range(4):
        write_stems(tmp_path / "data" / "songs" / f"song{i}", tone_stems(seconds=1.0, seed=i))
    write_stems(tmp_path / "data" / "trusted" / "ref0", tone_stems(seconds=1.0, seed=9))
    (tmp_path / "data" / "notes.txt").write_text("my notes")
    return tmp_path / "data"


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


def _clean(user_data: Path, out: Path, params: Path) -> None:
    clean.main(["--params", str(params), "--songs", str(user_data / "songs"), "--reference",
                str(user_data / "trusted"), "--method", "fad", "--ratio", "0.5", "--out",
                str(out), "--quiet"])


@pytest.mark.parametrize("where", ["songs", ".", "songs/song0", "trusted"])
def test_clean_never_writes_over_its_inputs(user_data: Path, tmp_path: Path, where: str,
                                            capsys: pytest.CaptureFixture) -> None:
    before = _snapshot(user_data)
    params = write_params(tmp_path / "params.yaml", {})
    with pytest.raises(SystemExit) as err:
        _clean(user_data, user_data / where, params)
    message = str(err.value.code)
    assert message.startswith("error: clean: ") and "\n" not in message
    assert any(w in message for w in ("is the input", "contains the input", "lies inside"))
    assert _snapshot(user_data) == before  # every song, the reference and notes.txt intact


def test_clean_refuses_a_regular_file_or_a_foreign_folder(user_data: Path, tmp_path: Path) -> None:
    params = write_params(tmp_path / "params.yaml", {})
    precious = tmp_path / "report.pdf"
    precious.write_bytes(b"%PDF-1.4 mine")
    with pytest.raises(SystemExit, match="exists and is not a folder"):
        _clean(user_data, precious, params)
    assert precious.read_bytes() == b"%PDF-1.4 mine"
    foreign = tmp_path / "thesis"
    foreign.mkdir()
    (foreign / "chapter1.tex").write_text("...")
    with pytest.raises(SystemExit, match=f"not written by this project \\(no {MARKER} marker\\)"):
        _clean(user_data, foreign, params)
    assert (foreign / "chapter1.tex").read_text() == "..."


def test_clean_writes_into_an_empty_folder_and_again_over_its_own_output(
        user_data: Path, tmp_path: Path) -> None:
    params = write_params(tmp_path / "params.yaml", {"fad_scores": {"normalize": "none"}})
    out = tmp_path / "cleaned"
    out.mkdir()  # an empty folder is fine
    _clean(user_data, out, params)
    assert is_marked(out) and (out / "kept.json").is_file()
    _clean(user_data, out, params)  # its own output: replaced
    assert is_marked(out / "kept.json")  # files carry the marker as an extended attribute


def test_train_refuses_an_output_that_contains_its_song_list(user_data: Path,
                                                            tmp_path: Path) -> None:
    listed = tmp_path / "X"
    listed.mkdir()
    kept = listed / "kept.json"
    kept.write_text(json.dumps({"songs": {t: [str(user_data / "songs" / "song0")]
                                          for t in ("vocals", "bass", "drums", "other")}}))
    before = kept.read_bytes()
    with pytest.raises(SystemExit, match="contains the input --songs"):
        train.main(["--params", str(write_params(tmp_path / "params.yaml", {})), "--songs",
                    str(kept), "--valid", str(user_data / "trusted"), "--seed", "0", "--out",
                    str(listed)])
    assert kept.read_bytes() == before
    # an earlier output of the project (marked) that holds a song the list names: still refused
    ours = tmp_path / "ours"
    write_stems(ours / "song9", tone_stems(seconds=1.0, seed=5))
    mark(ours)
    kept.write_text(json.dumps({"songs": {t: ["../ours/song9"]
                                          for t in ("vocals", "bass", "drums", "other")}}))
    with pytest.raises(SystemExit, match=r"contains the input --songs\[0\]"):
        train.main(["--params", str(tmp_path / "params.yaml"), "--songs", str(kept), "--valid",
                    str(user_data / "trusted"), "--seed", "0", "--out", str(ours)])
    assert (ours / "song9" / "vocals.wav").is_file()


def test_check_outputs_rules(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    check_outputs({"--out": tmp_path / "new"}, {"--in": tmp_path / "in"}, ("--out",))
    with pytest.raises(OutputError, match="is not a folder"):  # parent is a file: cannot create
        (tmp_path / "f").write_text("x")
        check_outputs({"--out": tmp_path / "f" / "sub"}, {}, ())
    link = tmp_path / "alias"
    link.symlink_to(tmp_path / "in")
    with pytest.raises(OutputError, match="is the input"):  # a symlink to an input is the input
        check_outputs({"--out": link}, {"--in": tmp_path / "in"}, ("--out",))
    check_outputs({"--out": tmp_path / "a", "--cost": tmp_path / "ab.json"}, {}, ())  # a prefix
    for other in (tmp_path / "a", tmp_path / "a" / "cost.json", tmp_path):  # same, inside, around
        with pytest.raises(OutputError, match=r"output --cost overlaps output --out"):
            check_outputs({"--out": tmp_path / "a", "--cost": other}, {}, ())


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes everywhere: permissions never refuse")
def test_an_unwritable_output_fails_before_any_work(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(OutputError, match="not writable"):
            check_outputs({"--out": locked / "out"}, {}, ("--out",))
    finally:
        locked.chmod(0o700)


def test_remove_stale_and_atomic_path_only_touch_marked_outputs(tmp_path: Path) -> None:
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("mine")
    with pytest.raises(OutputError):
        remove_stale(foreign)
    with pytest.raises(OutputError), atomic_path(foreign) as tmp:
        tmp.mkdir()
    assert (foreign / "keep.txt").read_text() == "mine"
    with atomic_path(tmp_path / "ours") as tmp:
        tmp.mkdir()
    assert (tmp_path / "ours" / MARKER).is_file()
    remove_stale(tmp_path / "ours")
    assert not (tmp_path / "ours").exists()
