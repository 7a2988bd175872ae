"""Scoring stages on tiny data: embed -> fad_scores / mlp_scores, attribute; score tables; MLP."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import params_of, tone_stems, write_params, write_stems

from stages import attribute, embed, fad_scores, mlp_scores, train
from stages.lib.mlp import MLPParams, class_probabilities, frame_accuracy, train_classifier
from stages.lib.params import TARGETS
from stages.lib.scores import ScoreTable
from stages.lib.songs import song_list_for

SR = 8000


def _params(tmp: Path) -> Path:
    path = tmp / "params.yaml"
    write_params(path, {
        "base": {"seeds": [0], "sample_rate": SR, "targets": list(TARGETS)},
        "embed": {"frame_seconds": 0.05, "n_mels": 16},
        "fad_scores": {}, "mlp_scores": {"epochs": 30},
        "train": {"model": {"n_fft": 256, "hop": 128, "hidden_size": 8, "bandwidth_hz": 3500.0},
                  "sampler": {"excerpt_seconds": 0.5}, "epochs": 2, "batch_size": 4,
                  "steps_per_epoch": 3},
        "runtime": {"device": "cpu", "workers": 1},
        "attribute": {"excerpts_per_song": 2, "excerpt_seconds": 0.5,
                      "unlearn": {"alpha": 1.0e-4}},
    })
    return path


@pytest.fixture
def sets(tmp_path: Path) -> Path:
    for i in range(4):
        stems = tone_stems(seconds=1.0, seed=i)
        if i == 3:  # label noise: vocals and bass swapped
            stems["vocals"], stems["bass"] = stems["bass"], stems["vocals"]
        write_stems(tmp_path / "train" / f"song{i}", stems)
    for i in range(2):
        write_stems(tmp_path / "reference" / f"ref{i}", tone_stems(seconds=1.0, seed=10 + i))
        write_stems(tmp_path / "test" / f"test{i}", tone_stems(seconds=1.0, seed=20 + i))
    params = _params(tmp_path)
    for name in ("train", "reference", "test"):
        embed.main(["--params", str(params), "--dataset", str(tmp_path / name), "--out",
                    str(tmp_path / "emb" / name), "--quiet"])
    return tmp_path


def test_embed_store_layout(sets: Path) -> None:
    song = sets / "emb" / "train" / "song0"
    assert sorted(p.name for p in song.iterdir()) == sorted(f"{t}.npy" for t in
                                                             (*TARGETS, "mixture"))
    assert np.load(song / "vocals.npy").dtype == np.float16


def test_fad_scores_flag_the_swapped_song(sets: Path) -> None:
    fad_scores.main(["--params", str(_params(sets)), "--train", str(sets / "emb" / "train"),
                     "--reference", str(sets / "emb" / "reference"), "--out", str(sets / "fad")])
    table = ScoreTable.read(sets / "fad" / "scores.csv")
    assert table.songs == ["song0", "song1", "song2", "song3"]
    assert int(np.argmin(table.unified)) == 3  # the label-noise song is the least reference-like
    assert table.ranks()[3] == 4


def test_mlp_scores_and_accuracy(sets: Path) -> None:
    mlp_scores.main(["--params", str(_params(sets)), "--reference", str(sets / "emb" / "reference"),
                     "--heldout", str(sets / "emb" / "test"), "--train", str(sets / "emb" / "train"),
                     "--out", str(sets / "mlp"), "--metrics", str(sets / "mlp.json")])
    assert json.loads((sets / "mlp.json").read_text())["heldout_frame_accuracy"] > 0.75
    table = ScoreTable.read(sets / "mlp" / "scores.csv")
    assert int(np.argmin(table.per_target["vocals"])) == 3


@pytest.mark.slow
def test_attribute_stage(sets: Path) -> None:
    params = _params(sets)
    songs = sets / "songs.json"
    songs.write_text(json.dumps(song_list_for([str(p) for p in sorted((sets / "train").iterdir())],
                                              songs)))
    train.main(["--params", str(params), "--songs", str(songs), "--valid", str(sets / "reference"),
                "--seed", "0", "--out", str(sets / "models"), "--quiet"])
    common = ["--params", str(params), "--models", str(sets / "models"), "--songs", str(songs),
              "--reference", str(sets / "reference"), "--quiet"]
    attribute.main([*common, "--out", str(sets / "alone")])
    attribute.main([*common, "--out", str(sets / "attr"), "--naive-out", str(sets / "naive"),
                    "--loss-out", str(sets / "loss")])
    delta = json.loads((sets / "attr" / "delta.json").read_text())
    assert delta["train_names"] == ["song0", "song1", "song2", "song3"]
    assert np.array(delta["delta"]["vocals"]).shape == (4, 2)
    table = ScoreTable.read(sets / "attr" / "scores.csv")
    unified = np.mean([np.array(delta["delta"][t]).mean(1) for t in TARGETS], axis=0)
    np.testing.assert_allclose(table.unified, unified, rtol=1e-8)
    # the controls change nothing in the Fisher scores, and have their own
    assert (sets / "alone" / "scores.csv").read_bytes() == (sets / "attr" / "scores.csv").read_bytes()
    naive = ScoreTable.read(sets / "naive" / "scores.csv")
    assert naive.songs == table.songs and not np.allclose(naive.unified, table.unified)
    loss = ScoreTable.read(sets / "loss" / "scores.csv")
    assert (loss.per_target["bass"] < 0).all() and loss.songs == table.songs
    for bad in (["--naive-out", str(sets / "attr")], ["--loss-out", str(sets / "attr" / "sub")]):
        with pytest.raises(SystemExit, match="overlaps output --out"):
            attribute.main([*common, "--out", str(sets / "attr"), *bad])
    assert (sets / "alone" / "scores.csv").read_bytes() == (sets / "attr" / "scores.csv").read_bytes()


def test_score_table_roundtrip_and_errors(tmp_path: Path) -> None:
    table = ScoreTable(["a", "b", "c"], {t: np.array([1.0, 2.0, 2.0]) for t in TARGETS},
                       np.array([0.5, 0.1, 0.5]))
    table.write(tmp_path / "s.csv")
    back = ScoreTable.read(tmp_path / "s.csv")
    assert back.songs == ["a", "b", "c"] and list(back.ranks()) == [1, 3, 1]
    (tmp_path / "bad.csv").write_text("song,score\nx,1\n")
    with pytest.raises(ValueError, match="bad.csv: a score table needs"):
        ScoreTable.read(tmp_path / "bad.csv")


def test_classifier_learns_separable_classes() -> None:
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((4, 6)) * 5
    labels = np.repeat(np.arange(4), 50)
    frames = centres[labels] + rng.standard_normal((200, 6))
    model = train_classifier(frames, labels, params_of(MLPParams, "mlp_scores", epochs=40, batch_size=32))
    assert frame_accuracy(model, frames, labels) > 0.95
    probs = class_probabilities(model, frames[labels == 2])
    assert probs.shape == (4,) and probs.argmax() == 2 and probs.sum() == pytest.approx(1.0)


def test_a_silent_stem_scores_finite(tmp_path: Path) -> None:
    """A song with a silent vocals stem (an instrumental) gets finite FAD and MLP scores."""
    from stages.lib.embeddings import EmbedParams, embed_track, make_embedder
    from stages.lib.fad import FADParams, fad_score_table
    from stages.lib.mlp import labelled, mlp_score_table
    from stages.lib.readers import iter_folder_dataset

    silent = tone_stems(seconds=1.0, seed=5)
    silent["vocals"][:] = 0.0
    write_stems(tmp_path / "train" / "instrumental", silent)
    write_stems(tmp_path / "train" / "song", tone_stems(seconds=1.0, seed=6))
    for i in range(2):
        write_stems(tmp_path / "ref" / f"r{i}", tone_stems(seconds=1.0, seed=10 + i))
    embedder = make_embedder(params_of(EmbedParams, "embed", frame_seconds=0.05, n_mels=16))

    def store(name: str) -> dict:
        return {t.name: embed_track(embedder, t) for t in iter_folder_dataset(tmp_path / name, SR)}

    train, ref = store("train"), store("ref")
    for normalize in ("zscore", "none"):
        table = fad_score_table(train, ref, params_of(FADParams, "fad_scores", normalize=normalize))
        assert np.isfinite(table.unified).all()
        assert all(np.isfinite(v).all() for v in table.per_target.values())
    model = train_classifier(*labelled(ref), params_of(MLPParams, "mlp_scores", epochs=5))
    assert np.isfinite(mlp_score_table(model, train).unified).all()
