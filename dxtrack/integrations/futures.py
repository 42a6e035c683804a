"""``concurrent.futures``: an exception that a pool's future holds and nobody ever reads.

A ``ThreadPoolExecutor`` or ``ProcessPoolExecutor`` task that raises stores the exception in its
future, where it stays unseen when the program never calls ``result()`` or ``exception()``.
dxtrack wraps ``Future.set_exception`` to capture the exception then (its frames, not the
object), and reports it (mechanism ``future``, not handled) when the future is collected unread,
or at exit for futures still referenced. Reading the future in any way counts: ``result()``,
``exception()``, and asyncio's ``wrap_future``, which reads it for you.

The module is not imported for this: when the program has not imported it yet, the patch is
made as soon as it does.
"""

from __future__ import annotations

import threading
import weakref
from types import ModuleType
from typing import TYPE_CHECKING, Any

from dxtrack import capture
from dxtrack.events import Event
from dxtrack.integrations.patches import Patch, WhenImported

if TYPE_CHECKING:
    from dxtrack.client import Client

PRUNE_AT = 1_024
"""Finalizers kept before the collected ones are dropped from the list."""
UNREAD = "_dxtrack_unread"
"""The attribute of a future holding its ``_Unread``."""


class _Unread:
    """The captured exception of one future, until someone reads the future."""

    __slots__ = ("event", "read")

    def __init__(self, event: Event) -> None:
        self.event = event
        self.read = False


class FuturesHook:
    """The patches of ``Future.set_exception``, ``result`` and ``exception``."""

    def __init__(self, client: Client) -> None:
        self._client = client
        self._patches: list[Patch] = []
        self._finalizers: list[weakref.finalize[Any, Any]] = []
        self._prune_at = PRUNE_AT
        self._lock = threading.Lock()
        self._watcher = WhenImported("concurrent.futures._base", self._apply)

    def _apply(self, module: ModuleType) -> None:
        future_class = module.Future

        def set_exception(future: Any, exception: BaseException | None) -> Any:
            result = set_patch.previous(future, exception)
            if set_patch.active:
                self._watch(future, exception)
            return result

        def read(patch_name: str) -> Any:
            def reader(future: Any, *args: Any, **kwargs: Any) -> Any:
                unread = future.__dict__.get(UNREAD)
                if unread is not None:
                    unread.read = True
                return patches[patch_name].previous(future, *args, **kwargs)

            return reader

        set_patch = Patch(future_class, "set_exception", set_exception)
        patches = {name: Patch(future_class, name, read(name)) for name in ("result", "exception")}
        self._patches = [set_patch, *patches.values()]

    def _watch(self, future: Any, exception: BaseException | None) -> None:
        try:
            if not capture.unrecorded_error(exception):
                return
            event = capture.exception_event(exception, capture.FUTURE, False, mark_recorded=False)
            unread = _Unread(event)
            future.__dict__[UNREAD] = unread
            finalizer = weakref.finalize(future, self._report, unread)
            finalizer.atexit = False  # reported by report_unread(), before dxtrack closes
            with self._lock:
                if len(self._finalizers) >= self._prune_at:  # most are read or collected
                    self._finalizers = [f for f in self._finalizers if f.alive]
                    self._prune_at = max(PRUNE_AT, 2 * len(self._finalizers))
                self._finalizers.append(finalizer)
        except Exception:  # a hook must never break the host
            pass

    def _report(self, unread: _Unread) -> None:
        if not unread.read and self._patches and self._patches[0].active:
            self._client.record(unread.event)

    def report_unread(self) -> None:
        """At exit: report the futures still referenced whose exception nobody read."""
        with self._lock:
            finalizers = list(self._finalizers)
        for finalizer in finalizers:
            # not finalizer(): weakref's own exit hook may have turned finalizers off already
            detached = finalizer.detach()
            if detached is not None:
                _, report, args, _ = detached
                report(*args)

    def remove(self) -> None:
        """Undo the patches, or stop waiting for the import."""
        self._watcher.remove()
        for patch in self._patches:
            patch.remove()
