"""One line per error, found before the expensive work (issue: trust, parts 2, 3 and 8)."""

from __future__ import annotations

import json
import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import params_of, tone_stems, write_params, write_stems

from stages import evaluate, train
from stages.lib.io import is_marked, output_folder
from stages.lib.params import (
    ParamsError,
    RuntimeParams,
    load_base,
    load_section,
    read_yaml,
    select_device,
)
from stages.lib.readers import list_track_folders, read_track_folder
from stages.lib.songs import SongList, SongTable
from stages.lib.unmix import ModelParams, TrainParams, load_model, model_config, train_target
from stages.tools import clean, songlist

ROOT = Path(__file__).resolve().parents[1]
SR = 8000
CPU = torch.device("cpu")
TINY = params_of(TrainParams, "train",
                 model={"n_fft": 256, "hop": 128, "hidden_size": 8, "bandwidth_hz": 3500.0},
                 sampler={"excerpt_seconds": 0.5}, epochs=2, batch_size=4, steps_per_epoch=3)
TINY_YAML = {"base": {"sample_rate": SR, "seeds": [0]},
             "train": {"model": {"n_fft": 256, "hop": 128, "hidden_size": 8,
                                 "bandwidth_hz": 3500.0},
                       "sampler": {"excerpt_seconds": 0.5}, "epochs": 2, "batch_size": 4,
                       "steps_per_epoch": 3},
             "attribute": {"excerpts_per_song": 1, "excerpt_seconds": 0.5},
             "runtime": {"workers": 1}}


def _banks(tmp: Path, seconds: float = 1.5) -> tuple[SongTable, SongTable]:
    train_dirs = [str(write_stems(tmp / f"s{i}", tone_stems(seconds=seconds, seed=i)))
                  for i in range(2)]
    valid = [str(write_stems(tmp / "v0", tone_stems(seconds=1.0, seed=9)))]
    return SongTable.open(train_dirs, SR), SongTable.open(valid, SR)


# --- stems: case-insensitive names, every libsndfile format, loud failures --------------------

def test_upper_case_and_flac_stems_are_read(tmp_path: Path) -> None:
    import soundfile as sf

    stems = tone_stems(seconds=0.5)
    write_stems(tmp_path / "set" / "plain", stems)
    for folder in ("shouty", "lossless"):
        (tmp_path / "set" / folder).mkdir(parents=True)
    for target, audio in stems.items():
        sf.write(tmp_path / "set" / "shouty" / f"{target.upper()}.WAV", audio.T, SR)
        sf.write(tmp_path / "set" / "lossless" / f"{target}.flac", audio.T, SR, subtype="PCM_24")
    folders = list_track_folders(tmp_path / "set")
    assert [f.name for f in folders] == ["lossless", "plain", "shouty"]  # none dropped
    for folder in folders:
        track = read_track_folder(folder, SR)
        np.testing.assert_allclose(track.stems["bass"], stems["bass"], atol=1e-4)


def test_a_folder_that_looks_like_a_track_but_is_not_is_an_error(tmp_path: Path) -> None:
    write_stems(tmp_path / "set" / "good", tone_stems(seconds=0.5))
    (tmp_path / "set" / "half").mkdir()
    (tmp_path / "set" / "half" / "vocals.wav").write_bytes(
        (tmp_path / "set" / "good" / "vocals.wav").read_bytes())
    with pytest.raises(ValueError, match="half: looks like a track .* has no bass, drums, other"):
        list_track_folders(tmp_path / "set")


def test_songlist_tool_and_lists_work_from_any_directory(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    for i in range(3):
        write_stems(tmp_path / "set" / f"song{i}", tone_stems(seconds=0.5, seed=i))
    out = tmp_path / "lists" / "two.json"
    songlist.main(["--songs", str(tmp_path / "set"), "--exclude", "song1", "--out", str(out)])
    assert json.loads(out.read_text())["songs"]["vocals"] == ["../set/song0", "../set/song2"]
    monkeypatch.chdir(tmp_path / "set")  # another working directory: same songs
    assert SongList.read(out).songs["drums"] == (str(tmp_path / "set" / "song0"),
                                                  str(tmp_path / "set" / "song2"))
    with pytest.raises(SystemExit, match="no song named 'song9'"):
        songlist.main(["--songs", str(tmp_path / "set"), "--only", "song9", "--out",
                       str(tmp_path / "x.json")])


# --- model files and checkpoints --------------------------------------------------------------

class _Payload:
    def __reduce__(self):  # noqa: ANN204
        return (print, ("pwned",))


@pytest.mark.parametrize("content", ["pickle", "empty", "garbage"])
def test_bad_model_files_are_one_line(tmp_path: Path, content: str) -> None:
    path = tmp_path / "vocals.pth"
    if content == "pickle":
        path.write_bytes(pickle.dumps({"w": _Payload()}))
    elif content == "empty":
        path.write_bytes(b"")
    else:
        path.write_bytes(os.urandom(300))
    config = model_config(params_of(ModelParams, "train.model"), SR)
    with pytest.raises(ValueError) as err:
        load_model(path, config)
    assert str(err.value).startswith(f"{path}: ") and "weights_only" not in str(err.value)
    # through a stage: one line, exit status 1
    models = tmp_path / "models" / "seed0"
    models.mkdir(parents=True)
    (models / "model.json").write_text(json.dumps({"config": config}))
    path.rename(models / "vocals.pth")
    for target in ("bass", "drums", "other"):
        (models / f"{target}.pth").write_bytes(b"")
    write_stems(tmp_path / "test" / "t0", tone_stems(seconds=1.0))
    with pytest.raises(SystemExit) as exit_info:
        evaluate.main(["--params", str(write_params(tmp_path / "p.yaml", {"base": {
            "sample_rate": SR, "seeds": [0]}})), "--models", str(models.parent),
            "--seeds-from", "base.seeds", "--test", str(tmp_path / "test"),
            "--scores", str(tmp_path / "s.json"), "--metrics", str(tmp_path / "m.json")])
    assert str(exit_info.value.code).startswith(f"error: evaluate: {models / 'vocals.pth'}: ")


def test_a_corrupt_resume_checkpoint_is_ignored_with_a_warning(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    bank, valid = _banks(tmp_path)
    ckpt = output_folder(tmp_path / "checkpoints") / "vocals.pt"
    ckpt.write_bytes(b"\x00garbage from a failing disk")
    result = train_target(bank, np.arange(2), valid, "vocals", TINY, 0, CPU, checkpoint=ckpt,
                          quiet=True)
    assert len(result.history) == TINY.epochs  # trained from scratch
    assert "ignoring unreadable checkpoint" in caplog.text and "weights_only" not in caplog.text
    assert is_marked(ckpt)  # replaced by a real checkpoint


def test_diverged_training_names_the_cause(tmp_path: Path) -> None:
    bank, valid = _banks(tmp_path)
    diverging = params_of(TrainParams, "train", model=dict(TINY.model.__dict__),
                          sampler={"excerpt_seconds": 0.5}, epochs=2, batch_size=4,
                          steps_per_epoch=3, lr=1e30)
    with pytest.raises(ValueError, match="every validation loss is NaN .* lower train.lr"):
        train_target(bank, np.arange(2), valid, "vocals", diverging, 0, CPU, quiet=True)


def test_a_song_shorter_than_one_stft_frame_is_named(tmp_path: Path) -> None:
    bank, valid = _banks(tmp_path, seconds=0.02)  # 160 samples < n_fft 256
    with pytest.raises(ValueError, match=r"s0: 160 samples, shorter than one STFT frame"):
        train_target(bank, np.arange(2), valid, "vocals", TINY, 0, CPU, quiet=True)


# --- params -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("override", "message"), [
    ({"runtime": {"threads": 0}}, "runtime.threads: must be in"),
    ({"mlp_scores": {"hidden": 10**12}}, "mlp_scores.hidden: must be in"),
    ({"train": {"lr": float("inf")}}, "train.lr: must be a finite number"),
    ({"train": {"model": {"n_fft": 2**20}}}, "train.model.n_fft: must be a power of two in"),
    ({"base": {"seeds": [0, -1]}}, r"base.seeds: seeds must be in \[0, 2\*\*32\)"),
])
def test_absurd_params_name_the_key(tmp_path: Path, override: dict, message: str) -> None:
    from stages.lib.schema import validate_all

    path = write_params(tmp_path / "params.yaml", override)
    with pytest.raises(ParamsError, match=message):
        validate_all(read_yaml(path))


def test_binary_and_duplicate_key_params_files(tmp_path: Path) -> None:
    binary = tmp_path / "params.yaml"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe")
    with pytest.raises(ParamsError, match="not a text file"):
        load_base(binary)
    dup = tmp_path / "dup.yaml"
    dup.write_text("base:\n  seeds: [0]\n  seeds: [1]\n  sample_rate: 8000\n")
    with pytest.raises(ParamsError, match=r"dup.yaml: duplicate key 'seeds' \(line 3\)"):
        load_base(dup)


def test_cuda_without_cuda_names_runtime_device(tmp_path: Path) -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(ParamsError, match="runtime.device: 'cuda' requested but no CUDA"):
        select_device(load_section(write_params(tmp_path / "p.yaml", {"runtime": {
            "device": "cuda"}}), "runtime", RuntimeParams).device)


def test_a_stage_error_is_one_line_without_traceback(tmp_path: Path) -> None:
    bad = write_params(tmp_path / "params.yaml", {"train": {"epochs": 0}})
    proc = subprocess.run([sys.executable, "-m", "stages.train", "--params", str(bad), "--songs",
                           str(tmp_path / "l.json"), "--valid", str(tmp_path / "v"), "--seed", "0",
                           "--out", str(tmp_path / "m")], cwd=ROOT, capture_output=True,
                          text=True)
    assert proc.returncode == 1
    errors = [line for line in proc.stderr.splitlines() if "error" in line.lower()
              and " INFO " not in line]  # the log says which params file it read
    assert errors == ["error: train: train.epochs: must be in [1, 100000], got 0"], proc.stderr
    assert "Traceback" not in proc.stderr


# --- clean: arguments first, from any directory, the baseline kept -----------------------------

def test_clean_checks_arguments_before_heavy_imports(tmp_path: Path) -> None:
    code = ("import sys\nfrom stages.tools import clean\ntry:\n    clean.main(sys.argv[1:])\n"
            "except SystemExit as e:\n    print(e.code, '|', 'openunmix' in sys.modules)\n")
    write_stems(tmp_path / "songs" / "a", tone_stems(seconds=0.5))
    for args, message in ((["--ratio", "half"], "--ratio 'half'"),
                          (["--reference", str(tmp_path / "nowhere")], "nowhere: dataset folder")):
        argv = ["--songs", str(tmp_path / "songs"), "--reference", str(tmp_path / "songs"),
                "--out", str(tmp_path / "out"), *args]
        out = subprocess.run([sys.executable, "-c", code, *argv], cwd=ROOT, capture_output=True,
                             text=True).stdout
        assert out.startswith("error: clean: ") and message in out and out.endswith("| False\n")
        assert not (tmp_path / "out").exists()
    usage = subprocess.run([sys.executable, "-m", "stages.tools.clean", "--help"], cwd=tmp_path,
                           capture_output=True, text=True, env={**os.environ,
                                                                "PYTHONPATH": str(ROOT)}).stdout
    assert usage.startswith("usage: python -m stages.tools.clean")


def test_clean_reference_too_short_fails_before_training(tmp_path: Path) -> None:
    for i in range(3):
        write_stems(tmp_path / "songs" / f"s{i}", tone_stems(seconds=1.0, seed=i))
    write_stems(tmp_path / "ref" / "r0", tone_stems(seconds=0.2, seed=7))
    params = write_params(tmp_path / "p.yaml", TINY_YAML)
    with pytest.raises(SystemExit, match=r"r0/\w+.wav: 0.20 s, shorter than "
                                         r"attribute.excerpt_seconds \(0.5 s\)"):
        clean.main(["--params", str(params), "--songs", str(tmp_path / "songs"), "--reference",
                    str(tmp_path / "ref"), "--method", "unlearn", "--out", str(tmp_path / "o")])
    assert not (tmp_path / "o" / "baseline").exists()


@pytest.mark.slow
def test_clean_keeps_its_baseline_and_its_list_trains_from_elsewhere(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    for i in range(4):
        write_stems(tmp_path / "songs" / f"s{i}", tone_stems(seconds=1.0, seed=i))
    write_stems(tmp_path / "ref" / "r0", tone_stems(seconds=1.0, seed=7))
    params = write_params(tmp_path / "p.yaml", TINY_YAML)
    argv = ["--params", str(params), "--songs", str(tmp_path / "songs"), "--reference",
            str(tmp_path / "ref"), "--method", "unlearn", "--ratio", "0.5", "--out",
            str(tmp_path / "o"), "--quiet"]
    clean.main(argv)
    first = (tmp_path / "o" / "baseline" / "vocals.pth").read_bytes()
    capsys.readouterr()
    clean.main(argv)  # the same songs, params and seed: the baseline is not trained again
    assert "baseline: reusing" in capsys.readouterr().err
    assert (tmp_path / "o" / "baseline" / "vocals.pth").read_bytes() == first
    monkeypatch.chdir(tmp_path / "ref")  # kept.json names its songs relative to itself
    train.main(["--params", str(params), "--songs", "../o/kept.json", "--valid", ".", "--seed",
                "0", "--out", str(tmp_path / "model"), "--quiet"])
    info = json.loads((tmp_path / "model" / "model.json").read_text())
    assert info["targets"]["vocals"]["n_songs"] == 2


@pytest.mark.slow
def test_killing_a_training_leaves_no_worker_behind(tmp_path: Path) -> None:
    for i in range(2):
        write_stems(tmp_path / "songs" / f"s{i}", tone_stems(seconds=1.0, seed=i))
    songlist.main(["--songs", str(tmp_path / "songs"), "--out", str(tmp_path / "l.json")])
    params = write_params(tmp_path / "p.yaml", {**TINY_YAML, "train": {**TINY_YAML["train"],
                                                                       "epochs": 10_000},
                                                "runtime": {"workers": 2}})
    proc = subprocess.Popen([sys.executable, "-m", "stages.train", "--params", str(params),
                             "--songs", str(tmp_path / "l.json"), "--valid",
                             str(tmp_path / "songs"), "--seed", "0", "--out",
                             str(tmp_path / "m"), "--checkpoints", str(tmp_path / "ck"),
                             "--quiet"], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def descendants() -> dict[int, str]:
        """Every process below the stage (``{pid: name}``): the fork server, the resource
        tracker and the workers the server forked."""
        parents: dict[int, int] = {}
        names: dict[int, str] = {}
        for status in Path("/proc").glob("[0-9]*/status"):
            try:
                fields = dict(line.split(":\t", 1) for line in status.read_text().splitlines()
                              if ":\t" in line)
            except OSError:
                continue
            pid = int(status.parent.name)
            parents[pid], names[pid] = int(fields.get("PPid", "0")), fields.get("Name", "")
        below, grown = {proc.pid}, True
        while grown:
            new = {pid for pid, parent in parents.items() if parent in below} - below
            below |= new
            grown = bool(new)
        return {pid: names[pid] for pid in below - {proc.pid}}

    def running(pid: int) -> bool:
        return Path(f"/proc/{pid}").exists() and "zombie" not in Path(
            f"/proc/{pid}/status").read_text()

    deadline = time.time() + 120
    while time.time() < deadline and not (tmp_path / "ck" / "vocals.pt").exists():
        time.sleep(0.2)  # until a worker has finished an epoch: mid-training
    assert (tmp_path / "ck" / "vocals.pt").exists(), "the training never got going"
    workers = descendants()
    assert len(workers) >= 3, f"expected a fork server and 2 workers, got {workers}"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    deadline = time.time() + 30
    while time.time() < deadline and any(running(p) for p in workers):
        time.sleep(0.2)
    alive = [p for p in workers if running(p)]
    assert alive == [], f"workers {alive} outlived their killed parent"
