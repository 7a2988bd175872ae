"""Atomic file and folder outputs, JSON helpers and run sidecars.

A stage writes everything to a temporary sibling and renames it into place, so a crash or a kill
leaves either the previous output or none: never a half-written file that DVC would cache.

Outputs carry this project's marker: a folder holds a ``.blind-cleaning-bench`` file, a file has
the extended attribute ``user.blind-cleaning-bench`` (where the file system keeps them). Before
any work a stage checks every output with :func:`check_outputs`: an output that is, contains or
lies inside an input is refused, and so is an existing one without the marker (an empty folder is
fine). Nothing this project did not write is ever deleted or replaced.
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
MARKER = ".blind-cleaning-bench"
XATTR = "user.blind-cleaning-bench"
MARKER_TEXT = "written by blind-cleaning-bench: the project may replace or delete this output\n"


class OutputError(ValueError):
    """An output path that would overwrite or delete something this project did not write."""


def _absolute(path: str | Path) -> Path:
    return Path(os.path.realpath(Path(path).expanduser()))


def is_marked(path: str | Path) -> bool:
    """Whether ``path`` was written by this project (folder marker file or file attribute)."""
    path = Path(path)
    if path.is_symlink():
        return False
    if path.is_dir():
        return (path / MARKER).is_file()
    if path.is_file():
        try:
            return os.getxattr(path, XATTR) == b"1"
        except OSError:
            return False
    return False


def mark(path: str | Path) -> None:
    """Put the project's marker on a folder or file just written (best effort for files)."""
    path = Path(path)
    if path.is_dir():
        (path / MARKER).write_text(MARKER_TEXT)
    else:
        with contextlib.suppress(OSError):  # a file system without user xattrs
            os.setxattr(path, XATTR, b"1")


def _replaceable(path: Path) -> bool:
    """Nothing there, an empty folder, an empty file, an output of this project, or anything
    inside a folder this project wrote (a marked folder is the project's to replace)."""
    if not (path.exists() or path.is_symlink()):
        return True
    if (path.parent / MARKER).is_file():
        return True
    if path.is_dir() and not path.is_symlink() and not any(path.iterdir()):
        return True
    if path.is_file() and not path.is_symlink() and path.stat().st_size == 0:
        return True
    return is_marked(path)


def check_outputs(outputs: dict[str, str | Path | None], inputs: dict[str, str | Path | None],
                  folders: tuple[str, ...] = ()) -> None:
    """Refuse outputs that would destroy data, before any work.

    ``outputs`` and ``inputs`` map an argument name (``--out``) to a path (``None`` = not given);
    ``folders`` names the outputs that are folders (an existing file there is refused). Raises
    :class:`OutputError` naming the path when an output equals, contains or lies inside an input
    or another output, is not writable, or exists without this project's marker.
    """
    given_inputs = {name: _absolute(p) for name, p in inputs.items() if p is not None}
    given_outputs: dict[str, Path] = {}
    for name, raw in outputs.items():
        if raw is None:
            continue
        out = _absolute(raw)
        for other, earlier in given_outputs.items():
            if out == earlier or out in earlier.parents or earlier in out.parents:
                raise OutputError(f"{raw}: output {name} overlaps output {other} ({earlier})")
        given_outputs[name] = out
        for in_name, src in given_inputs.items():
            if out == src:
                raise OutputError(f"{raw}: output {name} is the input {in_name}; refusing to overwrite it")
            if out in src.parents:
                raise OutputError(f"{raw}: output {name} contains the input {in_name} ({src}); "
                                  "refusing to replace it")
            if src in out.parents:
                raise OutputError(f"{raw}: output {name} lies inside the input {in_name} ({src})")
        if name in folders and (out.exists() and not out.is_dir()):
            raise OutputError(f"{raw}: output {name} exists and is not a folder; refusing to replace it")
        if not _replaceable(out):
            raise OutputError(f"{raw}: exists and was not written by this project (no "
                              f"{MARKER} marker); refusing to replace it: remove it or choose "
                              "another path")
        existing = next(p for p in (out, *out.parents) if p.exists())
        if existing != out and not existing.is_dir():
            raise OutputError(f"{raw}: output {name} cannot be created: {existing} is not a folder")
        if not os.access(existing, os.W_OK | os.X_OK if existing.is_dir() else os.W_OK):
            raise OutputError(f"{raw}: output {name} is not writable ({existing})")


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
        mark(target)
        _discard(final)
        os.replace(target, final)
        _fsync_dir(final.parent)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _discard(path: Path) -> None:
    """Delete ``path`` if this project wrote it (or it is empty); refuse anything else."""
    if not (path.exists() or path.is_symlink()):
        return
    if not _replaceable(path):
        raise OutputError(f"{path}: exists and was not written by this project; refusing to "
                          "replace it")
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()


def remove_stale(*paths: str | Path) -> None:
    """Delete this project's outputs of an earlier run, so a failing stage cannot leave them
    looking current; anything not written by this project is refused, never deleted."""
    for path in paths:
        _discard(Path(path))


def output_folder(path: str | Path) -> Path:
    """Create (or reuse) a folder this project writes into piecemeal (checkpoints, logs), marked."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    mark(path)
    return path


def replace_text(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary sibling and a rename (an in-place edit the
    user asked for, e.g. applying a profile to params.yaml: the file is not an output)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


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


def machine_info() -> dict[str, Any]:
    """The CPU that computed an output: bit-identical floats are only expected on the same kind
    (model name and the SIMD level torch dispatches to), so sidecars record both."""
    import sys

    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    info: dict[str, Any] = {"cpu": cpu, "machine": platform.machine()}
    torch = sys.modules.get("torch")
    if torch is not None:
        info["torch_cpu_capability"] = torch.backends.cpu.get_cpu_capability()
    return info


def sidecar(params: Any, **extra: Any) -> dict[str, Any]:
    """The provenance record stored beside every model and score output (no timestamps, no
    paths): params, library versions and the CPU kind."""
    from .params import as_plain

    return {"params": as_plain(params), "versions": library_versions(),
            "machine": machine_info(), **extra}
