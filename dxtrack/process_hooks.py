"""How records survive the process's end: exit, SIGTERM, fork, and multiprocessing workers.

- ``atexit``: a normal exit, ``sys.exit()`` and an uncaught exception deliver within
  ``exit_timeout`` and spool the rest.
- SIGTERM, the way process managers stop jobs, ends a process without running ``atexit``. When
  it has its default disposition as ``configure()`` runs in the main thread, dxtrack handles it:
  deliver within ``exit_timeout`` and spool the rest, as at exit, then die of SIGTERM as before
  (exit status -15, or 143 in a shell). A handler of the
  application's is chained to instead: it runs, unchanged, and decides how the process ends.
- ``fork()``: the shipper pauses between batches while the process forks, and the child gets a
  shipper of its own.
- multiprocessing children end with ``os._exit()``: they close dxtrack from multiprocessing's
  own finalizers, whatever the start method (fork, spawn, forkserver).
"""

from __future__ import annotations

import _thread
import atexit
import contextlib
import logging
import os
import signal
import threading
import time
from types import FrameType
from typing import TYPE_CHECKING, Any

from dxtrack.client import Client
from dxtrack.log import SdkThread, logger

if TYPE_CHECKING:
    from dxtrack.config import Config
    from dxtrack.delivery.shipper import Shipper

_installed = False
_lock = threading.Lock()
_paused: Shipper | None = None
"""The shipper paused while the process forks."""
_closing = threading.Event()
"""Set once a SIGTERM is being handled."""
_signalled_at = 0.0
FORK_WAIT_SECONDS = 2.0
"""How long a ``fork()`` waits for the shipper to pause (between steps) at most."""
SPOOL_MARGIN = 1.0
"""Of ``exit_timeout``, the seconds kept for spooling what was not delivered (and for the
waits that closing may meet), so that the process is gone within ``exit_timeout``."""
DEATH_MARGIN = 0.2
"""Of ``exit_timeout``, the seconds kept for the process to die once closing is over (a busy
machine schedules the last steps late)."""
DEFER_SECONDS = 0.5
"""How long a SIGTERM that landed inside dxtrack or ``logging`` waits for the main thread to
leave them."""
_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep
_LOGGING_DIR = os.path.dirname(os.path.abspath(logging.__file__)) + os.sep
_THREADING_FILE = threading.__file__
_THREADING_LOCKING = frozenset(
    ("start", "_stop", "_delete", "_maintain_shutdown_locks", "_set_tstate_lock", "enumerate",
     "active_count", "_after_fork", "__init__", "_bootstrap_inner", "_shutdown")
)  # fmt: skip
"""Functions of ``threading`` that hold the locks ``Thread.start()`` takes."""


def install(client: Client, config: Config) -> None:
    """Install the process hooks for ``client`` (once per process) and, as ``config`` asks,
    the SIGTERM handler."""
    global _installed
    import multiprocessing
    import multiprocessing.util

    with _lock:
        if not _installed:
            _installed = True
            atexit.register(_at_exit, client)
            os.register_at_fork(
                before=lambda: _before_fork(client),
                after_in_parent=lambda: _after_fork_in_parent(client),
                after_in_child=lambda: _after_fork_in_child(client),
            )
            # configured before multiprocessing's bootstrap (a fork child, or a spawn child's
            # module-level code): the bootstrap clears finalizers, then runs these
            multiprocessing.util.register_after_fork(client, _close_at_multiprocessing_exit)
            if multiprocessing.parent_process() is not None:  # configured inside the worker
                _close_at_multiprocessing_exit(client)
    if config.handle_sigterm:
        _handle_sigterm(client)


def _at_exit(client: Client) -> None:
    from dxtrack.integrations import installation

    try:
        installation.before_exit()
    except Exception as exc:  # closing must never break the host's exit
        logger.error("dxtrack: error before exit: %r", exc)
    client.close()


def _before_fork(client: Client) -> None:
    global _paused
    _paused = client.shipper
    if _paused is not None:
        _paused.before_fork(FORK_WAIT_SECONDS)


def _after_fork_in_parent(client: Client) -> None:
    global _paused
    paused, _paused = _paused, None  # the one paused, even if configure() ran meanwhile
    if paused is not None:
        paused.after_fork_in_parent()


def _after_fork_in_child(client: Client) -> None:
    global _lock
    _lock = threading.Lock()  # the parent may have held it at the fork
    try:
        client.reset_after_fork()
    except Exception as exc:  # a child must start even if tracking can't
        logger.error("dxtrack: tracking is off in forked child %d: %r", os.getpid(), exc)


def _close_at_multiprocessing_exit(client: Client) -> None:
    """In a multiprocessing worker: close at its exit, and leave SIGTERM to the handler that
    was there before dxtrack's (see ``_handle_sigterm``)."""
    import multiprocessing.util

    multiprocessing.util.Finalize(client, client.close, exitpriority=100)
    handler = signal.getsignal(signal.SIGTERM)
    if getattr(handler, "dxtrack_handler", False):
        with contextlib.suppress(ValueError):  # not the main thread: leave it
            signal.signal(signal.SIGTERM, getattr(handler, "dxtrack_previous", signal.SIG_DFL))


def _handle_sigterm(client: Client) -> None:
    """Handle SIGTERM (``_terminate``), but not in a multiprocessing worker: its parent ends it
    with SIGTERM (``Process.terminate()``, the end of a ``with Pool()`` block) and waits for it.
    A Python handler runs only once the main thread is back in the interpreter, and a signal
    that comes just as the worker blocks on its task queue's semaphore is never acted on, so the
    parent would wait forever. Such a worker dies at once, as without dxtrack."""
    import multiprocessing

    if threading.current_thread() is not threading.main_thread():
        return
    worker = multiprocessing.current_process()
    # a spawned worker is configured while its parent's objects are unpickled ("inheriting"),
    # before multiprocessing tells it it has a parent
    if multiprocessing.parent_process() is not None or getattr(worker, "_inheriting", False):
        return
    previous = signal.getsignal(signal.SIGTERM)
    if previous in (signal.SIG_IGN, None) or getattr(previous, "dxtrack_handler", False):
        return  # ignored on purpose, set outside Python, or already ours

    def on_sigterm(signum: int, frame: FrameType | None) -> Any:
        if previous is signal.SIG_DFL:
            _terminate(client, frame)
        elif callable(previous):
            return previous(signum, frame)
        return None

    on_sigterm.dxtrack_handler = True  # type: ignore[attr-defined]
    on_sigterm.dxtrack_previous = previous  # type: ignore[attr-defined]
    signal.signal(signal.SIGTERM, on_sigterm)


def _terminate(client: Client, frame: FrameType | None) -> None:
    """Deliver within ``exit_timeout`` of the signal, spool the rest, then die of SIGTERM.

    The closing runs on a thread of its own while this (main) thread waits, bounded. The
    signal may have interrupted this thread inside dxtrack or ``logging``, holding a lock that
    closing needs, or inside ``threading`` holding a lock that starting a thread needs (a
    multiprocessing worker ending its threads as its pool terminates it): then the signal is
    raised again a moment later, to be handled once this thread is out (for at most
    ``DEFER_SECONDS``). A second SIGTERM ends the process at once."""
    global _signalled_at
    now = time.monotonic()
    if _closing.is_set():
        _die()
    _signalled_at = _signalled_at or now
    inside = _inside(frame)
    # in threading's own locked sections, Thread.start() would deadlock
    locked = bool(inside.get(_THREADING_FILE, set()) & _THREADING_LOCKING)
    if (locked or _holds_sdk_locks(inside)) and now < _signalled_at + DEFER_SECONDS:
        _thread.start_new_thread(_signal_again_soon, ())
        return
    _closing.set()
    config = client.config
    timeout = config.exit_timeout if config is not None else 0.0
    left = max(timeout - (now - _signalled_at) - DEATH_MARGIN, 0.0)
    closer = SdkThread(
        target=client.close, args=(max(left - SPOOL_MARGIN, 0.0),), name="dxtrack-sigterm"
    )
    closer.daemon = True
    closer.start()
    closer.join(max(left, SPOOL_MARGIN))
    _die()


def _inside(frame: FrameType | None) -> dict[str, set[str]]:
    """The files, and their functions, that the interrupted thread is running."""
    found: dict[str, set[str]] = {}
    while frame is not None:
        found.setdefault(frame.f_code.co_filename, set()).add(frame.f_code.co_name)
        frame = frame.f_back
    return found


def _holds_sdk_locks(inside: dict[str, set[str]]) -> bool:
    """Whether the interrupted thread is running dxtrack's or ``logging``'s code."""
    return any(name.startswith((_PACKAGE_DIR, _LOGGING_DIR)) for name in inside)


def _signal_again_soon() -> None:
    """On a bare thread (``threading``'s locks untouched): SIGTERM again in 10 ms."""
    time.sleep(0.01)
    os.kill(os.getpid(), signal.SIGTERM)


def _die() -> None:
    """Die of SIGTERM, as a process without dxtrack would have (from the main thread)."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTERM)
    os._exit(128 + signal.SIGTERM)  # only if SIGTERM is blocked in this thread
