"""Every reader on tiny generated folders, and one clear error per kind of bad input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import SR, tone_stems, write_stems

from stages.lib.audio import AudioError, Track, read_wav, stem_sum, write_wav
from stages.lib.params import TARGETS
from stages.lib.readers import (
    iter_folder_dataset,
    iter_moisesdb,
    iter_musdb,
    iter_source,
    read_track_folder,
)


def test_write_wav_is_byte_stable_and_lossless(tmp_path: Path) -> None:
    # libsndfile's default float-WAV PEAK chunk stores the write time: two writes of the same
    # samples a second apart would differ in bytes (and so in DVC hash). write_wav leaves it out.
    audio = tone_stems(seconds=0.1)["vocals"]
    write_wav(tmp_path / "a.wav", audio, SR)
    data = (tmp_path / "a.wav").read_bytes()
    assert b"PEAK" not in data
    sf.write(tmp_path / "default.wav", audio.T, SR, subtype="FLOAT")
    assert b"PEAK" in (tmp_path / "default.wav").read_bytes()  # the libsndfile default we avoid
    np.testing.assert_array_equal(read_wav(tmp_path / "a.wav", SR), audio)


def test_folder_reader_roundtrip(track_dir: Path) -> None:
    track = read_track_folder(track_dir, SR)
    expected = tone_stems()
    assert track.name == "song_a" and track.sample_rate == SR
    for target in TARGETS:
        np.testing.assert_array_equal(track.stems[target], expected[target])
    assert track.mixture.shape == (2, SR)
    np.testing.assert_allclose(track.mixture, stem_sum(track.stems), atol=1e-6)


def test_folder_without_mixture_sums_stems(tmp_path: Path) -> None:
    folder = write_stems(tmp_path / "uuid-1234", tone_stems(), mixture=False)
    track = read_track_folder(folder, SR)
    assert track.mixture_audio is None
    np.testing.assert_array_equal(track.mixture, stem_sum(track.stems))


def test_mono_is_upmixed_and_rate_resampled(tmp_path: Path,
                                            caplog: pytest.LogCaptureFixture) -> None:
    folder = write_stems(tmp_path / "mono", tone_stems(channels=1, sr=16000), sr=16000)
    with caplog.at_level("INFO"):
        track = read_track_folder(folder, SR)
    assert f"vocals.wav: resampling 16000 Hz -> {SR} Hz" in caplog.text  # logged, per file
    assert track.stems["vocals"].shape == (2, SR)
    np.testing.assert_array_equal(track.stems["vocals"][0], track.stems["vocals"][1])
    # a 110 Hz tone survives resampling: its spectrum peaks at 110 Hz
    spectrum = np.abs(np.fft.rfft(track.stems["vocals"][0]))
    assert abs(np.argmax(spectrum) * SR / SR - 110) <= 1


def test_dataset_iterates_sorted(tmp_path: Path) -> None:
    for name, seed in [("b", 1), ("a", 2)]:
        write_stems(tmp_path / name, tone_stems(seed=seed))
    (tmp_path / "not_a_track").mkdir()
    assert [t.name for t in iter_folder_dataset(tmp_path, SR)] == ["a", "b"]
    assert [t.name for t in iter_source("folder", tmp_path, SR)] == ["a", "b"]


def _corrupt(folder: Path, case: str) -> Path:
    vocals = folder / "vocals.wav"
    if case == "missing_stem":
        vocals.unlink()
    elif case == "truncated":
        vocals.write_bytes(vocals.read_bytes()[:30])
    elif case == "not_audio":
        vocals.write_text("this is not a wav file\n" * 20)
    elif case == "empty":
        sf.write(vocals, np.zeros((0, 2), np.float32), SR, subtype="FLOAT")
    elif case == "nan":
        data = tone_stems()["vocals"].copy()
        data[0, 10] = np.nan
        sf.write(vocals, data.T, SR, subtype="FLOAT")
    elif case == "unequal":
        sf.write(vocals, tone_stems(seconds=0.5)["vocals"].T, SR, subtype="FLOAT")
    elif case == "three_channels":
        sf.write(vocals, np.zeros((SR, 3), np.float32), SR, subtype="FLOAT")
    return vocals


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("missing_stem", "missing stem file"),
        ("truncated", "cannot decode"),
        ("not_audio", "cannot decode"),
        ("empty", "empty audio"),
        ("nan", "NaN or infinite"),
        ("unequal", "unequal length"),
        ("three_channels", "3 channels"),
    ],
)
def test_bad_track_folder_names_the_problem(track_dir: Path, case: str, message: str) -> None:
    vocals = _corrupt(track_dir, case)
    with pytest.raises(AudioError, match=message) as err:
        read_track_folder(track_dir, SR)
    assert str(vocals) in str(err.value) or track_dir.name in str(err.value)


def test_empty_dataset_folder(tmp_path: Path) -> None:
    with pytest.raises(AudioError, match="no track folders"):
        list(iter_folder_dataset(tmp_path, SR))
    with pytest.raises(AudioError, match="not found"):
        list(iter_folder_dataset(tmp_path / "nope", SR))


def _moises_track(root: Path, uuid: str, with_vocals: bool = True) -> Path:
    stems = tone_stems(seed=3)
    folder = root / uuid
    layout = {"bass": [("b1", stems["bass"])], "drums": [("d1", stems["drums"])],
              "guitar": [("g1", stems["other"] * 0.5)], "piano": [("p1", stems["other"] * 0.5)]}
    if with_vocals:
        layout["vocals"] = [("v1", stems["vocals"] * 0.5), ("v2", stems["vocals"] * 0.5)]
    for stem, files in layout.items():
        (folder / stem).mkdir(parents=True)
        for name, audio in files:
            sf.write(folder / stem / f"{name}.wav", audio.T, SR, subtype="FLOAT")
    (folder / "data.json").write_text(json.dumps({"song": "Tiny", "stems": list(layout)}))
    return folder


def test_moisesdb_maps_instruments(tmp_path: Path) -> None:
    _moises_track(tmp_path, "0001")
    _moises_track(tmp_path, "0002", with_vocals=False)
    first, second = list(iter_moisesdb(tmp_path, SR))
    stems = tone_stems(seed=3)
    np.testing.assert_allclose(first.stems["other"], stems["other"], atol=1e-6)
    np.testing.assert_allclose(first.stems["vocals"], stems["vocals"], atol=1e-6)
    assert not second.stems["vocals"].any()  # instrumental: silent vocals, by design
    assert first.meta["title"] == "Tiny"


def test_moisesdb_errors(tmp_path: Path) -> None:
    folder = _moises_track(tmp_path, "0001")
    (folder / "data.json").write_text("{broken")
    with pytest.raises(AudioError, match="data.json"):
        list(iter_moisesdb(tmp_path, SR))
    shutil.rmtree(folder)
    with pytest.raises(AudioError, match="no MoisesDB tracks"):
        list(iter_moisesdb(tmp_path, SR))


def test_musdb_hq_through_musdb_package(tmp_path: Path) -> None:
    pytest.importorskip("stempeg")
    stems = tone_stems(sr=44100, seconds=0.5)
    write_stems(tmp_path / "train" / "Artist - Song", stems, sr=44100)
    (tracks,) = [list(iter_musdb(tmp_path, "train", SR, is_wav=True))]
    assert [t.name for t in tracks] == ["Artist - Song"]
    assert tracks[0].stems["bass"].shape == (2, SR // 2)


@pytest.mark.slow
def test_musdb_stem_mp4(tmp_path: Path) -> None:
    stempeg = pytest.importorskip("stempeg")
    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg not installed")
    stems = tone_stems(sr=44100, seconds=1.0)
    order = [stem_sum(stems), stems["drums"], stems["bass"], stems["other"], stems["vocals"]]
    (tmp_path / "train").mkdir()
    stempeg.write_stems(str(tmp_path / "train" / "A - B.stem.mp4"),
                        np.stack([a.T for a in order]), sample_rate=44100,
                        writer=stempeg.StreamsWriter(codec="aac"))
    (track,) = list(iter_musdb(tmp_path, "train", 44100))
    assert track.name == "A - B"
    # AAC is lossy: check correlation with the input rather than equality
    got, want = track.stems["bass"][0], stems["bass"][0]
    n = min(got.size, want.size)
    assert np.corrcoef(got[:n], want[:n])[0, 1] > 0.9


def test_track_rejects_missing_stem() -> None:
    stems = tone_stems()
    del stems["drums"]
    with pytest.raises(AudioError, match="missing stem"):
        Track("x", stems, SR)


def test_read_wav_missing_file(tmp_path: Path) -> None:
    with pytest.raises(AudioError, match="file not found"):
        read_wav(tmp_path / "nope.wav", SR)
