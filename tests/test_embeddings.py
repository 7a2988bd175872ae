"""Embedding backends on the real code path: MERT against its own model code, CLAP with the real
configuration's shape, all from local folders with every params key explicit."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from stages.lib.embeddings import (
    EmbedParams,
    clap_window_starts,
    hubert_config_from_mert,
    make_embedder,
)
from stages.lib.params import ParamsError, from_dict, load_section

SR = 44100
ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "mert"


def _params(**changes: Any) -> EmbedParams:
    """The project's ``embed`` section with ``changes`` applied (every key explicit)."""
    base = load_section(ROOT / "params.yaml", "embed", EmbedParams)
    return dataclasses.replace(base, **changes)


def _audio(seconds: float, channels: int = 2) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return np.stack([0.3 * np.sin(2 * np.pi * 220 * (c + 1) * t) for c in range(channels)]).astype(
        np.float32)


def _fixtures_module() -> Any:
    spec = importlib.util.spec_from_file_location("mert_fixtures", FIXTURES / "make_fixtures.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def test_logmel_shapes_and_determinism() -> None:
    emb = make_embedder(_params(backend="logmel"))
    frames = emb.embed(_audio(2.0), SR)
    assert frames.shape == (20, 64) and frames.dtype == np.float32
    assert np.array_equal(frames, emb.embed(_audio(2.0), SR))
    mono = emb.embed(_audio(2.0, channels=1), SR)
    assert mono.shape == frames.shape


def test_every_key_is_required_and_bounded() -> None:
    raw = dict(load_section(ROOT / "params.yaml", "embed", EmbedParams).__dict__)
    del raw["hop_seconds"]
    with pytest.raises(ParamsError, match="embed.hop_seconds: missing required key"):
        from_dict(EmbedParams, raw, "embed")
    for key, value in [("n_mels", 4), ("n_mels", 1024), ("window_seconds", float("inf")),
                       ("hop_seconds", 0.0), ("chunk_seconds", 601.0), ("layer", -1)]:
        with pytest.raises(ParamsError, match=f"embed.{key}"):
            _params(**{key: value})
    assert _params(chunk_seconds=None).chunk_seconds is None  # null = whole song


# --- MERT: the native loader against MERT's own code ---------------------------------------------

def _mert_snapshot(folder: Path, variant: str, manifest: dict, bin_weights: bool) -> Path:
    """A snapshot as published: config.json, preprocessor_config.json, weights with the 2023
    names (``weight_g``/``weight_v``), as ``pytorch_model.bin`` or ``model.safetensors``."""
    info = manifest["variants"][variant]
    folder.mkdir(parents=True, exist_ok=True)
    config = {**info["config"], "architectures": ["MERTModel"],
              "auto_map": {"AutoConfig": "configuration_MERT.MERTConfig",
                           "AutoModel": "modeling_MERT.MERTModel"}}
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "preprocessor_config.json").write_text(json.dumps(
        {"do_normalize": False, "feature_extractor_type": "Wav2Vec2FeatureExtractor",
         "sampling_rate": 24000}))
    weights = {k: torch.from_numpy(v) for k, v in
               _fixtures_module().make_weights(info["weights"]).items()}
    if bin_weights:
        torch.save(weights, folder / "pytorch_model.bin")
    else:
        from safetensors.torch import save_file

        save_file(weights, str(folder / "model.safetensors"))
    return folder


@pytest.fixture(scope="module")
def mert_manifest() -> dict:
    return json.loads((FIXTURES / "manifest.json").read_text())


@pytest.mark.parametrize(("variant", "bin_weights"), [("v1_95m", True), ("v1_330m", False)])
def test_native_mert_equals_merts_own_code(tmp_path: Path, mert_manifest: dict, variant: str,
                                           bin_weights: bool) -> None:
    """Every hidden state equals the one MERT's modeling_MERT.py gave (transformers 4.45, stored by
    tests/fixtures/mert/make_fixtures.py) on the same random weights of the real config's shape."""
    folder = _mert_snapshot(tmp_path / variant, variant, mert_manifest, bin_weights)
    expected = np.load(FIXTURES / f"{variant}_hidden_states.npy")
    layers = expected.shape[0] - 1
    emb = make_embedder(_params(backend="mert", model_dir=str(folder), layer=layers,
                                chunk_seconds=None))
    audio = _fixtures_module().make_audio(mert_manifest["seconds"])
    got = np.stack([h[0].numpy() for h in emb.hidden_states(audio)])
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5 * np.abs(expected).max())
    # the stage's path (mono, 24 kHz, whole song): the chosen layer
    frames = emb.embed(audio[None], 24000)
    np.testing.assert_allclose(frames, expected[layers], rtol=1e-5,
                               atol=1e-5 * np.abs(expected).max())
    assert emb.dim == expected.shape[2] and emb.name == "mert"


def test_mert_chunking_and_layer_choice(tmp_path: Path, mert_manifest: dict) -> None:
    folder = _mert_snapshot(tmp_path / "m", "v1_95m", mert_manifest, bin_weights=False)
    whole = make_embedder(_params(backend="mert", model_dir=str(folder), layer=2,
                                  chunk_seconds=None))
    chunked = make_embedder(_params(backend="mert", model_dir=str(folder), layer=2,
                                    chunk_seconds=0.5))
    audio = _audio(1.2)
    frames = chunked.embed(audio, SR)
    # 0.5 s + 0.5 s + 0.2 s pieces at 24 kHz: 37 + 37 + 14 frames (320 samples per frame)
    assert frames.shape == (88, 32)
    assert whole.embed(audio, SR).shape == (89, 32)
    layer0 = make_embedder(_params(backend="mert", model_dir=str(folder), layer=0,
                                   chunk_seconds=0.5))
    assert not np.allclose(layer0.embed(audio, SR), frames)
    with pytest.raises(ValueError, match="embed.layer: 9 but .*config.json has 3 layers"):
        make_embedder(_params(backend="mert", model_dir=str(folder), layer=9))


@pytest.mark.parametrize(("change", "match"), [
    ({"feature_extractor_cqt": True}, "feature_extractor_cqt"),
    ({"deepnorm": True}, "deepnorm"),
    ({"model_type": "wav2vec2"}, "model_type 'wav2vec2'"),
])
def test_mert_configs_native_hubert_cannot_express_are_refused(change: dict, match: str) -> None:
    config = {**_fixtures_module().MERT_V1_95M, **change}
    with pytest.raises(ValueError, match=match):
        hubert_config_from_mert(config)


def test_mert_config_translation_keeps_the_real_values() -> None:
    module = _fixtures_module()
    for real in (module.MERT_V1_95M, module.MERT_V1_330M):
        native = hubert_config_from_mert(real)
        for key in ("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
                    "feat_extract_norm", "conv_bias", "do_stable_layer_norm", "layer_norm_eps",
                    "num_conv_pos_embeddings", "num_conv_pos_embedding_groups",
                    "feat_proj_layer_norm"):
            assert getattr(native, key) == real[key], key
        assert list(native.conv_kernel) == real["conv_kernel"]
        assert list(native.conv_stride) == real["conv_stride"]
        assert native.conv_pos_batch_norm is False


def test_mert_snapshot_problems_are_one_clear_error(tmp_path: Path, mert_manifest: dict) -> None:
    folder = _mert_snapshot(tmp_path / "m", "v1_95m", mert_manifest, bin_weights=True)
    params = _params(backend="mert", model_dir=str(folder))
    # an unexpected weight (e.g. a checkpoint of another model)
    state = torch.load(folder / "pytorch_model.bin", weights_only=True)
    torch.save({**state, "quantizer.codebook": torch.zeros(3)}, folder / "pytorch_model.bin")
    with pytest.raises(ValueError, match="1 unexpected, e.g. \\['quantizer.codebook'\\]"):
        make_embedder(params)
    # a missing one
    state.pop("encoder.layers.0.attention.k_proj.weight")
    torch.save(state, folder / "pytorch_model.bin")
    with pytest.raises(ValueError, match="1 missing, e.g. \\['encoder.layers.0.attention.k_proj"):
        make_embedder(params)
    # no weights file at all
    (folder / "pytorch_model.bin").unlink()
    with pytest.raises(FileNotFoundError, match="has no weights file .*model.safetensors or "
                                                "pytorch_model.bin"):
        make_embedder(params)
    # no config.json
    (folder / "config.json").unlink()
    with pytest.raises(FileNotFoundError, match="config.json not found"):
        make_embedder(params)
    with pytest.raises(FileNotFoundError, match="embed.model_dir: .*no MERT weights"):
        make_embedder(_params(backend="mert", model_dir=str(tmp_path / "nope")))
    with pytest.raises(ParamsError, match="embed.model_dir"):
        _params(backend="clap", model_dir=None)


@pytest.fixture(scope="module")
def tiny_hubert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A native HuBERT snapshot saved by this transformers version (model_type 'hubert')."""
    from transformers import HubertConfig, HubertModel

    config = HubertConfig(hidden_size=16, num_hidden_layers=3, num_attention_heads=2,
                          intermediate_size=32, conv_dim=(8, 8), conv_stride=(5, 4),
                          conv_kernel=(10, 8), num_conv_pos_embeddings=8,
                          num_conv_pos_embedding_groups=2)
    folder = tmp_path_factory.mktemp("hubert")
    HubertModel(config).save_pretrained(folder)
    return folder


def test_native_hubert_snapshots_still_load(tiny_hubert: Path) -> None:
    from transformers import HubertModel

    emb = make_embedder(_params(backend="mert", model_dir=str(tiny_hubert), layer=3,
                                chunk_seconds=None))
    wave = np.random.default_rng(0).standard_normal(4800).astype(np.float32)
    reference = HubertModel.from_pretrained(tiny_hubert).eval()
    with torch.no_grad():
        want = reference(torch.from_numpy(wave)[None]).last_hidden_state[0].numpy()
    np.testing.assert_allclose(emb.embed(wave[None], 24000), want, rtol=1e-5, atol=1e-6)


def test_local_weights_load_with_the_network_blocked(tiny_hubert: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Weights come from disk only: with every socket connection refused, loading still works."""
    import socket

    def refuse(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise OSError("network access attempted during a benchmark run")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    emb = make_embedder(_params(backend="mert", model_dir=str(tiny_hubert), layer=1,
                                chunk_seconds=0.5))
    assert emb.embed(_audio(0.5), SR).shape[1] == 16


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("MERT_FULL_FIXTURES"),
                    reason="set MERT_FULL_FIXTURES to a make_fixtures.py --full output folder")
def test_full_size_mert_equals_merts_own_code(tmp_path: Path) -> None:
    """Full-size MERT-v1-95M (and the reconstructed 330M) on random weights, layer by layer."""
    full = Path(os.environ["MERT_FULL_FIXTURES"])
    manifest = json.loads((full / "manifest.json").read_text())
    for variant in manifest["variants"]:
        folder = _mert_snapshot(tmp_path / variant, variant, manifest, bin_weights=False)
        expected = np.load(full / f"{variant}_hidden_states.npy")
        emb = make_embedder(_params(backend="mert", model_dir=str(folder), chunk_seconds=None))
        got = np.stack([h[0].numpy() for h in
                        emb.hidden_states(_fixtures_module().make_audio(manifest["seconds"]))])
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5 * np.abs(expected).max())


# --- CLAP ----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_clap(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """laion/larger_clap_music's shape (HTSAT-base audio tower: spec_size 256, 64 mel bins, window
    8, patch 4, unfused; 48 kHz extractor with 10 s windows) with widths and depths shrunk:
    patch_embeds_hidden_size 128 -> 8 (hidden 1024 -> 64), depths [2, 2, 12, 2] -> [1, 1, 1, 1],
    heads [4, 8, 16, 32] -> [1, 1, 2, 2], projection 512 -> 16, a 1-layer text tower."""
    from transformers import ClapConfig, ClapFeatureExtractor, ClapModel

    config = ClapConfig(
        text_config={"hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2,
                     "intermediate_size": 32, "vocab_size": 100, "max_position_embeddings": 32},
        audio_config={"patch_embeds_hidden_size": 8, "hidden_size": 64, "depths": [1, 1, 1, 1],
                      "num_attention_heads": [1, 1, 2, 2], "spec_size": 256, "num_mel_bins": 64,
                      "window_size": 8, "patch_size": 4, "enable_fusion": False},
        projection_dim=16)
    folder = tmp_path_factory.mktemp("clap")
    torch.manual_seed(0)
    ClapModel(config).save_pretrained(folder)
    ClapFeatureExtractor(feature_size=64, sampling_rate=48000, max_length_s=10,
                         truncation="fusion", padding="repeatpad").save_pretrained(folder)
    return folder


def test_clap_window_starts_match_fadtk() -> None:
    rate = 48000
    # fadtk: range(0, len, 1 s), each window padded to 10 s -> 12 frames for 12 s
    assert clap_window_starts(12 * rate, 10 * rate, rate) == [i * rate for i in range(12)]
    assert clap_window_starts(int(1.5 * rate), 10 * rate, rate) == [0, rate]
    for seconds in (1.0, 0.5, 1e-3):  # fewer than two starts: two windows, at 0 and half-way
        n = int(seconds * rate)
        assert clap_window_starts(n, 10 * rate, rate) == [0, n // 2]


@pytest.mark.parametrize(("seconds", "frames"), [(12.0, 12), (1.0, 2), (2.5, 3)])
def test_clap_frames_every_song_of_a_second_or_more(tiny_clap: Path, seconds: float,
                                                    frames: int) -> None:
    emb = make_embedder(_params(backend="clap", model_dir=str(tiny_clap)))
    out = emb.embed(_audio(seconds), SR)
    assert out.shape == (frames, 16) and out.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)


def test_clap_tail_windows_are_zero_padded(tiny_clap: Path) -> None:
    """A 10 s window starting 9 s into a 10 s song equals the embedding of 1 s + 9 s of zeros."""
    emb = make_embedder(_params(backend="clap", model_dir=str(tiny_clap)))
    audio = _audio(10.0, channels=1)
    frames = emb.embed(audio, SR)
    tail = np.zeros_like(audio)
    tail[:, :SR] = audio[:, 9 * SR:]
    alone = emb.embed(np.concatenate([tail, np.zeros((1, 0), np.float32)], axis=1), SR)
    np.testing.assert_allclose(frames[9], alone[0], atol=1e-5)


def test_clap_params_and_snapshot_errors(tiny_clap: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="embed.window_seconds"):
        make_embedder(_params(backend="clap", model_dir=str(tiny_clap), window_seconds=12.0))
    partial = tmp_path / "clap"
    partial.mkdir()
    for name in ("config.json", "preprocessor_config.json"):
        (partial / name).write_text((tiny_clap / name).read_text())
    with pytest.raises(FileNotFoundError, match="has no weights file"):
        make_embedder(_params(backend="clap", model_dir=str(partial)))
