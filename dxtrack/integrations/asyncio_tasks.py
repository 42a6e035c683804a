"""asyncio: exceptions that no one retrieves, reported through the loop's exception handler.

A task whose exception is never retrieved, and a callback that raises, reach
``loop.call_exception_handler`` (whatever handler the application set). dxtrack wraps that method
of ``asyncio.BaseEventLoop``, records the exception, marks it (so asyncio's own ERROR log of it
is not recorded again by the logging capture), and calls the original. An exception escaping
``asyncio.run`` reaches ``sys.excepthook`` like any other, when nothing catches it.

asyncio is not imported for this: when the program has not imported it yet, the patch is made
as soon as it is.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.machinery
import sys
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import TYPE_CHECKING, Any

from dxtrack import capture
from dxtrack.integrations.patches import Patch

if TYPE_CHECKING:
    from dxtrack.client import Client

MODULE = "asyncio.base_events"


class AsyncioHook:
    """The patch of ``BaseEventLoop.call_exception_handler``, made now or at asyncio's import."""

    def __init__(self, client: Client) -> None:
        self._client = client
        self.patch: Patch | None = None
        self._watcher: _ImportWatcher | None = None
        module = sys.modules.get(MODULE)
        if module is not None and hasattr(module, "BaseEventLoop"):
            self._apply(module)
        else:
            self._watcher = _ImportWatcher(self._apply)
            sys.meta_path.insert(0, self._watcher)

    def _apply(self, module: ModuleType) -> None:
        client = self._client

        def call_exception_handler(loop: Any, context: dict[str, Any]) -> Any:
            if patch.active:
                try:
                    exc = context.get("exception")
                    if isinstance(exc, Exception) and not capture.recorded(exc):
                        client.record(capture.exception_event(exc, capture.ASYNCIO, False))
                except Exception:  # a hook must never break the host
                    pass
            return patch.previous(loop, context)

        patch = Patch(module.BaseEventLoop, "call_exception_handler", call_exception_handler)
        self.patch = patch

    def remove(self) -> None:
        """Undo the patch, or stop waiting for asyncio's import."""
        if self._watcher is not None:
            self._watcher.done = True
            if self._watcher in sys.meta_path:
                sys.meta_path.remove(self._watcher)
        if self.patch is not None:
            self.patch.remove()


class _ImportWatcher(importlib.abc.MetaPathFinder):
    """Calls ``then(module)`` once ``asyncio.base_events`` has been executed."""

    def __init__(self, then: Callable[[ModuleType], None]) -> None:
        self.done = False
        self._then = then

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != MODULE or self.done:
            return None
        self.done = True  # once, and not for the lookup below
        spec = importlib.machinery.PathFinder.find_spec(fullname, path, target)
        loader = spec.loader if spec is not None else None
        if spec is None or loader is None or not hasattr(loader, "exec_module"):
            return spec
        then, execute = self._then, loader.exec_module

        def exec_module(module: ModuleType) -> None:
            execute(module)
            with contextlib.suppress(Exception):  # never break the host's import
                then(module)

        loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec
