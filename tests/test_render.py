"""Rendering: audible, distinct, summing stems; determinism; disjoint splits; the stage itself."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import params_of, write_params

from stages.lib.audio import stem_sum
from stages.lib.params import TARGETS
from stages.lib.readers import iter_folder_dataset
from stages.lib.render import (
    RenderParams,
    assign_pieces,
    corpus_paths,
    default_soundfont,
    load_score,
    plan_song,
    render_song,
)

SR = 22050
PARAMS = params_of(RenderParams, "render", n_train=2, n_reference=1, n_test=1, excerpt_seconds=3.0)


@pytest.fixture(scope="module")
def score():
    for path in corpus_paths():
        parsed = load_score(path)
        if parsed is not None:
            return parsed
    pytest.fail("no four-voice chorale in music21's corpus")


def _render(score, params=PARAMS):
    plan = plan_song(score, "train", params)
    return render_song(score, plan, params, SR, default_soundfont()), plan


def test_stems_audible_distinct_and_summing(score) -> None:
    track, plan = _render(score)
    assert track.num_samples == int(PARAMS.excerpt_seconds * SR)
    rms = {t: float(np.sqrt(np.mean(track.stems[t] ** 2))) for t in TARGETS}
    assert all(v > 1e-3 for v in rms.values()), rms
    for i, a in enumerate(TARGETS):
        for b in TARGETS[i + 1:]:
            corr = np.corrcoef(track.stems[a][0], track.stems[b][0])[0, 1]
            assert abs(corr) < 0.9, (a, b, corr)
    np.testing.assert_array_equal(track.mixture, stem_sum(track.stems))
    assert np.max(np.abs(track.mixture)) == pytest.approx(PARAMS.mixture_peak, rel=1e-5)
    assert plan.programs["vocals"][0] in PARAMS.vocals_programs


def test_render_is_deterministic_and_seed_dependent(score) -> None:
    first, _ = _render(score)
    again, _ = _render(score)
    other, _ = _render(score, replace(PARAMS, seed=1))
    for target in TARGETS:
        np.testing.assert_array_equal(first.stems[target], again.stems[target])
    assert not np.array_equal(first.mixture, other.mixture)


def test_splits_are_disjoint() -> None:
    splits = assign_pieces(params_of(RenderParams, "render", n_train=5, n_reference=3, n_test=3))
    pieces = [s.piece for scores in splits.values() for s in scores]
    assert len(pieces) == len(set(pieces)) == 11
    assert {k: len(v) for k, v in splits.items()} == {"train": 5, "reference": 3, "test": 3}


@pytest.fixture(scope="module")
def polyphony():
    """A five-voice Palestrina piece (the second corpus' rule: top, inner and lowest voices)."""
    for path in corpus_paths("palestrina"):
        parsed = load_score(path, "outer")
        if parsed is not None and len(parsed.parts) == 5:
            return parsed
    pytest.fail("no five-voice Palestrina piece in music21's corpus")


def test_outer_voices_map_top_inner_and_lowest(polyphony) -> None:
    assert [stem for stem, _ in polyphony.parts] == ["vocals", "other", "other", "other", "bass"]
    params = replace(PARAMS, voices="outer", corpus="palestrina")
    track, plan = _render(polyphony, params)
    rms = {t: float(np.sqrt(np.mean(track.stems[t] ** 2))) for t in TARGETS}
    assert all(v > 1e-3 for v in rms.values()), rms
    np.testing.assert_array_equal(track.mixture, stem_sum(track.stems))
    # the inner voices alternate between the two drawn `other` patches
    assert len(plan.programs["other"]) == 2


def test_stem_levels_scale_each_stem_by_its_drawn_gain(score) -> None:
    flat, flat_plan = _render(score)
    levelled, plan = _render(score, replace(PARAMS, stem_level_db=6.0))
    assert "stem_level_db" not in flat_plan.extra  # the default draws nothing more
    levels = plan.extra["stem_level_db"]
    assert all(-6.0 <= v <= 6.0 for v in levels.values()) and len(set(levels.values())) == 4
    for target in TARGETS:  # both renders are scaled to the same mixture peak afterwards
        expected = 10 ** (levels[target] / 20) * plan.gain / flat_plan.gain
        ratio = np.sqrt(np.sum(levelled.stems[target] ** 2) / np.sum(flat.stems[target] ** 2))
        assert ratio == pytest.approx(expected, rel=1e-4)
    for key in ("tempo_bpm", "transpose", "programs", "velocity", "pan", "excerpt_start_s"):
        assert getattr(plan, key) == getattr(flat_plan, key)  # the other draws are unchanged


@pytest.mark.slow
def test_render_stage_end_to_end(tmp_path: Path) -> None:
    from stages import render

    params = tmp_path / "params.yaml"
    write_params(params, {
        "base": {"seeds": [0], "sample_rate": SR, "targets": list(TARGETS)},
        "render": {"n_train": 2, "n_reference": 1, "n_test": 1, "excerpt_seconds": 2.0},
    })
    out = tmp_path / "rendered"
    render.main(["--params", str(params), "--out", str(out), "--cost", str(tmp_path / "c.json"),
                 "--quiet"])
    manifest = json.loads((out / "manifest.json").read_text())
    assert [r["split"] for r in manifest["tracks"]] == ["train", "train", "reference", "test"]
    tracks = list(iter_folder_dataset(out / "train", SR))
    assert len(tracks) == 2 and tracks[0].num_samples == 2 * SR
    assert json.loads((tmp_path / "c.json").read_text())["songs"] == 4
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp leftovers
    # keys at their neutral values stay out of the manifest (its bytes are a cache key)
    assert not {"corpus", "voices", "stem_level_db", "subtype"} & set(manifest["params"])
    assert sf.info(out / "train" / tracks[0].name / "vocals.wav").subtype == "FLOAT"


def test_render_stage_stores_16_bit_and_refuses_to_clip(tmp_path: Path) -> None:
    from stages import render

    params = tmp_path / "params.yaml"
    section = {"n_train": 1, "n_reference": 1, "n_test": 1, "excerpt_seconds": 2.0,
               "subtype": "PCM_16", "stem_level_db": 3.0}
    base = {"seeds": [0], "sample_rate": SR, "targets": list(TARGETS)}
    write_params(params, {"base": base, "render": section})
    out = tmp_path / "rendered"
    render.main(["--params", str(params), "--out", str(out), "--quiet"])
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["params"]["subtype"] == "PCM_16" and manifest["params"]["stem_level_db"] == 3.0
    song = next((out / "train").iterdir())
    assert {sf.info(f).subtype for f in song.glob("*.wav")} == {"PCM_16"}
    track = next(iter(iter_folder_dataset(out / "train", SR)))
    stems = {t: track.stems[t] for t in TARGETS}
    assert all(np.array_equal(np.round(s * 32768), s * 32768) for s in stems.values())  # quantised

    write_params(params, {"base": base, "render": dict(section, mixture_peak=1.0)})
    with pytest.raises(SystemExit, match=r"error: render: render.subtype: PCM_16 would clip"):
        render.main(["--params", str(params), "--out", str(tmp_path / "r2"), "--quiet"])
    assert not (tmp_path / "r2").exists()


def test_render_reads_real_reference_and_test_splits(tmp_path: Path) -> None:
    """The paper profile's path: reference / test splits come from real folders (resampled to
    the benchmark's rate), only the training pool is rendered; a missing root names its key."""
    from conftest import tone_stems, write_stems

    from stages import render

    for i, name in enumerate(("musdb_b", "musdb_a", "musdb_c")):
        write_stems(tmp_path / "musdb_test" / name, tone_stems(2.5, 8000, seed=i))
    spec = {"kind": "folder", "root": str(tmp_path / "musdb_test")}
    params = tmp_path / "params.yaml"
    write_params(params, {
        "base": {"seeds": [0], "sample_rate": SR, "targets": list(TARGETS)},
        "render": {"n_train": 1, "n_reference": 2, "n_test": 1, "excerpt_seconds": 2.0,
                   "real_reference": spec}})
    out = tmp_path / "rendered"
    render.main(["--params", str(params), "--out", str(out), "--quiet"])
    manifest = json.loads((out / "manifest.json").read_text())
    assert [(r["split"], r["name"]) for r in manifest["tracks"]][:2] == [
        ("reference", "musdb_a"), ("reference", "musdb_b")]  # the first two, sorted
    assert manifest["tracks"][0]["source"] == f"folder:{tmp_path / 'musdb_test'}"
    reference = list(iter_folder_dataset(out / "reference", SR))
    assert [t.name for t in reference] == ["musdb_a", "musdb_b"]
    assert reference[0].num_samples == int(2.5 * SR)  # resampled from 8 kHz, full length
    assert len(list(iter_folder_dataset(out / "test", SR))) == 1  # still rendered
    assert len(list(iter_folder_dataset(out / "train", SR))) == 1

    missing = dict(spec, root=str(tmp_path / "nowhere"))
    write_params(params, {
        "base": {"seeds": [0], "sample_rate": SR, "targets": list(TARGETS)},
        "render": {"n_train": 1, "n_reference": 1, "n_test": 1, "real_test": missing}})
    with pytest.raises(SystemExit, match=r"error: render: render.real_test.root: .*nowhere not found"):
        render.main(["--params", str(params), "--out", str(tmp_path / "r2"), "--quiet"])
    assert not (tmp_path / "r2").exists()  # nothing half-written


def test_pieces_sharing_a_name_are_rendered_once(monkeypatch, score) -> None:
    """A piece's name is its song folder: a second file of the same name (Bach's corpus has
    bwv277 twice) is skipped, never written over the first or into another split."""
    from stages.lib import render

    paths = [Path(f"{i}/bwv1.mxl") for i in range(10)] + [Path("x/bwv2.mxl"), Path("y/bwv3.mxl")]
    monkeypatch.setattr(render, "corpus_paths", lambda composer: paths)
    monkeypatch.setattr(render, "load_score",
                        lambda path, voices: replace(score, piece=path.stem))
    splits = assign_pieces(params_of(RenderParams, "render", n_train=1, n_reference=1, n_test=1))
    names = [s.piece for scores in splits.values() for s in scores]
    assert sorted(names) == ["bwv1", "bwv2", "bwv3"]
