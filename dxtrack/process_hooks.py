"""How records survive the process's end: exit, SIGTERM, fork, and multiprocessing workers.

- ``atexit``: a normal exit, ``sys.exit()`` and an uncaught exception deliver within
  ``exit_timeout`` and spool the rest.
- SIGTERM, the way process managers stop jobs, ends a process without running ``atexit``. When
  it has its default disposition as ``configure()`` runs in the main thread, dxtrack handles it:
  deliver and spool as at exit, then die of SIGTERM as before (exit status -15, or 143 in a
  shell). A handler of the application's is chained to instead: it runs, unchanged, and
  decides how the process ends.
- ``fork()``: the shipper pauses between batches while the process forks, and the child gets a
  shipper of its own.
- multiprocessing children end with ``os._exit()``: they close dxtrack from multiprocessing's
  own finalizers, whatever the start method (fork, spawn, forkserver).
"""

from __future__ import annotations

import atexit
import os
import signal
import threading
from types import FrameType
from typing import Any

from dxtrack.client import Client
from dxtrack.config import Config
from dxtrack.log import logger

_installed = False
_lock = threading.Lock()
_SIGTERM_GRACE = 1.0
"""Seconds beyond ``exit_timeout`` that a SIGTERM waits for dxtrack before the process dies."""


def install(client: Client, config: Config) -> None:
    """Install the process hooks for ``client`` (once per process) and, as ``config`` asks,
    the SIGTERM handler."""
    global _installed
    import multiprocessing
    import multiprocessing.util

    with _lock:
        if not _installed:
            _installed = True
            atexit.register(client.close)
            os.register_at_fork(
                before=client.prepare_fork,
                after_in_parent=client.fork_done_in_parent,
                after_in_child=lambda: _after_fork_in_child(client),
            )
            # configured before multiprocessing's bootstrap (a fork child, or a spawn child's
            # module-level code): the bootstrap clears finalizers, then runs these
            multiprocessing.util.register_after_fork(client, _close_at_multiprocessing_exit)
            if multiprocessing.parent_process() is not None:  # configured inside the worker
                _close_at_multiprocessing_exit(client)
    if config.handle_sigterm:
        _handle_sigterm(client)


def _after_fork_in_child(client: Client) -> None:
    global _lock
    _lock = threading.Lock()  # the parent may have held it at the fork
    try:
        client.reset_after_fork()
    except Exception as exc:  # a child must start even if tracking can't
        logger.error("dxtrack: tracking is off in forked child %d: %r", os.getpid(), exc)


def _close_at_multiprocessing_exit(client: Client) -> None:
    import multiprocessing.util

    multiprocessing.util.Finalize(client, client.close, exitpriority=100)


def _handle_sigterm(client: Client) -> None:
    if threading.current_thread() is not threading.main_thread():
        return
    previous = signal.getsignal(signal.SIGTERM)
    if previous in (signal.SIG_IGN, None) or getattr(previous, "dxtrack_handler", False):
        return  # ignored on purpose, set outside Python, or already ours

    def on_sigterm(signum: int, frame: FrameType | None) -> Any:
        if previous is signal.SIG_DFL:
            _close_then_die(client)
        elif callable(previous):
            return previous(signum, frame)
        return None

    on_sigterm.dxtrack_handler = True  # type: ignore[attr-defined]
    signal.signal(signal.SIGTERM, on_sigterm)


def _close_then_die(client: Client) -> None:
    """Deliver within ``exit_timeout`` and spool the rest, then die of SIGTERM.

    The closing runs on a thread of its own, waited for with a bound: the signal may have
    interrupted this (main) thread while it held a lock that closing needs."""
    config = client.config
    timeout = (config.exit_timeout if config is not None else 0.0) + _SIGTERM_GRACE
    closer = threading.Thread(target=client.close, name="dxtrack-sigterm", daemon=True)
    closer.start()
    closer.join(timeout)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTERM)
    os._exit(128 + signal.SIGTERM)  # only if SIGTERM is blocked in this thread
