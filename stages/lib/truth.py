"""The ground-truth manifest of a contaminated set (written by the build stage): one reader."""

from __future__ import annotations

from pathlib import Path

from .io import read_json


def read_truth(path: str | Path) -> dict[str, str]:
    """``{song name: corruption kind}`` ("clean", "label_noise", "bleeding", an effect...) from a
    manifest ``{"tracks": [{"name": ..., "corruption": ...}, ...]}``; a malformed one is a
    ValueError naming the file."""
    data = read_json(path)
    rows = data.get("tracks") if isinstance(data, dict) else None
    if not isinstance(rows, list) or not all(
            isinstance(r, dict) and isinstance(r.get("name"), str)
            and isinstance(r.get("corruption"), str) for r in rows):
        raise ValueError(f"{path}: not a ground-truth manifest (needs 'tracks': [{{name, "
                         f"corruption}}, ...])")
    truth = {r["name"]: r["corruption"] for r in rows}
    if len(truth) != len(rows):
        raise ValueError(f"{path}: a song is listed twice")
    return truth
