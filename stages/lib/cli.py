"""Shared entry-point plumbing for stage modules: arguments, logging, the params file, timing."""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from .io import check_outputs, write_json

log = logging.getLogger(__name__)

R = TypeVar("R")
PROJECT_ROOT = Path(__file__).resolve().parents[2]


def default_params_path() -> Path:
    """``./params.yaml`` when there is one, else the project's own (commands work from anywhere)."""
    here = Path("params.yaml")
    return here if here.is_file() else PROJECT_ROOT / "params.yaml"


def setup_logging(verbose: bool = False) -> None:
    """Configure root logging once, at the stage entry point only."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
        force=True,
    )


class StageParser(argparse.ArgumentParser):
    """An argument parser that knows which path arguments are inputs and which are outputs.

    ``parse_args`` checks every output against every input before any work (see
    :func:`stages.lib.io.check_outputs`), so a wrong ``--out`` fails in milliseconds.
    """

    def __init__(self, name: str, description: str) -> None:
        super().__init__(prog=f"python -m stages.{name}", description=description,
                         formatter_class=argparse.RawDescriptionHelpFormatter)
        self.inputs: list[str] = []
        self.outputs: list[str] = []
        self.folders: list[str] = []

    def add_input(self, *flags: str, **kwargs: Any) -> None:
        """A path the command reads (never written, never inside an output)."""
        self.inputs.append(self.add_argument(*flags, type=Path, **kwargs).dest)

    def add_output(self, *flags: str, folder: bool = False, **kwargs: Any) -> None:
        """A path the command writes; ``folder`` for folder outputs."""
        dest = self.add_argument(*flags, type=Path, **kwargs).dest
        self.outputs.append(dest)
        if folder:
            self.folders.append(dest)

    def parse_args(self, args: Any = None, namespace: Any = None) -> argparse.Namespace:  # type: ignore[override]
        parsed = super().parse_args(args, namespace)
        check_paths(parsed, self)
        return parsed


def _paths(args: argparse.Namespace, dests: list[str]) -> dict[str, Path | None]:
    out: dict[str, Path | None] = {}
    for dest in dests:
        value = getattr(args, dest)
        for i, path in enumerate(value if isinstance(value, list) else [value]):
            out[f"--{dest.replace('_', '-')}" + (f"[{i}]" if isinstance(value, list) else "")] = path
    return out


def check_paths(args: argparse.Namespace, parser: StageParser,
                extra_inputs: dict[str, Path] | None = None) -> None:
    """Check the parser's outputs against its inputs (plus ``extra_inputs``, e.g. listed songs)."""
    inputs = {**_paths(args, parser.inputs), "--params": args.params, **(extra_inputs or {})}
    outputs = _paths(args, parser.outputs)
    folders = tuple(f"--{d.replace('_', '-')}" for d in parser.folders)
    check_outputs(outputs, inputs, folders)


def stage_parser(name: str, description: str, cost: bool = False,
                 progress: bool = False) -> StageParser:
    """A :class:`StageParser` with the ``--params`` and ``--verbose`` options every stage takes.

    ``cost`` adds ``--cost`` (the wall-time JSON of :func:`timed`); ``progress`` adds ``--quiet``
    (no progress bars, as in ``dvc repro`` logs; one summary line per phase is still logged).
    """
    parser = StageParser(name, description)
    parser.add_argument("--params", type=Path, default=None,
                        help="params file (default: ./params.yaml, else the project's)")
    parser.add_argument("--verbose", action="store_true", help="debug logging")
    if cost:
        parser.add_output("--cost", help="wall-time JSON (kept out of metrics)")
    if progress:
        parser.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser


def resolve_params(args: argparse.Namespace) -> Path:
    """Fill in ``args.params`` (explicit, ./params.yaml, or the project's) and log which one."""
    if args.params is None:
        args.params = default_params_path()
    log.info("params: %s", args.params)
    return args.params


@contextmanager
def timed(cost_path: Path | None, stage: str, **info: object) -> Iterator[dict[str, object]]:
    """Measure wall time of a block and write ``{stage, wall_s, ...}`` to ``cost_path``.

    Timings live in their own cost files so their noise never shows in ``dvc metrics diff``.
    """
    record: dict[str, object] = {"stage": stage, **info}
    start = time.perf_counter()
    yield record
    record["wall_s"] = round(time.perf_counter() - start, 3)
    log.info("%s finished in %.1f s", stage, record["wall_s"])
    if cost_path is not None:
        write_json(cost_path, record)


def exit_on_user_error(stage: str, func: Callable[..., R], *args: Any, **kwargs: Any) -> R:
    """Run ``func``; turn bad-input errors into one line ``error: <stage>: <message>`` on stderr
    and exit status 1. Programming errors (anything else) keep their traceback.
    """
    try:
        return func(*args, **kwargs)
    except (ValueError, OSError) as err:  # ParamsError, AudioError, OutputError are ValueErrors
        message = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise SystemExit(f"error: {stage}: {message}") from None
