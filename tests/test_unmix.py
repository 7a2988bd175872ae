"""Open-Unmix training: it learns, resumes bit-exactly after a kill, and loads safely."""

from __future__ import annotations

import ast
import dataclasses
import math
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from conftest import params_of, tone_stems, write_stems

from stages.lib import unmix, workers
from stages.lib.audio import AudioError
from stages.lib.params import TARGETS, select_device
from stages.lib.songs import (
    ExcerptSampler,
    SongTable,
    TrainingBatches,
    decoded_mib,
    float_wav_samples,
)
from stages.lib.unmix import (
    Loading,
    Magnitude,
    ModelParams,
    TrainParams,
    Validator,
    build_model,
    canonical_ast,
    code_digest,
    fit_scaler,
    load_model,
    model_config,
    seed_everything,
    train_target,
)

SR = 8000
TINY = params_of(TrainParams, "train",
                 model={"n_fft": 256, "hop": 128, "hidden_size": 8, "bandwidth_hz": 3500.0},
                 sampler={"excerpt_seconds": 0.5, "samples_per_track": 2},
                 epochs=3, batch_size=4, steps_per_epoch=4, lr=0.01)
CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def banks(tmp_path_factory: pytest.TempPathFactory) -> tuple[SongTable, SongTable]:
    root = tmp_path_factory.mktemp("songs")
    train = [str(write_stems(root / f"s{i}", tone_stems(seconds=1.5, seed=i))) for i in range(3)]
    valid = [str(write_stems(root / "v0", tone_stems(seconds=1.0, seed=9)))]
    return SongTable.open(train, SR), SongTable.open(valid, SR)


def test_training_reduces_the_loss(banks) -> None:
    bank, valid = banks
    params = dataclasses.replace(TINY, epochs=6)
    result = train_target(bank, np.arange(3), valid, "vocals", params, 0, CPU, quiet=True)
    losses = [h["train_loss"] for h in result.history]
    assert len(losses) == 6
    assert losses[-1] < losses[0]
    assert result.best_valid_loss == min(h["valid_loss"] for h in result.history)
    assert result.history[result.best_epoch]["valid_loss"] == result.best_valid_loss


@pytest.mark.parametrize("layers", [1, 3])  # 3 layers: LSTM dropout draws from torch's RNG
def test_resume_after_kill_equals_uninterrupted(banks, tmp_path: Path, layers: int) -> None:
    bank, valid = banks
    params = dataclasses.replace(TINY, model=dataclasses.replace(TINY.model, nb_layers=layers))
    full = train_target(bank, np.arange(3), valid, "bass", params, 1, CPU, quiet=True)
    ckpt = tmp_path / "bass.pt"
    train_target(bank, np.arange(3), valid, "bass", params, 1, CPU, checkpoint=ckpt, quiet=True,
                 stop_after=1)  # the "kill": only epoch 0 ran and was checkpointed
    assert torch.load(ckpt, weights_only=True)["epoch"] == 0
    resumed = train_target(bank, np.arange(3), valid, "bass", params, 1, CPU, checkpoint=ckpt,
                           quiet=True)
    assert resumed.history == full.history
    for key, value in full.state_dict.items():
        assert torch.equal(value, resumed.state_dict[key]), key


def test_checkpoint_of_another_run_is_ignored(banks, tmp_path: Path) -> None:
    bank, valid = banks
    ckpt = tmp_path / "drums.pt"
    train_target(bank, np.arange(3), valid, "drums", TINY, 1, CPU, checkpoint=ckpt, quiet=True,
                 stop_after=1)
    other_seed = train_target(bank, np.arange(3), valid, "drums", TINY, 2, CPU, checkpoint=ckpt,
                              quiet=True)
    assert len(other_seed.history) == TINY.epochs  # started from scratch, not from epoch 1


def test_same_seed_same_weights(banks) -> None:
    bank, valid = banks
    a = train_target(bank, np.arange(3), valid, "other", TINY, 3, CPU, quiet=True)
    b = train_target(bank, np.arange(3), valid, "other", TINY, 3, CPU, quiet=True)
    assert all(torch.equal(a.state_dict[k], b.state_dict[k]) for k in a.state_dict)


def test_scaler_matches_numpy(banks) -> None:
    bank, _ = banks
    mean, std = fit_scaler(bank, np.arange(3), 256, 128)
    assert mean.shape == std.shape == (129,)
    assert (std > 0).all()


def test_model_roundtrip_and_architecture_mismatch(tmp_path: Path) -> None:
    params = TINY.model
    model = build_model(params, SR)
    torch.save(model.state_dict(), tmp_path / "m.pth")
    loaded = load_model(tmp_path / "m.pth", model_config(params, SR))
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(),
                                                 loaded.state_dict().values(), strict=True))
    other = model_config(params_of(ModelParams, "train.model",
        n_fft=256, hop=128, hidden_size=16, bandwidth_hz=3500.0), SR)
    with pytest.raises(ValueError, match="does not match the configured architecture"):
        load_model(tmp_path / "m.pth", other)


class _Payload:
    def __reduce__(self):
        return (print, ("pwned",))


def test_pickled_payload_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "evil.pth"
    with path.open("wb") as handle:
        pickle.dump({"weight": _Payload()}, handle)
    with pytest.raises(ValueError, match="pickled Python objects; refused") as err:
        load_model(path, model_config(TINY.model, SR))
    assert "weights_only=False" not in str(err.value)  # never repeat torch's unsafe hint


def test_device_selection() -> None:
    assert select_device("cpu").type == "cpu"
    if not torch.cuda.is_available():
        assert select_device("auto").type == "cpu"
        with pytest.raises(ValueError, match="no CUDA device"):
            select_device("cuda")


@pytest.mark.gpu
def test_training_on_cuda(banks) -> None:
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    bank, valid = banks
    params = dataclasses.replace(TINY, epochs=1)
    result = train_target(bank, np.arange(3), valid, "vocals", params, 0, select_device("auto"),
                          quiet=True)
    assert select_device("auto").type == "cuda"  # runtime.device: auto picks the GPU
    assert np.isfinite(result.best_valid_loss)


def test_validation_keeps_small_songs_transformed_with_the_same_losses(banks) -> None:
    bank, _ = banks
    model = build_model(TINY.model, SR)
    kept = Validator(bank, "bass", TINY.model.n_fft, TINY.model.hop, CPU)
    streamed = Validator(bank, "bass", TINY.model.n_fft, TINY.model.hop, CPU, cache_bytes=0)
    assert kept.keep and not streamed.keep
    first = kept(model)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.01)
    assert kept(model) == streamed(model) != first  # the kept spectrograms serve a changed model
    assert len(kept._kept or []) == len(bank) and streamed._kept is None


def _pcm16_copy(folders: list[str], root: Path) -> list[str]:
    """The songs again as 16-bit WAV files of the same (16-bit exact) values."""
    copies = []
    for folder in folders:
        for wav in Path(folder).glob("*.wav"):
            data, rate = sf.read(wav, dtype="float32", always_2d=True)
            data = np.round(data * 32767) / 32767  # representable in 16 bits
            (root / Path(folder).name).mkdir(parents=True, exist_ok=True)
            sf.write(root / Path(folder).name / wav.name, data, rate, subtype="PCM_16")
        copies.append(str(root / Path(folder).name))
    return copies


def test_streamed_mapped_decoded_and_worker_batches_are_the_same(banks, tmp_path: Path) -> None:
    """Seeking excerpts on disk, mapping float WAVs, decoding songs into RAM, and loader
    processes: same batches, same weights (batches are seeded per step, not by a stream that
    workers would share)."""
    bank, valid = banks
    mapped = SongTable.open(bank.folders, SR, preload_mib=math.inf)
    assert mapped.preloaded and mapped.mapped and not bank.preloaded
    pcm = _pcm16_copy(bank.folders, tmp_path)  # decoded (not a float WAV), and its stream
    decoded, pcm_streamed = SongTable.open(pcm, SR, preload_mib=math.inf), SongTable.open(pcm, SR)
    assert decoded.preloaded and not decoded.mapped
    for one, other in ((bank, mapped), (pcm_streamed, decoded)):
        drawn = []
        for table in (one, other):
            sampler = ExcerptSampler(table, np.arange(3), "drums", TINY.sampler)
            batches = TrainingBatches(sampler, 7, TINY.steps_per_epoch, TINY.batch_size)
            drawn.append([batches[i] for i in (0, 5)])
            assert all(np.array_equal(table.stems(i), one.stems(i)) for i in range(3))
        for (m1, t1), (m2, t2) in zip(*drawn, strict=True):
            assert np.array_equal(m1, m2) and np.array_equal(t1, t2)
        assert not np.array_equal(drawn[0][0][0], drawn[0][1][0])  # steps differ
    runs = [train_target(table, np.arange(3), valid, "drums", TINY, 5, CPU, quiet=True,
                         loading=Loading(workers=workers, preload_mib=0))
            for table, workers in ((bank, 0), (mapped, 0), (bank, 2))]
    for run in runs[1:]:
        assert run.history == runs[0].history
        assert all(torch.equal(run.state_dict[k], v) for k, v in runs[0].state_dict.items())


def test_float_wav_samples_are_the_decoded_ones_and_other_files_are_not_mapped(
        tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    for channels, subtype in ((2, "FLOAT"), (1, "FLOAT"), (3, "FLOAT"), (2, "PCM_16"),
                              (2, "DOUBLE")):
        path = tmp_path / f"{channels}-{subtype}.wav"
        sf.write(path, rng.uniform(-1, 1, (1000, channels)).astype(np.float32), SR,
                 subtype=subtype)
        mapped = float_wav_samples(path, 1000)
        if subtype != "FLOAT":
            assert mapped is None
            continue
        assert mapped is not None and mapped.shape == (1000, channels)
        assert np.array_equal(mapped, sf.read(path, dtype="float32", always_2d=True)[0])
    (tmp_path / "not.wav").write_bytes(b"RIFF\x04\x00\x00\x00WAVE")  # no chunks at all
    assert float_wav_samples(tmp_path / "not.wav", 10) is None


def test_preloading_follows_the_memory_budget(banks) -> None:
    """A set is held in memory only when its float32 samples fit ``preload_mib``."""
    bank, _ = banks
    size = decoded_mib(bank.songs)  # 3 songs x 1.5 s x 4 stems x 2 channels x 4 bytes
    assert size == pytest.approx(3 * int(1.5 * SR) * 4 * 2 * 4 / 2**20)
    assert not SongTable.open(bank.folders, SR, preload_mib=0).preloaded
    assert not SongTable.open(bank.folders, SR, preload_mib=size * 0.99).preloaded
    assert SongTable.open(bank.folders, SR, preload_mib=size).preloaded


@pytest.mark.parametrize("preload_mib", [math.inf, 0.0])
def test_non_finite_samples_are_refused_mapped_and_streamed(banks, tmp_path: Path,
                                                            preload_mib: float) -> None:
    """A NaN in a float WAV stops training with the file's name, whether the set is mapped
    (checked when opened) or seeked on disk (checked per excerpt), as the decoding path does."""
    bank, _ = banks
    folder = tmp_path / "song"
    folder.mkdir()
    for wav in Path(bank.folders[0]).glob("*.wav"):
        data, rate = sf.read(wav, dtype="float32", always_2d=True)
        if wav.stem == "bass":
            data[data.shape[0] // 2, 1] = np.nan
        sf.write(folder / wav.name, data, rate, subtype="FLOAT")
    with pytest.raises(AudioError, match=r"song/bass.wav: contains NaN or infinite samples"):
        table = SongTable.open([str(folder)], SR, preload_mib=preload_mib)
        assert not table.preloaded  # streamed: found when the excerpt holding it is read
        table.excerpt(0, TARGETS.index("bass"), 0, table.frames(0))


def test_per_process_tables_follow_the_files(banks, tmp_path: Path) -> None:
    """A worker opens a set once, but a set rewritten on disk is opened again (never stale)."""
    bank, _ = banks
    folder = tmp_path / "song"
    shutil.copytree(bank.folders[0], folder)
    first = unmix._open_table((str(folder),), SR, math.inf)
    assert unmix._open_table((str(folder),), SR, math.inf) is first
    data, rate = sf.read(folder / "vocals.wav", dtype="float32", always_2d=True)
    sf.write(folder / "vocals.wav", data * 0.5, rate, subtype="FLOAT")
    again = unmix._open_table((str(folder),), SR, math.inf)
    assert again is not first
    assert np.array_equal(again.stems(0)[TARGETS.index("vocals")], (data * np.float32(0.5)).T)


def test_workers_fork_from_a_server_only_where_they_can_watch_the_stage(monkeypatch) -> None:
    expected = "forkserver" if workers._pidfds() else "spawn"  # Linux: pidfds since 5.3
    assert workers.context().get_start_method() == expected
    monkeypatch.setattr(workers, "_pidfds", lambda: False)
    assert workers.context().get_start_method() == "spawn"  # the parent-death signal suffices


def test_a_worker_without_a_pidfd_polls_until_the_stage_is_gone() -> None:
    import subprocess
    import time

    stage = subprocess.Popen(["sleep", "0.2"])
    stage.wait()  # ended and reaped: its number now names no process
    start = time.monotonic()
    workers._poll_until_gone(stage.pid)
    assert time.monotonic() - start < 5.0


def test_magnitude_matches_openunmix_complexnorm() -> None:
    from openunmix.transforms import ComplexNorm

    spec = torch.randn(3, 2, 129, 40, 2) * torch.logspace(-4, 2, 40)[None, None, None, :, None]
    ours, theirs = Magnitude()(spec), ComplexNorm(mono=False)(spec)
    torch.testing.assert_close(ours, theirs, rtol=3e-7, atol=0.0)  # a float32 rounding or two


def test_deterministic_kernels_are_switched_on() -> None:
    before = (torch.are_deterministic_algorithms_enabled(),
              torch.is_deterministic_algorithms_warn_only_enabled())
    torch.use_deterministic_algorithms(False)
    try:
        seed_everything(0)
        assert torch.are_deterministic_algorithms_enabled()
        assert torch.is_deterministic_algorithms_warn_only_enabled()
    finally:
        torch.use_deterministic_algorithms(before[0], warn_only=before[1])


def test_a_song_table_refuses_what_it_would_have_to_resample(tmp_path: Path) -> None:
    stems = tone_stems(seconds=1.0, seed=1)
    folder = write_stems(tmp_path / "s", stems, sr=16000)
    with pytest.raises(ValueError, match=r"vocals\.wav: 16000 Hz; training seeks excerpts in 8000 Hz"):
        SongTable.open([str(folder)], SR)
    short = dict(stems, bass=stems["bass"][:, :100])
    folder = write_stems(tmp_path / "u", short, mixture=False)
    with pytest.raises(ValueError, match=r"u: stems differ in length"):
        SongTable.open([str(folder)], SR)


def test_mono_stems_are_read_as_two_channels(tmp_path: Path) -> None:
    stems = {k: v[:1] for k, v in tone_stems(seconds=1.0, seed=2).items()}
    folder = write_stems(tmp_path / "m", stems)
    table = SongTable.open([str(folder)], SR)
    assert table.excerpt(0, 1, 10, 50).shape == (2, 50)
    assert np.array_equal(table.excerpt(0, 1, 10, 50), table.stems(0)[1, :, 10:60])


def test_bf16_training_runs_on_the_cpu(banks) -> None:
    bank, valid = banks
    params = dataclasses.replace(TINY, precision="bf16", epochs=2)
    result = train_target(bank, np.arange(3), valid, "vocals", params, 0, CPU, quiet=True)
    assert all(np.isfinite(h["train_loss"]) for h in result.history)


@pytest.mark.slow
def test_compiled_training_keeps_the_plain_weights(banks) -> None:
    import shutil

    if shutil.which("cc") is None and shutil.which("gcc") is None:
        pytest.skip("torch.compile on the CPU needs a C compiler")
    bank, valid = banks
    params = dataclasses.replace(TINY, compile=True, epochs=1)
    result = train_target(bank, np.arange(3), valid, "bass", params, 0, CPU, quiet=True)
    model = build_model(TINY.model, SR)
    model.load_state_dict(result.state_dict)  # no "_orig_mod." prefix: loads into a plain model
    assert np.isfinite(result.best_valid_loss)


def test_the_code_digest_ignores_docstrings_comments_and_layout_only(tmp_path: Path) -> None:
    module = tmp_path / "m.py"

    def digest(source: str) -> str:
        module.write_text(source)
        return code_digest([module])

    plain = digest('"""Doc."""\ndef f(x):\n    """Twice."""\n    return x * 2\n')
    assert digest('"""Reworded."""\n# a comment\ndef f(x):\n\n    return (x *\n            2)\n') == plain
    assert digest('"""Doc."""\ndef f(x):\n    """Twice."""\n    return x * 3\n') != plain
    assert digest('"""Doc."""\ndef f(y):\n    """Twice."""\n    return y * 2\n') != plain
    assert digest('"""Doc."""\ndef f(x):\n    return\n') != digest('"""Doc."""\ndef f(x):\n    return None\n')


def test_the_code_digest_is_pinned_across_python_versions(tmp_path: Path) -> None:
    """The text hashed leaves out empty fields (``ast.dump`` differs between 3.11, 3.12 and 3.13:
    added ``type_params``, empty fields shown or not), so the same source gives this digest on
    any supported Python. A change here changes every training's key: rerun the trainings."""
    module = tmp_path / "m.py"
    module.write_text('import numpy as np\n\n\nclass A:\n    """Doc."""\n\n    def f(self, x: int = 2,'
                      ' *a, k=None, **kw) -> float:\n        return np.mean([x, -1.5, "s", b"b", ...])\n'
                      '\n\nasync def g():\n    async with h() as y:\n        yield y[1:2]\n')
    assert canonical_ast(ast.parse("f(x)")) == (
        "Module(body=[Expr(value=Call(args=[Name(ctx=Load(),id=str:'x')],"
        "func=Name(ctx=Load(),id=str:'f')))])")
    assert code_digest([module]) == "ff4d9dc27c9457bb490974fd0de463ce74f119c57616ac536452360b35a3c04e"
