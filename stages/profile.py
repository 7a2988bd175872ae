"""Apply a params profile: deep-merge an overrides YAML into params.yaml (validated first).

    python -m stages.profile .ci/profiles/smoke.yaml            # rewrite params.yaml in place
    python -m stages.profile .ci/profiles/paper.yaml --out /tmp/params.yaml

Every section of the result is validated with the stages' own dataclasses before anything is
written, so a typo in a profile fails here with the key's name. ``dvc params diff`` then shows
exactly what the profile changed.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import yaml

from .lib.cli import exit_on_user_error
from .lib.io import atomic_path
from .lib.params import ParamsError, read_yaml
from .lib.sections import validate_all


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """``override`` wins; mappings merge recursively, everything else is replaced."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def run(argv: list[str] | None = None) -> None:
    """Merge, validate, write."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("profile", type=Path)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--out", type=Path, help="default: overwrite --params")
    args = parser.parse_args(argv)
    merged = deep_merge(read_yaml(args.params), read_yaml(args.profile))
    unknown = sorted(set(read_yaml(args.profile)) - set(read_yaml(args.params)))
    if unknown:
        raise ParamsError(f"{args.profile}: unknown section(s) {unknown}")
    validate_all(merged)
    with atomic_path(args.out or args.params) as tmp:
        tmp.write_text(yaml.safe_dump(merged, sort_keys=False))


def main(argv: list[str] | None = None) -> None:
    """Entry point."""
    exit_on_user_error("profile", run, argv)


if __name__ == "__main__":
    main()
