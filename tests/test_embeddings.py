"""Embedding backends on the real code path with tiny random models built from configs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from stages.lib.embeddings import EmbedParams, make_embedder
from stages.lib.params import ParamsError, from_dict

SR = 44100


def _audio(seconds: float, channels: int = 2) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return np.stack([0.3 * np.sin(2 * np.pi * 220 * (c + 1) * t) for c in range(channels)]).astype(
        np.float32)


def test_logmel_shapes_and_determinism() -> None:
    emb = make_embedder(EmbedParams())
    frames = emb.embed(_audio(2.0), SR)
    assert frames.shape == (20, 64) and frames.dtype == np.float32
    assert np.array_equal(frames, emb.embed(_audio(2.0), SR))
    mono = emb.embed(_audio(2.0, channels=1), SR)
    assert mono.shape == frames.shape


@pytest.fixture(scope="module")
def tiny_hubert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from transformers import HubertConfig, HubertModel

    config = HubertConfig(hidden_size=16, num_hidden_layers=3, num_attention_heads=2,
                          intermediate_size=32, conv_dim=(8, 8), conv_stride=(5, 4),
                          conv_kernel=(10, 8), num_conv_pos_embeddings=8,
                          num_conv_pos_embedding_groups=2)
    folder = tmp_path_factory.mktemp("mert")
    HubertModel(config).save_pretrained(folder)
    return folder


def test_mert_like_model_layer_selection_and_chunking(tiny_hubert: Path) -> None:
    params = EmbedParams(backend="mert", model_dir=str(tiny_hubert), layer=2, chunk_seconds=0.5,
                         device="cpu")
    emb = make_embedder(params)
    frames = emb.embed(_audio(1.2), SR)
    # conv strides 5*4 = 20 samples per frame at 24 kHz; chunks of 0.5 s, 0.5 s and 0.2 s
    assert frames.shape[1] == 16 and 1300 < frames.shape[0] < 1450
    other_layer = make_embedder(EmbedParams(backend="mert", model_dir=str(tiny_hubert), layer=0,
                                            chunk_seconds=0.5, device="cpu"))
    assert not np.allclose(other_layer.embed(_audio(1.2), SR), frames)
    with pytest.raises(ValueError, match="embed.layer"):
        make_embedder(EmbedParams(backend="mert", model_dir=str(tiny_hubert), layer=9,
                                  device="cpu"))


@pytest.fixture(scope="module")
def tiny_clap(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from transformers import ClapConfig, ClapFeatureExtractor, ClapModel

    config = ClapConfig(
        text_config={"hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2,
                     "intermediate_size": 32, "vocab_size": 100, "projection_dim": 8},
        audio_config={"hidden_size": 32, "depths": [1, 1], "num_attention_heads": [2, 2],
                      "patch_embeds_hidden_size": 16, "spec_size": 64, "num_mel_bins": 16,
                      "window_size": 4, "projection_dim": 8, "enable_fusion": False},
        projection_dim=8)
    folder = tmp_path_factory.mktemp("clap")
    ClapModel(config).save_pretrained(folder)
    ClapFeatureExtractor(feature_size=16, max_length_s=1, truncation="rand_trunc").save_pretrained(
        folder)
    return folder


def test_clap_windows(tiny_clap: Path) -> None:
    params = EmbedParams(backend="clap", model_dir=str(tiny_clap), window_seconds=1.0,
                         hop_seconds=0.5, device="cpu")
    frames = make_embedder(params).embed(_audio(2.0), SR)
    assert frames.shape == (3, 8)  # windows at 0, 0.5, 1.0 s
    np.testing.assert_allclose(np.linalg.norm(frames, axis=1), 1.0, atol=1e-5)
    too_long = EmbedParams(backend="clap", model_dir=str(tiny_clap), window_seconds=2.0,
                           device="cpu")
    with pytest.raises(ValueError, match="embed.window_seconds"):
        make_embedder(too_long)


def test_missing_weights_are_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="embed.model_dir: .*no MERT weights"):
        make_embedder(EmbedParams(backend="mert", model_dir=str(tmp_path / "nope")))
    with pytest.raises(ParamsError, match="embed.model_dir"):
        from_dict(EmbedParams, {"backend": "clap"}, "embed")


def test_local_weights_load_with_the_network_blocked(tiny_hubert: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Weights come from disk only: with every socket connection refused, loading still works."""
    import socket

    def refuse(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise OSError("network access attempted during a benchmark run")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    emb = make_embedder(EmbedParams(backend="mert", model_dir=str(tiny_hubert), layer=1,
                                    chunk_seconds=0.5, device="cpu"))
    assert emb.embed(_audio(0.5), SR).shape[1] == 16
