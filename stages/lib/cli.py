"""Shared entry-point plumbing for stage modules: logging, the params argument, timing."""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .io import write_json

log = logging.getLogger(__name__)


def setup_logging(verbose: bool = False) -> None:
    """Configure root logging once, at the stage entry point only."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
        force=True,
    )


def stage_parser(description: str, cost: bool = False,
                 progress: bool = False) -> argparse.ArgumentParser:
    """An argument parser with the ``--params`` and ``--verbose`` options every stage takes.

    ``cost`` adds ``--cost`` (the wall-time JSON of :func:`timed`); ``progress`` adds ``--quiet``
    (no progress bars, as in ``dvc repro`` logs).
    """
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"),
                        help="params file (default: params.yaml)")
    parser.add_argument("--verbose", action="store_true", help="debug logging")
    if cost:
        parser.add_argument("--cost", type=Path, help="wall-time JSON (kept out of metrics)")
    if progress:
        parser.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser


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


def exit_on_user_error(stage: str, func, *args, **kwargs):  # noqa: ANN001, ANN201
    """Run ``func``; turn bad-input errors into one clear line on stderr and exit status 1.

    Programming errors (anything else) keep their traceback.
    """
    from .audio import AudioError
    from .params import ParamsError

    try:
        return func(*args, **kwargs)
    except (ParamsError, AudioError, ValueError, FileNotFoundError) as err:
        log.error("%s: %s", stage, err)
        raise SystemExit(f"error: {stage}: {err}") from None
