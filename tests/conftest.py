"""Shared fixtures: tiny synthetic multitrack folders written into ``tmp_path``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from stages.lib.audio import write_wav
from stages.lib.params import TARGETS

SR = 8000


def tone_stems(seconds: float = 1.0, sr: int = SR, seed: int = 0,
               channels: int = 2) -> dict[str, np.ndarray]:
    """Four distinguishable stems ``[channels, samples]``: tones at different pitches plus noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    stems = {}
    for i, target in enumerate(TARGETS):
        sig = 0.2 * np.sin(2 * np.pi * (110.0 * (i + 1)) * t) + 0.01 * rng.standard_normal(t.size)
        stems[target] = np.stack([sig * (1.0 - 0.1 * c) for c in range(channels)]).astype(np.float32)
    return stems


def write_stems(folder: Path, stems: dict[str, np.ndarray], sr: int = SR,
                mixture: bool = True) -> Path:
    """Write stems (and optionally their sum as ``mixture.wav``) as float wavs into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, audio in stems.items():
        write_wav(folder / f"{name}.wav", audio, sr)
    if mixture:
        write_wav(folder / "mixture.wav", sum(stems.values()), sr)
    return folder


@pytest.fixture
def track_dir(tmp_path: Path) -> Path:
    """One valid track folder with a mixture, 1 s at 8 kHz."""
    return write_stems(tmp_path / "songs" / "song_a", tone_stems())


def _merge(base: dict, over: dict) -> dict:
    """``over`` on top of ``base``; mappings merge recursively, anything else is replaced."""
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def params_of(cls: type, dotted: str, **overrides: object) -> object:
    """``cls`` built from the project's params.yaml value at ``dotted`` (``train.model``), with
    ``overrides`` on top (mappings merge): params.yaml is the only source of defaults."""
    from stages.lib.params import from_dict, read_yaml

    value: object = read_yaml(Path(__file__).resolve().parents[1] / "params.yaml")
    for key in dotted.split("."):
        value = value[key]  # type: ignore[index]

    plain = {k: (list(v) if isinstance(v, tuple) else v) for k, v in overrides.items()}
    return from_dict(cls, _merge(dict(value), plain), dotted)  # type: ignore[arg-type]


def write_params(path: Path, overrides: dict) -> Path:
    """Write the project's params.yaml with ``overrides`` deep-merged in (a complete file, as
    every stage needs) to ``path``."""
    import yaml

    from stages.lib.params import read_yaml

    data = _merge(read_yaml(Path(__file__).resolve().parents[1] / "params.yaml"), overrides)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path
