"""On-disk embedding store: ``<root>/<song>/<stem>.npy`` (float16 ``[T, D]``), deterministic bytes."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .params import TARGETS


def save_song(folder: Path, frames: dict[str, np.ndarray]) -> None:
    """Write one song's stems' frames as float16 ``.npy`` files."""
    folder.mkdir(parents=True, exist_ok=True)
    for stem, array in frames.items():
        np.save(folder / f"{stem}.npy", array.astype(np.float16), allow_pickle=False)


def load_store(root: Path, stems: tuple[str, ...] = TARGETS) -> dict[str, dict[str, np.ndarray]]:
    """``{song: {stem: frames float32}}`` for every song folder under ``root``."""
    root = Path(root)
    songs = sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
    if not songs:
        raise FileNotFoundError(f"{root}: no embedded songs found")
    out = {}
    for song in songs:
        out[song.name] = {}
        for stem in stems:
            path = song / f"{stem}.npy"
            if not path.is_file():
                raise FileNotFoundError(f"{path}: missing embedding")
            out[song.name][stem] = np.load(path, allow_pickle=False).astype(np.float32)
    return out
