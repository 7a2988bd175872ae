"""Atomic file and folder outputs, JSON helpers and run sidecars.

A stage writes everything to a temporary sibling and renames it into place, so a crash or a kill
leaves either the previous output or none: never a half-written file that DVC would cache.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import os
import platform
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

SIDECAR_PACKAGES = ("numpy", "scipy", "torch", "torchaudio", "openunmix", "soundfile", "pedalboard")


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def atomic_path(final: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``final``; on success rename it into place, else delete it.

    Works for files and folders: the caller creates whatever it likes at the yielded path.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    for stale in final.parent.glob(f".{final.name}.*.tmp"):  # left by a killed run (SIGKILL)
        shutil.rmtree(stale, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent))
    target = tmp / final.name
    try:
        yield target
        if not target.exists():
            raise FileNotFoundError(f"{final}: the stage produced no output")
        if final.is_dir() and not final.is_symlink():
            shutil.rmtree(final)
        elif final.exists() or final.is_symlink():
            final.unlink()
        os.replace(target, final)
        _fsync_dir(final.parent)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def remove_stale(*paths: str | Path) -> None:
    """Delete outputs from an earlier run so a failing stage cannot leave them looking current."""
    for path in map(Path, paths):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()


def dumps_json(data: Any) -> str:
    """Stable JSON text: sorted keys, two-space indent, trailing newline."""
    return json.dumps(data, indent=2, sort_keys=True, allow_nan=False) + "\n"


def write_json(path: str | Path, data: Any) -> None:
    """Write ``data`` as stable JSON, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(dumps_json(data))


def read_json(path: str | Path) -> Any:
    """Read a JSON file; errors name the file."""
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: file not found") from None
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from err


def library_versions(packages: tuple[str, ...] = SIDECAR_PACKAGES) -> dict[str, str]:
    """Versions of the packages that shape results, plus Python's, for run sidecars."""
    versions = {"python": platform.python_version()}
    for name in packages:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def sidecar(params: Any, **extra: Any) -> dict[str, Any]:
    """The provenance record stored beside every model and score output (no timestamps, no paths)."""
    from .params import as_plain

    return {"params": as_plain(params), "versions": library_versions(), **extra}
