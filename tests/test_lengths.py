"""The training-length study: a snapshot is what a run of that length keeps; the report."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import params_of, tone_stems, write_stems
from scipy.stats import t

from stages.lib.lengths import SnapshotJob, check_epochs, length_report, run_snapshot_job
from stages.lib.params import TARGETS, ParamsError
from stages.lib.songs import SongTable
from stages.lib.unmix import Loading, TrainParams, train_target
from stages.tools import length_study

SR = 8000
TINY = params_of(TrainParams, "train",
                 model={"n_fft": 256, "hop": 128, "hidden_size": 8, "bandwidth_hz": 3500.0},
                 sampler={"excerpt_seconds": 0.5, "samples_per_track": 2},
                 epochs=3, batch_size=4, steps_per_epoch=3, lr=0.01)


@pytest.mark.parametrize("patience", [80, 0])  # 0: the learning rate decays inside the run
def test_a_snapshot_is_what_a_run_of_that_length_keeps(tmp_path: Path, patience: int) -> None:
    params = dataclasses.replace(TINY, lr_decay_patience=patience)
    songs = [str(write_stems(tmp_path / f"s{i}", tone_stems(seconds=1.5, seed=i)))
             for i in range(3)]
    valid = (str(write_stems(tmp_path / "v0", tone_stems(seconds=1.0, seed=9))),)
    song_list = tmp_path / "songs.json"
    song_list.write_text(json.dumps({"songs": {t: songs for t in TARGETS}}))
    job = SnapshotJob(condition="toy/contaminated", songs=song_list, valid=valid, target="bass",
                      seed=4, epochs=(1, 3), params=params, sample_rate=SR,
                      threads=torch.get_num_threads(), device="cpu",
                      loading=Loading(workers=0, preload_mib=0), work=tmp_path / "work")
    table, valid_table = SongTable.open(songs, SR), SongTable.open(valid, SR)
    stale = tmp_path / "work" / "checkpoints" / "toy/contaminated" / "seed4" / "bass.pt"
    stale.parent.mkdir(parents=True)
    train_target(table, np.arange(3), valid_table, "bass", dataclasses.replace(params, epochs=3),
                 4, torch.device("cpu"), checkpoint=stale, quiet=True, stop_after=2)
    losses = run_snapshot_job(job)  # an interrupted attempt's checkpoint (2 epochs) is not resumed
    assert sorted(losses) == [1, 3]
    for epochs in (1, 3):
        alone = train_target(table, np.arange(3), valid_table, "bass",
                             dataclasses.replace(params, epochs=epochs), 4, torch.device("cpu"),
                             quiet=True)
        snapshot = torch.load(job.snapshot(epochs), weights_only=True)
        assert all(torch.equal(snapshot[k], v) for k, v in alone.state_dict.items()), epochs
        assert losses[epochs] == alone.best_valid_loss
    assert not stale.exists()


def test_snapshot_epochs() -> None:
    assert check_epochs([20, 5, 10, 5], TINY, "cpu") == (5, 10, 20)
    with pytest.raises(ParamsError, match="--epochs: give epoch counts >= 1"):
        check_epochs([0, 5], TINY, "cpu")


def test_the_report_pairs_conditions_with_their_baseline_by_seed() -> None:
    key = "museval_sdr_db_avg"
    base = {5: {0: 1.0, 1: 2.0, 2: 3.0}, 10: {0: 2.0, 1: 2.5, 2: 3.0}}
    cleaned = {5: {0: 1.5, 1: 2.6, 2: 3.7}, 10: {0: 1.0, 1: 2.4, 2: 3.2}}
    runs = {c: {e: {s: {key: v} for s, v in by.items()} for e, by in values.items()}
            for c, values in (("toy/contaminated", base), ("toy/cleaned", cleaned))}
    report = length_report(runs, (5, 10), "contaminated", key, {"toy/cleaned seed 0": True})
    assert "| toy/contaminated | 2.00 ± 1.00 (3) | 2.50 ± 0.50 (3) |" in report
    diffs = np.array([0.5, 0.6, 0.7])
    half = t.ppf(0.975, 2) * diffs.std(ddof=1) / np.sqrt(3)
    at5 = f"+{diffs.mean():.2f} [{diffs.mean() - half:+.2f}, {diffs.mean() + half:+.2f}]"
    row = next(line for line in report.splitlines() if line.startswith("| toy/cleaned − "))
    assert row.split(" | ")[1] == at5
    assert row.split(" | ")[2].endswith("*inside the noise* |")  # -1.0, -0.1, +0.2
    assert "- toy, 5 epochs: cleaned (2.60) > contaminated (2.00)" in report
    assert "- toy, 10 epochs: contaminated (2.50) > cleaned (2.20)" in report
    assert "- toy/cleaned seed 0: bit-identical" in report


@pytest.mark.parametrize(("extra", "message"), [
    (["--condition", "contaminated=list.json"],
     "--condition 'contaminated=list.json': expected <dataset>/<name>=<song-list.json>"),
    (["--condition", "../x=list.json"], "--condition '../x=list.json': expected <dataset>/<name>"),
    (["--condition", "toy/a=missing.json"], "--condition toy/a: missing.json: file not found"),
    (["--condition", "toy/a={bad}", "--condition", "toy/a={bad}"], "--condition toy/a: given twice"),
    (["--condition", "toy/a={bad}"], "--condition toy/a: {bad}: needs a 'songs' mapping"),
    (["--condition", "toy/a={bad}", "--seeds", "0", "0"], "--seeds [0, 0]: a seed given twice"),
])
def test_bad_input_is_one_error_line_before_any_training(tmp_path: Path, extra: list[str],
                                                         message: str) -> None:
    test = write_stems(tmp_path / "test" / "t0", tone_stems(seconds=1.0)).parent
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"songs": {}}))
    args = [a.replace("{bad}", str(bad)) for a in extra]
    if "--seeds" not in args:
        args += ["--seeds", "0"]
    with pytest.raises(SystemExit) as stop:
        length_study.main([*args, "--epochs", "5", "--valid", str(test), "--test", str(test),
                           "--work", str(tmp_path / "work"), "--out", str(tmp_path / "out")])
    assert str(stop.value.code).startswith(f"error: length_study: {message.replace('{bad}', str(bad))}")
    assert not (tmp_path / "work").exists() and not (tmp_path / "out").exists()


def test_the_work_folder_and_the_report_never_overlap(tmp_path: Path) -> None:
    test = write_stems(tmp_path / "test" / "t0", tone_stems(seconds=1.0)).parent
    with pytest.raises(SystemExit) as stop:
        length_study.main(["--condition", "toy/a=x.json", "--epochs", "5", "--seeds", "0",
                           "--valid", str(test), "--test", str(test),
                           "--work", str(tmp_path / "out" / "work"), "--out", str(tmp_path / "out")])
    assert "output --out overlaps output --work" in str(stop.value.code)
