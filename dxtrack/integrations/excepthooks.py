"""Unhandled exceptions: ``sys.excepthook``, ``threading.excepthook``, and a multiprocessing
worker's ``run()``.

Each hook records the exception (unless dxtrack recorded it already), then calls what was there
before, so the usual traceback still prints and the exit status is unchanged. multiprocessing
prints an exception escaping a worker's ``run()`` itself, without ``sys.excepthook``: dxtrack
wraps each worker's ``run`` as multiprocessing starts it in the worker (forked, or configured
from the parent's configuration), and records it as ``excepthook``.
"""

from __future__ import annotations

import sys
import threading
from types import TracebackType
from typing import TYPE_CHECKING, Any

from dxtrack import capture
from dxtrack.integrations.patches import Patch

if TYPE_CHECKING:
    from dxtrack.client import Client


def _record(client: Client, exc: object, mechanism: str, tb: TracebackType | None = None) -> None:
    try:
        if capture.unrecorded_error(exc):
            if exc.__traceback__ is None and tb is not None:
                exc = exc.with_traceback(tb)
            client.record(capture.exception_event(exc, mechanism, handled=False))
    except Exception:  # a hook must never break the host
        pass


def sys_hook(client: Client) -> Patch:
    """The patch of ``sys.excepthook``."""

    def excepthook(exc_type: type[BaseException], exc: BaseException, tb: Any) -> Any:
        if patch.active:
            _record(client, exc, capture.EXCEPTHOOK, tb if isinstance(tb, TracebackType) else None)
        return patch.previous(exc_type, exc, tb)

    patch = Patch(sys, "excepthook", excepthook)
    return patch


def threading_hook(client: Client) -> Patch:
    """The patch of ``threading.excepthook``."""

    def excepthook(args: Any) -> Any:
        if patch.active:
            _record(client, args.exc_value, capture.THREADING)
        return patch.previous(args)

    patch = Patch(threading, "excepthook", excepthook)
    return patch


def process_hook(client: Client) -> Patch:
    """The patch of ``multiprocessing.process.BaseProcess._bootstrap``, which wraps the
    worker's ``run`` (its own, when a subclass overrides it)."""
    from multiprocessing import process

    def bootstrap(worker: Any, *args: Any, **kwargs: Any) -> Any:
        if patch.active:
            run = worker.run

            def run_and_record_crash() -> None:
                try:
                    run()
                except Exception as exc:
                    _record(client, exc, capture.EXCEPTHOOK)
                    raise

            worker.run = run_and_record_crash
        return patch.previous(worker, *args, **kwargs)

    patch = Patch(process.BaseProcess, "_bootstrap", bootstrap)
    return patch
