"""Params profiles: overrides deep-merged into ``params.yaml`` without losing its comments."""

from __future__ import annotations

import io
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from .params import ParamsError, parse_yaml_text
from .schema import validate_all


def _merge(into: CommentedMap, override: dict[str, Any], where: str) -> None:
    """Set every value of ``override`` in ``into``; mappings merge, anything else is replaced."""
    for key, value in override.items():
        dotted = f"{where}.{key}" if where else str(key)
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value, dotted)
        else:
            into[key] = _flow(value)


def _flow(value: Any) -> Any:
    """Lists and mappings set by a profile are written inline (``[0, 1, 2]``), as params.yaml does."""
    if isinstance(value, list):
        seq = CommentedSeq(_flow(v) for v in value)
        seq.fa.set_flow_style()
        return seq
    if isinstance(value, dict):
        mapping = CommentedMap((k, _flow(v)) for k, v in value.items())
        mapping.fa.set_flow_style()
        return mapping
    return value


def apply_profile(params_text: str, override: dict[str, Any], name: str) -> str:
    """``params_text`` with ``override`` applied, validated; comments and key order are kept."""
    rt = YAML(typ="rt")  # round-trip mode (plain data only, no Python objects): comments survive
    rt.preserve_quotes = True
    rt.width = 4096
    rt.representer.add_representer(
        type(None), lambda rep, _: rep.represent_scalar("tag:yaml.org,2002:null", "null"))
    doc = rt.load(params_text)
    unknown = sorted(set(override) - set(doc))
    if unknown:
        raise ParamsError(f"{name}: unknown section(s) {unknown}")
    _merge(doc, override, "")
    out = io.StringIO()
    rt.dump(doc, out)
    text = out.getvalue()
    validate_all(parse_yaml_text(text, name))
    return text
