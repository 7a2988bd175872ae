"""Load one section of ``params.yaml`` into a frozen, typed dataclass.

Every stage reads only its own section(s). Unknown keys, wrong types and out-of-range values fail at
load time with a :class:`ParamsError` whose message names the dotted key (``render.n_train``).
"""

from __future__ import annotations

import dataclasses
import math
import types
from pathlib import Path
from typing import Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

import yaml

T = TypeVar("T")

TARGETS: tuple[str, ...] = ("vocals", "bass", "drums", "other")


class ParamsError(ValueError):
    """A params value is missing, unknown, ill-typed or out of range; the message names the key."""


class _UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a key repeated in one mapping (as DVC does)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)  # type: ignore[no-untyped-call]
            if key in seen:
                raise ParamsError(f"duplicate key {key!r} (line {key_node.start_mark.line + 1})")
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping safely; a missing, binary, malformed or non-mapping file, or a
    duplicate key, is a ParamsError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise ParamsError(f"{path}: params file not found")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise ParamsError(f"{path}: not a text file (cannot decode as UTF-8)") from None
    return parse_yaml_text(text, str(path))


def parse_yaml_text(text: str, path: str) -> dict[str, Any]:
    """Parse YAML text (``path`` names it in errors) into a mapping of sections."""
    if "\x00" in text:
        raise ParamsError(f"{path}: not a text file (contains NUL bytes)")
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 (a SafeLoader subclass)
    except ParamsError as err:
        raise ParamsError(f"{path}: {err}") from None
    except yaml.YAMLError as err:
        raise ParamsError(f"{path}: not valid YAML ({str(err).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise ParamsError(f"{path}: top level must be a mapping of sections")
    return data


def load_section(path: str | Path, section: str, cls: type[T]) -> T:
    """Parse ``params.yaml``'s ``section`` into ``cls`` (a frozen dataclass), validating every key."""
    data = read_yaml(path)
    if section not in data:
        raise ParamsError(f"{path}: missing section '{section}'")
    return from_dict(cls, data[section], section)


def from_dict(cls: type[T], raw: Any, where: str) -> T:
    """Build dataclass ``cls`` from a mapping; ``where`` is the dotted key used in error messages."""
    if not isinstance(raw, dict):
        raise ParamsError(f"{where}: expected a mapping, got {type(raw).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        raise ParamsError(f"{where}.{unknown[0]}: unknown key (allowed: {', '.join(sorted(fields))})")
    hints = get_type_hints(cls)
    values: dict[str, Any] = {}
    for name, field in fields.items():
        key = f"{where}.{name}"
        if name not in raw:
            # params.yaml is the only source of defaults: section dataclasses have none (a test
            # keeps it so); only user-written specs inside a section (SourceSpec) may default
            if field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
                raise ParamsError(f"{key}: missing required key")
            continue
        values[name] = _coerce(hints[name], raw[name], key)
    try:
        obj = cls(**values)
    except ParamsError:
        raise
    except (TypeError, ValueError) as err:
        raise ParamsError(f"{where}: {err}") from err
    return obj


def _coerce(tp: Any, value: Any, key: str) -> Any:
    """Check ``value`` against type ``tp`` and convert lists to tuples (params are immutable)."""
    origin = get_origin(tp)
    args = get_args(tp)
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(arg, value, key)
            except ParamsError as err:
                errors.append(str(err))
        raise ParamsError(errors[0] if len(errors) == 1 else f"{key}: {value!r} matches none of {tp}")
    if origin is Literal:
        if value not in args:
            raise ParamsError(f"{key}: {value!r} is not one of {list(args)}")
        return value
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise ParamsError(f"{key}: expected a list, got {value!r}")
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(value) != len(args):
                raise ParamsError(f"{key}: expected {len(args)} items, got {len(value)}")
            pairs = enumerate(zip(args, value, strict=True))
            return tuple(_coerce(a, v, f"{key}[{i}]") for i, (a, v) in pairs)
        item = args[0] if args else Any
        return tuple(_coerce(item, v, f"{key}[{i}]") for i, v in enumerate(value))
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise ParamsError(f"{key}: expected a mapping, got {value!r}")
        kt, vt = args if args else (Any, Any)
        return types.MappingProxyType(
            {_coerce(kt, k, key): _coerce(vt, v, f"{key}.{k}") for k, v in value.items()}
        )
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, key)  # type: ignore[arg-type]
    if tp is bool:
        if not isinstance(value, bool):
            raise ParamsError(f"{key}: expected true/false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ParamsError(f"{key}: expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ParamsError(f"{key}: expected a number, got {value!r}")
        if not math.isfinite(value):
            raise ParamsError(f"{key}: must be a finite number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ParamsError(f"{key}: expected a string, got {value!r}")
        return value
    raise TypeError(f"{key}: unsupported params type {tp}")  # a programming error, not user input


def check(condition: bool, key: str, message: str) -> None:
    """Raise ParamsError ``"<key>: <message>"`` unless ``condition`` holds (for ``__post_init__``)."""
    if not condition:
        raise ParamsError(f"{key}: {message}")


def as_plain(obj: Any) -> Any:
    """Convert a params dataclass (with tuples and mapping proxies) to plain JSON-able data."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: as_plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (tuple, list)):
        return [as_plain(v) for v in obj]
    if isinstance(obj, (dict, types.MappingProxyType)):
        return {k: as_plain(v) for k, v in obj.items()}
    return obj


def check_range(value: float, low: float, high: float, key: str) -> None:
    """Raise ParamsError unless ``low <= value <= high`` (sizes, counts, durations)."""
    check(low <= value <= high, key, f"must be in [{low:g}, {high:g}], got {value:g}")


@dataclasses.dataclass(frozen=True)
class BaseParams:
    """Shared knobs: the seeds every fan-out uses, the pipeline sample rate and the target stems."""

    seeds: tuple[int, ...]
    sample_rate: int
    targets: tuple[str, ...]

    def __post_init__(self) -> None:
        check(len(self.seeds) > 0, "base.seeds", "needs at least one seed")
        check(all(0 <= s < 2**32 for s in self.seeds), "base.seeds", "seeds must be in [0, 2**32)")
        check(len(set(self.seeds)) == len(self.seeds), "base.seeds", "seeds must be distinct")
        check(8000 <= self.sample_rate <= 192000, "base.sample_rate", "must be in [8000, 192000] Hz")
        check(
            tuple(self.targets) == TARGETS,
            "base.targets",
            f"must be exactly {list(TARGETS)} (the four-stem layout every reader produces)",
        )


def load_base(path: str | Path) -> BaseParams:
    """Load the shared ``base`` section."""
    return load_section(path, "base", BaseParams)


@dataclasses.dataclass(frozen=True)
class RuntimeParams:
    """``runtime`` section: how to run, never what to compute. No stage declares it in dvc.yaml,
    so changing it reruns nothing (results do not depend on it on one machine; see README)."""

    device: Literal["auto", "cpu", "cuda"]
    workers: int
    threads: int
    worker_threads: int
    loader_workers: int
    preload_mib: float

    def __post_init__(self) -> None:
        check_range(self.workers, 1, 256, "runtime.workers")
        check_range(self.loader_workers, 0, 256, "runtime.loader_workers")
        check_range(self.threads, 1, 1024, "runtime.threads")
        check_range(self.worker_threads, 1, 1024, "runtime.worker_threads")
        check_range(self.preload_mib, 0, 2**30, "runtime.preload_mib")


def load_runtime(path: str | Path) -> RuntimeParams:
    """Load the ``runtime`` section (device, processes, threads)."""
    return load_section(path, "runtime", RuntimeParams)



def select_device(preference: str = "auto", key: str = "runtime.device") -> Any:
    """``torch.device``: ``cuda`` when asked for or available (``auto``), else the CPU."""
    import torch  # here, not at module level: reading params must stay cheap

    if preference == "cuda" and not torch.cuda.is_available():
        raise ParamsError(f"{key}: 'cuda' requested but no CUDA device is available")
    if preference == "auto":
        preference = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(preference)
