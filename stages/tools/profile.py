"""Apply a params profile: deep-merge an overrides YAML into params.yaml, keeping its comments.

    python -m stages.tools.profile .ci/profiles/smoke.yaml            # edit params.yaml in place
    python -m stages.tools.profile .ci/profiles/paper.yaml --out /tmp/params.yaml

The merged result is validated with the stages' own dataclasses before anything is written, so a
typo in a profile fails here with the key's name. Only the values the profile sets change: every
comment and the key order of params.yaml stay (a round-trip edit), and ``dvc params diff`` shows
exactly what the profile changed.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..lib.cli import exit_on_user_error
from ..lib.io import replace_text
from ..lib.params import ParamsError, read_yaml
from ..lib.profiles import apply_profile


def run(argv: list[str] | None = None) -> None:
    """Merge, validate, write."""
    parser = argparse.ArgumentParser(prog="python -m stages.tools.profile", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("profile", type=Path)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--out", type=Path, help="default: edit --params in place")
    args = parser.parse_args(argv)
    read_yaml(args.params)  # the same checks as every stage: exists, text, no duplicate keys
    if args.out is not None and args.out.exists():
        raise ParamsError(f"{args.out}: exists; refusing to overwrite it (choose a new path)")
    text = apply_profile(args.params.read_text(), read_yaml(args.profile), str(args.profile))
    replace_text(args.out or args.params, text)


def main(argv: list[str] | None = None) -> None:
    """Entry point."""
    exit_on_user_error("profile", run, argv)


if __name__ == "__main__":
    main()
