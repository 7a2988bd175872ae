"""Worker processes of a stage: where they come from and how they end.

Training workers are forked from a *fork server*: a process that imports what a worker needs
(torch, this package's training code) once and never runs torch code, so forking it is safe
(as ``spawn`` is; torch's own guidance names both) and a worker starts in milliseconds instead of
importing torch again. :func:`start_server` launches it without waiting, so its imports run on
another core while the calling stage does its own start-up. Only start-up moves: each worker's
jobs carry their own seeds and thread counts, so results are those of spawned workers.
"""

from __future__ import annotations

import multiprocessing
import os
import select
import sys
import threading
from collections.abc import Sequence
from multiprocessing.context import BaseContext

#: What a training worker imports before its first job (torch.optim's first optimiser imports
#: torch._dynamo, about 1 s): the fork server imports it once for every worker it forks.
TRAINING_IMPORTS = ("stages.lib.unmix", "torch._dynamo")


def context(imports: Sequence[str] = TRAINING_IMPORTS) -> BaseContext:
    """The start method for workers that need ``imports``: a fork server preloading them (one
    per process; the first call's ``imports`` win), or ``spawn`` where there is no fork server
    or no pidfd to watch the stage with."""
    if "forkserver" not in multiprocessing.get_all_start_methods() or not _pidfds():
        return multiprocessing.get_context("spawn")
    server = multiprocessing.get_context("forkserver")
    server.set_forkserver_preload(list(imports))
    return server


def _pidfds() -> bool:
    """Whether a worker can watch the stage through a pidfd (:func:`die_with_parent`)."""
    try:
        os.close(os.pidfd_open(os.getpid()))
    except (AttributeError, OSError):
        return False
    return True


def start_server(imports: Sequence[str] = TRAINING_IMPORTS) -> None:
    """Launch the fork server now (it imports ``imports`` in the background; a later pool of
    :func:`context` forks its workers from it). A no-op where there is no fork server."""
    if isinstance(context(imports), multiprocessing.context.ForkServerContext):
        from multiprocessing import forkserver

        forkserver.ensure_running()


def die_with_parent(caller: int) -> None:
    """Worker initialiser: end this worker as soon as the stage ``caller`` ends, however it ends
    (a SIGKILLed stage leaves no worker behind writing checkpoints).

    A fork server's workers are not the stage's children, and they keep the server alive, so the
    worker watches the stage itself: a thread waits on a pidfd of it (Linux 5.3+). Without pidfds
    the kernel kills the worker when its parent dies (``PR_SET_PDEATHSIG``), which covers
    ``spawn`` workers, the children of the stage.
    """
    try:
        watch = os.pidfd_open(caller)
    except ProcessLookupError:  # the stage ended before this worker started
        os._exit(1)
    except (AttributeError, OSError):
        _die_with_direct_parent(caller)
        return
    threading.Thread(target=_exit_when_ended, args=(watch,), daemon=True,
                     name="die-with-parent").start()


def _exit_when_ended(pidfd: int) -> None:
    select.select([pidfd], [], [])  # a pidfd becomes readable when its process ends
    os._exit(1)


def _die_with_direct_parent(caller: int) -> None:
    import ctypes
    import signal

    if sys.platform.startswith("linux"):
        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)
    if os.getppid() != caller:  # the parent died before the call above
        os._exit(1)
