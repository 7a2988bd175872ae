"""Worker processes of a stage: where they come from and how they end.

Training workers are forked from a *fork server*: a process that imports what a worker needs
(torch, this package's training code) once and never runs torch code, so forking it is safe
(as ``spawn`` is; torch's own guidance names both) and a worker starts in milliseconds instead of
importing torch again. :func:`start_server` launches it without waiting, so its imports run on
another core while the calling stage does its own start-up. Only start-up moves: each worker's
jobs carry their own seeds and thread counts, so results are those of spawned workers. (One
difference: workers see the environment the server started with; a later ``os.environ`` change
does not reach them.)
"""

from __future__ import annotations

import multiprocessing
import os
import select
import sys
import threading
import time
from collections.abc import Callable
from multiprocessing.context import BaseContext

#: What a training worker imports before its first job (torch.optim's first optimiser imports
#: torch._dynamo, about 1 s): the fork server imports it once for every worker it forks.
TRAINING_IMPORTS = ("stages.lib.unmix", "torch._dynamo")


def context() -> BaseContext:
    """The start method of training workers: the fork server, preloading
    :data:`TRAINING_IMPORTS` (a running server keeps what it imported), or ``spawn`` where there
    is no fork server or no pidfd to watch the stage with."""
    if "forkserver" not in multiprocessing.get_all_start_methods() or not _pidfds():
        return multiprocessing.get_context("spawn")
    server = multiprocessing.get_context("forkserver")
    server.set_forkserver_preload(list(TRAINING_IMPORTS))
    return server


def _pidfds() -> bool:
    """Whether a worker can watch the stage through a pidfd (:func:`die_with_parent`)."""
    try:
        os.close(os.pidfd_open(os.getpid()))
    except (AttributeError, OSError):
        return False
    return True


def start_server() -> None:
    """Launch the fork server now (it imports in the background; a later pool of
    :func:`context` forks its workers from it). A no-op where there is no fork server."""
    if isinstance(context(), multiprocessing.context.ForkServerContext):
        from multiprocessing import forkserver

        forkserver.ensure_running()


def die_with_parent(caller: int) -> None:
    """Worker initialiser: end this worker as soon as the stage ``caller`` ends, however it ends
    (a SIGKILLed stage leaves no worker behind writing checkpoints).

    A fork server's workers are not the stage's children, and they keep the server alive, so the
    worker watches the stage itself: a thread waits on a pidfd of it (Linux 5.3+), or polls it
    every second when no pidfd can be had. A ``spawn`` worker without pidfds, a child of the
    stage, gets the kernel's parent-death signal (``PR_SET_PDEATHSIG``).
    """
    try:
        watch = os.pidfd_open(caller)
    except ProcessLookupError:  # the stage ended before this worker started
        os._exit(1)
    except (AttributeError, OSError):  # no pidfds, or none to spare (EMFILE, ENOMEM)
        if os.getppid() == caller:
            _die_with_direct_parent(caller)
        else:
            _watch(_poll_until_gone, caller)
        return
    _watch(_wait_until_readable, watch)


def _watch(until_ended: Callable[[int], None], what: int) -> None:
    def run() -> None:
        until_ended(what)
        os._exit(1)

    threading.Thread(target=run, daemon=True, name="die-with-parent").start()


def _wait_until_readable(pidfd: int) -> None:
    poller = select.poll()  # a pidfd becomes readable when its process ends
    poller.register(pidfd, select.POLLIN)
    poller.poll()


def _poll_until_gone(pid: int) -> None:
    while True:
        time.sleep(1.0)
        try:
            os.kill(pid, 0)  # signal 0: only asks whether the process is still there
        except (ProcessLookupError, PermissionError):  # gone (its number may be reused)
            return


def _die_with_direct_parent(caller: int) -> None:
    import ctypes
    import signal

    if sys.platform.startswith("linux"):
        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)
    if os.getppid() != caller:  # the parent died before the call above
        os._exit(1)
