"""Interrupts that land while dxtrack works on the caller's thread: a Ctrl-C's
``KeyboardInterrupt`` raised in a metadata value's ``__repr__`` it runs, a ``SystemExit``...

Inside a build, dxtrack goes on (the value becomes a placeholder, or the record is counted as
``build_failed``), keeps the interrupt, and raises it again on the way out of the call
(``raised_after``), once the lines of that build are queued: the program is interrupted as it
would be without dxtrack, and nothing is lost uncounted. While the last records move to their
queues and to disk at shutdown, a Ctrl-C is held the same way (``ctrl_c_held``). dxtrack's own
threads never raise one (nothing would catch it). Outside a build, an interrupt is raised at
once, as before.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType

from dxtrack.log import SdkThread

_state = threading.local()


def interrupting(exc: BaseException) -> bool:
    """Whether ``exc`` stops a program rather than reports a failure (no ``Exception``)."""
    return not isinstance(exc, Exception)


def goes_on(exc: BaseException) -> bool:
    """Whether ``exc``, raised in user code dxtrack ran, goes on up to the caller: an
    interrupt, on a thread that is not dxtrack's own."""
    return interrupting(exc) and not isinstance(threading.current_thread(), SdkThread)


class Building:
    """``with building:`` marks this thread as building records, or delivering them inline
    (re-entrant)."""

    def __enter__(self) -> None:
        _state.depth = getattr(_state, "depth", 0) + 1

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        _state.depth -= 1


building = Building()


class RaisedAfter:
    """``with raised_after:`` around what the caller's thread does for a tracking call, a
    flush or a shutdown: on the way out, whether the block ended or another interrupt cut it
    short, the interrupt its builds kept is raised (never later, by another call)."""

    def __enter__(self) -> None:
        pass

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        raise_kept()


raised_after = RaisedAfter()


def keep(exc: BaseException) -> bool:
    """Keep ``exc`` (the first one wins) to raise once this thread's build is queued; False
    outside a build, where the caller raises it now. On dxtrack's own threads it is dropped."""
    if isinstance(threading.current_thread(), SdkThread):
        return True
    if not getattr(_state, "depth", 0):
        return False
    if getattr(_state, "kept", None) is None:
        _state.kept = exc
    return True


def keep_or_raise(exc: BaseException) -> None:
    """For what user code raised, caught as its failure: an interrupt is kept (in a build) or
    raised again now (outside one); anything else is the caller's to handle."""
    if interrupting(exc) and not keep(exc):
        raise exc


def keep_cause(exc: BaseException) -> None:
    """``keep_or_raise`` the interrupt behind ``exc``, if any: orjson turns what its
    ``default`` raised, a ``KeyboardInterrupt`` too, into the cause of a ``TypeError``."""
    if exc.__cause__ is not None:
        keep_or_raise(exc.__cause__)


def pending() -> bool:
    """Whether this thread kept an interrupt: what it does before raising it should not wait
    (on the network, say)."""
    return getattr(_state, "kept", None) is not None


def checkpoint() -> None:
    """Nothing, but Python runs the handler of a signal that arrived while C code ran (a
    Ctrl-C's KeyboardInterrupt) as a function starts: call it where that should happen."""


def raise_kept() -> None:
    """Raise the interrupt this thread kept, if any, once."""
    kept = getattr(_state, "kept", None)
    if kept is not None:
        _state.kept = None
        raise kept


@contextmanager
def ctrl_c_held() -> Iterator[None]:
    """On the main thread, with Python's own Ctrl-C handler: a Ctrl-C during the block is kept
    (for ``raised_after`` to raise), so that what the block moves (built lines to their queues
    and to disk) is not cut in half, and what it would wait for is not waited for (``pending``).
    Elsewhere, or with a handler of the program's, nothing changes."""
    on_main = threading.current_thread() is threading.main_thread()
    if not on_main or signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        yield
        return
    signal.signal(signal.SIGINT, _hold)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def _hold(signum: int, frame: object) -> None:
    if getattr(_state, "kept", None) is None:
        _state.kept = KeyboardInterrupt()
