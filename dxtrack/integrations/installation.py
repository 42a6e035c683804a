"""Putting the integrations in place for a configuration, and taking them away again.

- ``capture_unhandled``: ``sys.excepthook``, ``threading.excepthook``, asyncio's exception
  handler, pool futures whose exception nobody reads, and a crash of a multiprocessing worker;
- ``capture_log_level``: log records at or above that level;
- workers started by a configured parent track by themselves.

``install`` puts them in place for a configuration, replacing those of the previous one;
``uninstall`` (at ``shutdown()``) restores what was there before. Each chains to what it replaced.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Protocol

from dxtrack.integrations import workers
from dxtrack.integrations.asyncio_tasks import AsyncioHook
from dxtrack.integrations.excepthooks import process_hook, sys_hook, threading_hook
from dxtrack.integrations.futures import FuturesHook
from dxtrack.integrations.logging_capture import logging_hook
from dxtrack.log import logger

if TYPE_CHECKING:
    from dxtrack.client import Client
    from dxtrack.config import Config


class _Removable(Protocol):
    def remove(self) -> None: ...


_lock = threading.Lock()
_installed: list[_Removable] = []
_settings: tuple[object, ...] = ()


def install(client: Client, config: Config, workers_too: bool = True) -> None:
    """Put the integrations ``config`` asks for in place (and remove those it does not);
    ``workers_too``: hand the configuration to workers started from now on."""
    global _settings
    settings = (client, config.capture_unhandled, config.capture_log_level)
    with _lock:
        if settings == _settings and _installed:  # a reconfiguration: the hooks stay
            workers.share(config if workers_too else None)
            return
        _remove_all()
        _settings = settings
        try:
            if config.capture_unhandled:
                _installed.extend((sys_hook(client), threading_hook(client), process_hook(client)))
                _installed.extend((AsyncioHook(client), FuturesHook(client)))
            if config.capture_log_level is not None:
                _installed.append(logging_hook(client, config.capture_log_level))
            workers.share(config if workers_too else None)
        except Exception as exc:  # tracking goes on without them
            logger.error("dxtrack: could not install the integrations: %r", exc)


def uninstall() -> None:
    """Remove every integration, restoring what each replaced."""
    with _lock:
        _remove_all()
        try:
            workers.share(None)
        except Exception as exc:
            logger.error("dxtrack: could not remove the integrations: %r", exc)


def _remove_all() -> None:
    global _settings
    _settings = ()
    while _installed:
        try:
            _installed.pop().remove()
        except Exception as exc:
            logger.error("dxtrack: could not remove an integration: %r", exc)


def before_exit() -> None:
    """Report what waits for the garbage collector before the last delivery: an asyncio task
    whose exception was never retrieved reports it only when it is collected."""
    for item in list(_installed):
        if isinstance(item, AsyncioHook):
            item.report_never_retrieved()
        elif isinstance(item, FuturesHook):
            item.report_unread()
