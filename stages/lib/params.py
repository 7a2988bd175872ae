"""Load one section of ``params.yaml`` into a frozen, typed dataclass.

Every stage reads only its own section(s). Unknown keys, wrong types and out-of-range values fail at
load time with a :class:`ParamsError` whose message names the dotted key (``render.n_train``).
"""

from __future__ import annotations

import dataclasses
import types
from pathlib import Path
from typing import Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

import yaml

T = TypeVar("T")

TARGETS: tuple[str, ...] = ("vocals", "bass", "drums", "other")


class ParamsError(ValueError):
    """A params value is missing, unknown, ill-typed or out of range; the message names the key."""


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping with ``yaml.safe_load``; a missing or non-mapping file is a ParamsError."""
    path = Path(path)
    if not path.is_file():
        raise ParamsError(f"{path}: params file not found")
    with path.open() as handle:
        try:
            data = yaml.safe_load(handle)
        except yaml.YAMLError as err:
            raise ParamsError(f"{path}: not valid YAML ({err})") from err
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
            no_default = (
                field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING
            )
            if no_default:
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


@dataclasses.dataclass(frozen=True)
class BaseParams:
    """Shared knobs: the seeds every fan-out uses, the pipeline sample rate and the target stems."""

    seeds: tuple[int, ...] = (0, 1, 2)
    sample_rate: int = 44100
    targets: tuple[str, ...] = TARGETS

    def __post_init__(self) -> None:
        check(len(self.seeds) > 0, "base.seeds", "needs at least one seed")
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

