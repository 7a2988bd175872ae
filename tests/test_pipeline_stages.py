"""Smoke tests: conditions -> train -> evaluate -> aggregate run end to end on seconds of audio."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from conftest import tone_stems, write_params, write_stems

from stages import aggregate, conditions, evaluate, train
from stages.lib.params import TARGETS

SR = 8000


def _params(tmp: Path, workers: int = 1) -> Path:
    path = tmp / "params.yaml"
    write_params(path, {
        "base": {"seeds": [0, 1], "sample_rate": SR, "targets": list(TARGETS)},
        "train": {"model": {"n_fft": 256, "hop": 128, "hidden_size": 8, "bandwidth_hz": 3500.0},
                  "sampler": {"excerpt_seconds": 0.5}, "epochs": 2, "batch_size": 4,
                  "steps_per_epoch": 3},
        "runtime": {"device": "cpu", "workers": workers},
        "cleaning": {"methods": ["fad"], "ratios": [0.5], "random_ratios": [0.5],
                     "random_draws": [0, 1]},
    })
    return path


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    truth = {"tracks": []}
    for i in range(4):
        name = f"song{i}"
        write_stems(tmp_path / "mixed" / name, tone_stems(seconds=1.0, seed=i))
        truth["tracks"].append({"name": name, "corruption": "clean" if i < 2 else "bleeding"})
    (tmp_path / "truth.json").write_text(json.dumps(truth))
    for split, seed in (("reference", 10), ("test", 20)):
        write_stems(tmp_path / split / f"{split}0", tone_stems(seconds=1.0, seed=seed))
    conditions.main(["--dataset", str(tmp_path / "mixed"), "--truth", str(tmp_path / "truth.json"),
                     "--reference", str(tmp_path / "reference"), "--out", str(tmp_path / "lists")])
    return tmp_path


def test_conditions_lists(dataset: Path) -> None:
    clean = json.loads((dataset / "lists" / "clean_only.json").read_text())["songs"]
    assert [Path(p).name for p in clean["vocals"]] == ["song0", "song1"]
    everything = json.loads((dataset / "lists" / "contaminated.json").read_text())["songs"]
    assert len(everything["drums"]) == 4


@pytest.mark.slow
def test_train_evaluate_aggregate(dataset: Path) -> None:
    params = _params(dataset)
    for condition in ("contaminated", "clean_only"):
        for seed in (0, 1):
            out = dataset / "models" / condition / f"seed{seed}"
            train.main(["--params", str(params), "--songs", str(dataset / "lists" /
                        f"{condition}.json"), "--valid", str(dataset / "reference"),
                        "--seed", str(seed), "--out", str(out), "--quiet",
                        "--checkpoints", str(dataset / "ckpt"), "--live", str(dataset / "live")])
        evaluate.main(["--params", str(params), "--models", str(dataset / "models" / condition),
                       "--seeds-from", "base.seeds", "--test", str(dataset / "test"),
                       "--scores", str(dataset / f"scores_{condition}.json"),
                       "--metrics", str(dataset / "runs" / f"{condition}.json"), "--quiet"])
    info = json.loads((dataset / "models" / "clean_only" / "seed0" / "model.json").read_text())
    assert set(info["targets"]) == set(TARGETS) and info["targets"]["bass"]["n_songs"] == 2
    assert not (dataset / "ckpt").exists()  # checkpoints are dropped after success
    summary = json.loads((dataset / "live" / "vocals" / "metrics.json").read_text())
    last = json.loads((dataset / "models" / "clean_only" / "seed1" / "model.json").read_text())
    history = last["targets"]["vocals"]["history"]  # the last training's log: every epoch
    assert summary["step"] == len(history) - 1 and summary["valid_loss"] == history[-1]["valid_loss"]
    sidecar = json.loads((dataset / "models" / "clean_only" / "seed0" / "sidecar.json").read_text())
    assert sidecar["seed"] == 0 and "torch" in sidecar["versions"]
    runs = json.loads((dataset / "runs" / "contaminated.json").read_text())
    assert set(runs) == {"seed0", "seed1"}
    assert runs["seed0"]["n_songs"] == 1 and "museval_sdr_db_vocals" in runs["seed0"]
    assert runs["seed0"] != runs["seed1"]  # two models, scored separately
    songs = json.loads((dataset / "scores_contaminated.json").read_text())
    assert [row["song"] for row in songs["seed1"]["songs"]] == ["test0"]
    clean = dataset / "runs" / "clean_only.json"  # a seed left by an older configuration:
    clean.write_text(json.dumps({**json.loads(clean.read_text()), "seed7": {"mdx_sdr_db_avg": 99.0}}))
    with pytest.raises(SystemExit, match=r"unified/fad_r0.5.json: run metrics of a cleaned"):
        aggregate.main(["--params", str(params), "--dataset", "mixed23", "--runs",
                        str(dataset / "runs"), "--out", str(dataset / "agg.json")])
    (dataset / "runs" / "unified").mkdir()  # the cleaned cell (fad at 0.5): the clean part's runs
    shutil.copyfile(clean, dataset / "runs" / "unified" / "fad_r0.5.json")
    with pytest.raises(SystemExit, match=r"random_r0.5.json: run seed0 of a random-control draw"):
        aggregate.main(["--params", str(params), "--dataset", "mixed23", "--runs",
                        str(dataset / "runs"), "--out", str(dataset / "agg.json")])
    # the random control: one run per draw (draw 3 is not in random_draws: ignored)
    (dataset / "runs" / "random_r0.5.json").write_text(json.dumps({
        f"seed{draw}": {**runs["seed0"], "mdx_sdr_db_avg": value}
        for draw, value in ((0, 1.0), (1, 2.0), (3, 99.0))}))
    aggregate.main(["--params", str(params), "--dataset", "mixed23", "--runs",
                    str(dataset / "runs"), "--out", str(dataset / "agg.json")])
    agg = json.loads((dataset / "agg.json").read_text())
    assert agg["conditions"]["clean_only"]["mdx_sdr_db_avg"]["n"] == 2
    assert "clean_only_minus_contaminated_mdx_sdr_db_avg" in agg["margins"]
    assert agg["conditions"]["random_r0.5"]["mdx_sdr_db_avg"] == {"mean": 1.5, "std": 0.5 ** 0.5,
                                                                  "n": 2}
    assert "random_r0.5_minus_contaminated_mdx_sdr_db_avg" in agg["margins"]
    assert agg["conditions"]["fad_r0.5"] == agg["conditions"]["clean_only"]
    # a set without its own clean_only runs borrows them (EffectsDB shares Mixed23's clean songs)
    (dataset / "edb").mkdir()
    for condition in ("contaminated", "random_r0.5", "unified/fad_r0.5"):
        (dataset / "edb" / condition).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(dataset / "runs" / f"{condition}.json", dataset / "edb" / f"{condition}.json")
    aggregate.main(["--params", str(params), "--dataset", "effectsdb", "--runs",
                    str(dataset / "edb"), "--baselines", str(dataset / "runs"), "--out",
                    str(dataset / "agg_edb.json")])
    edb = json.loads((dataset / "agg_edb.json").read_text())
    assert edb["conditions"]["clean_only"] == agg["conditions"]["clean_only"]
    assert edb["margins"] == agg["margins"]


@pytest.mark.slow
def test_parallel_training_equals_serial(dataset: Path) -> None:
    outs = []
    for workers in (1, 2):
        out = dataset / f"models_w{workers}"
        train.main(["--params", str(_params(dataset, workers)), "--songs",
                    str(dataset / "lists" / "contaminated.json"), "--valid",
                    str(dataset / "reference"), "--seed", "0", "--out", str(out), "--quiet"])
        outs.append(out)
    for target in TARGETS:
        a = torch.load(outs[0] / f"{target}.pth", weights_only=True)
        b = torch.load(outs[1] / f"{target}.pth", weights_only=True)
        assert all(torch.equal(a[k], b[k]) for k in a)


def test_evaluate_needs_models_or_trivial(dataset: Path) -> None:
    with pytest.raises(SystemExit, match="exactly one of"):
        evaluate.main(["--params", str(_params(dataset)), "--test", str(dataset / "test"),
                       "--scores", str(dataset / "s.json"), "--metrics", str(dataset / "m.json")])
    with pytest.raises(SystemExit, match="--models goes with --seeds-from"):
        evaluate.main(["--params", str(_params(dataset)), "--test", str(dataset / "test"),
                       "--models", str(dataset / "models"),
                       "--scores", str(dataset / "s.json"), "--metrics", str(dataset / "m.json")])
    # a missing seed's model is named before any model is loaded; nothing is written
    (dataset / "models" / "seed0").mkdir(parents=True)
    with pytest.raises(SystemExit, match=r"error: evaluate: .*models/seed0/model.json: not found"):
        evaluate.main(["--params", str(_params(dataset)), "--test", str(dataset / "test"),
                       "--models", str(dataset / "models"), "--seeds-from", "cleaning.random_draws",
                       "--scores", str(dataset / "s.json"), "--metrics", str(dataset / "m.json")])
    assert not (dataset / "s.json").exists() and not (dataset / "m.json").exists()
    evaluate.main(["--params", str(_params(dataset)), "--trivial", "--test", str(dataset / "test"),
                   "--scores", str(dataset / "s.json"), "--metrics", str(dataset / "m.json")])
    assert json.loads((dataset / "m.json").read_text())["n_songs"] == 1


def test_train_rejects_bad_song_list(dataset: Path) -> None:
    bad = dataset / "bad.json"
    bad.write_text(json.dumps({"songs": {"vocals": []}}))
    with pytest.raises(SystemExit, match="needs a 'songs' mapping"):
        train.main(["--params", str(_params(dataset)), "--songs", str(bad), "--valid",
                    str(dataset / "reference"), "--seed", "0", "--out", str(dataset / "m")])
    assert not (dataset / "m").exists()


@pytest.mark.slow
def test_an_identical_training_is_copied_not_run_again(dataset: Path,
                                                        capsys: pytest.CaptureFixture) -> None:
    """--reuse: a kept list equal by content to a baseline's (songs copied to another dataset
    folder) is that baseline's training; one changed sample or seed is not."""
    params = _params(dataset)
    base = dataset / "models" / "clean_only"
    train.main(["--params", str(params), "--songs", str(dataset / "lists" / "clean_only.json"),
                "--valid", str(dataset / "reference"), "--seed", "0", "--out", str(base),
                "--quiet"])
    for name in ("song0", "song1"):  # the same songs in another dataset, as EffectsDB holds them
        shutil.copytree(dataset / "mixed" / name, dataset / "other" / name)
    kept = dataset / "kept.json"
    kept.write_text(json.dumps({"songs": {t: ["other/song0", "other/song1"] for t in TARGETS}}))

    def run(out: str, seed: int = 0) -> str:
        capsys.readouterr()
        train.main(["--params", str(params), "--songs", str(kept), "--valid",
                    str(dataset / "reference"), "--seed", str(seed), "--out",
                    str(dataset / out), "--reuse", str(dataset / "models" / "absent"),
                    "--reuse", str(base), "--quiet"])
        return capsys.readouterr().err

    assert "holds this very training" in run("copied")
    copied = dataset / "copied"
    for target in TARGETS:
        assert (copied / f"{target}.pth").read_bytes() == (base / f"{target}.pth").read_bytes()
    assert json.loads((copied / "sidecar.json").read_text())["reused"] == str(base)
    assert "holds this very training" not in run("seed1", seed=1)
    audio = dataset / "other" / "song1" / "bass.wav"
    data = bytearray(audio.read_bytes())
    data[-1] ^= 1  # one bit of one sample
    audio.write_bytes(bytes(data))
    assert "holds this very training" not in run("retrained")
    retrained = dataset / "retrained"
    info = json.loads((retrained / "model.json").read_text())
    assert info["training_key"] != json.loads((base / "model.json").read_text())["training_key"]
