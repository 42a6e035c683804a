"""How an error was captured, and each exception recorded once.

Every error record says how it was captured (``exception.mechanism``) and whether the program
handled it (``exception.handled``). ``error()`` (handled, mechanism ``error``) is the hot path and
carries its trace bare in the event; every other way wraps the trace in ``Captured``.

An exception that dxtrack recorded is marked with an attribute, so that the hooks and the logging
capture skip it when it is re-raised to the top or logged again: one error, one record. Explicit
``error()`` and ``errors()`` calls always record.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable, Mapping
from typing import Any, Final, TypeGuard

from dxtrack import tracebacks
from dxtrack.events import ERROR, Event

ERROR_CALL: Final = "error"
ERRORS_CALL: Final = "errors"
EXCEPTHOOK: Final = "excepthook"
THREADING: Final = "threading"
ASYNCIO: Final = "asyncio"
LOGGING: Final = "logging"
LAMBDA: Final = "lambda"
DECORATOR: Final = "decorator"
FUTURE: Final = "future"
MECHANISMS: Final = (ERROR_CALL, ERRORS_CALL, EXCEPTHOOK, THREADING, ASYNCIO, LOGGING, LAMBDA,
                     DECORATOR, FUTURE)  # fmt: skip
"""The values of ``exception.mechanism``."""

RECORDED_ATTRIBUTE: Final = "__dxtrack_recorded__"
"""Set to True on an exception once dxtrack has recorded it."""


class Captured:
    """The trace slot of an error event captured other than by ``error()``."""

    __slots__ = ("handled", "log", "mechanism", "trace")

    def __init__(
        self,
        trace: tracebacks.Trace | None,
        mechanism: str,
        handled: bool,
        log: dict[str, str] | None = None,
    ) -> None:
        self.trace = trace
        self.mechanism = mechanism
        self.handled = handled
        self.log = log
        """For ``logging``: the logger's name, the level's name, the message, and the
        message's template (which groups messages without an exception)."""


def mark(exc: BaseException) -> None:
    """Note that ``exc`` was recorded (an exception that takes no attributes stays unmarked)."""
    with contextlib.suppress(Exception):
        setattr(exc, RECORDED_ATTRIBUTE, True)


def recorded(exc: BaseException) -> bool:
    """Whether dxtrack has recorded ``exc`` already."""
    try:
        return getattr(exc, RECORDED_ATTRIBUTE, False) is True
    except Exception:
        return False


def unrecorded_error(exc: object) -> TypeGuard[Exception]:
    """Whether ``exc`` is an error that dxtrack has not recorded yet: ``KeyboardInterrupt``,
    ``SystemExit``, ``GeneratorExit`` and asyncio's cancellation end a program on purpose."""
    return isinstance(exc, Exception) and not recorded(exc)


def exception_event(
    exc: BaseException,
    mechanism: str,
    handled: bool,
    metadata: dict[str, Any] | None = None,
    log: dict[str, str] | None = None,
    *,
    mark_recorded: bool = True,
) -> Event:
    """The event of ``exc``, captured by ``mechanism``; marks ``exc`` as recorded unless told
    not to (when the event may never be recorded)."""
    trace = tracebacks.capture(exc, exc.__traceback__)
    if mark_recorded:
        mark(exc)
    captured = Captured(trace, mechanism, handled, log)
    return (ERROR, time.time(), type(exc), tracebacks.exception_text(exc), captured, metadata)


def exception_events(
    exceptions: Iterable[Any], metadata: dict[str, Any] | None, mechanism: str = ERRORS_CALL
) -> list[Event]:
    """The events of ``errors()``: one per item, with the traceback where it has one."""
    now = time.time()
    events: list[Event] = []
    for exc in exceptions:
        trace = None
        if isinstance(exc, BaseException):
            trace = tracebacks.capture(exc, exc.__traceback__)
            mark(exc)
            text = tracebacks.exception_text(exc)
        else:
            text = tracebacks.safe_str(exc)
        captured = Captured(trace, mechanism, True)
        events.append((ERROR, now, type(exc), text, captured, metadata))
    return events


def message_event(log: dict[str, str], metadata: dict[str, Any] | None = None) -> Event:
    """The event of a log record without an exception."""
    return (ERROR, time.time(), None, None, Captured(None, LOGGING, True, log), metadata)


def with_scope(
    metadata: dict[str, Any] | None, scope: Mapping[str, Any] | None
) -> dict[str, Any] | None:
    """``metadata`` (the call's own copy, returned as it is without a scope) over the metadata
    of the current scope (a Lambda invocation)."""
    if not scope:
        return metadata
    return {**scope, **metadata} if metadata else dict(scope)
