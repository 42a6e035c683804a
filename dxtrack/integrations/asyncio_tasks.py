"""asyncio: exceptions that no one retrieves, reported through the loop's exception handler.

A task whose exception is never retrieved, and a callback that raises, reach
``loop.call_exception_handler`` (whatever handler the application set). dxtrack wraps that method
of ``asyncio.BaseEventLoop``, records the exception, marks it (so asyncio's own ERROR log of it
is not recorded again by the logging capture), and calls the original. An exception escaping
``asyncio.run`` reaches ``sys.excepthook`` like any other, when nothing catches it.

asyncio is not imported for this: when the program has not imported it yet, the patch is made
as soon as it does.
"""

from __future__ import annotations

import gc
from types import ModuleType
from typing import TYPE_CHECKING, Any

from dxtrack import capture
from dxtrack.integrations.patches import Patch, WhenImported

if TYPE_CHECKING:
    from dxtrack.client import Client


class AsyncioHook:
    """The patch of ``BaseEventLoop.call_exception_handler``, made now or at asyncio's import."""

    def __init__(self, client: Client) -> None:
        self._client = client
        self.patch: Patch | None = None
        self._watcher = WhenImported("asyncio.base_events", self._apply)

    def _apply(self, module: ModuleType) -> None:
        client = self._client

        def call_exception_handler(loop: Any, context: dict[str, Any]) -> Any:
            if patch.active:
                try:
                    exc = context.get("exception")
                    if capture.unrecorded_error(exc):
                        client.record(capture.exception_event(exc, capture.ASYNCIO, False))
                except Exception:  # a hook must never break the host
                    pass
            return patch.previous(loop, context)

        patch = Patch(module.BaseEventLoop, "call_exception_handler", call_exception_handler)
        self.patch = patch

    def report_never_retrieved(self) -> None:
        """At exit, before the last delivery: report the tasks that failed and that nobody
        retrieved, as asyncio would when they are collected. Those still referenced (a module's
        global) are collected only after dxtrack has closed."""
        if self.patch is None or not self.patch.active:
            return
        gc.collect()  # most are in reference cycles: collecting them reports them
        from asyncio import Future

        for future in [o for o in gc.get_objects() if isinstance(o, Future)]:
            if not getattr(future, "_log_traceback", False) or future.cancelled():
                continue
            exception = future.exception()  # retrieved now: not reported again at teardown
            future.get_loop().call_exception_handler(
                {
                    "message": "Task exception was never retrieved",
                    "exception": exception,
                    "future": future,
                }
            )

    def remove(self) -> None:
        """Undo the patch, or stop waiting for asyncio's import."""
        self._watcher.remove()
        if self.patch is not None:
            self.patch.remove()
