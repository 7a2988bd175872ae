"""Real datasets as the source of a split: which reader reads which root (:class:`SourceSpec`,
written by users inside the ``render`` and ``build_*`` sections) and the tracks it yields."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from .audio import AudioError, Track
from .readers import iter_source, list_track_folders


@dataclass(frozen=True)
class SourceSpec:
    """A real dataset on disk: a reader ``kind`` and its ``root`` (``subset`` for musdb)."""

    kind: Literal["folder", "musdb", "moisesdb"] = "folder"
    root: str = ""
    subset: str = "train"


def real_tracks(spec: SourceSpec, sample_rate: int, limit: int, where: str) -> Iterator[Track]:
    """The first ``limit`` tracks (sorted) of a real dataset; too few is an error naming ``where``."""
    if not Path(spec.root).exists():
        raise AudioError(f"{where}.root: {spec.root} not found")
    count = 0
    for track in iter_source(spec.kind, spec.root, sample_rate, spec.subset):
        if count == limit:
            return
        count += 1
        yield track
    if count < limit:
        raise ValueError(f"{where}: {spec.root} has {count} tracks, {limit} requested")


def source_names(spec: SourceSpec) -> list[str]:
    """Track names of a real dataset in reader order, without decoding audio (not for musdb)."""
    root = Path(spec.root)
    if spec.kind == "moisesdb":
        return sorted(p.parent.name for p in root.glob("*/data.json"))
    if spec.kind == "folder":
        return [p.name for p in list_track_folders(root)]
    raise ValueError(f"{spec.root}: effect sources must be 'folder' or 'moisesdb', not {spec.kind!r}")
