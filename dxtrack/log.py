"""The SDK's own logger and threads, and a filter that reports each distinct problem once."""

from __future__ import annotations

import logging
import os
import sys
import threading
import warnings

logger = logging.getLogger("dxtrack")
"""The SDK's own logger. dxtrack never adds handlers to, or changes, any logger the host owns."""


class LogOnce:
    """Logs each distinct problem once per process, so a failing sink doesn't flood the log."""

    def __init__(self) -> None:
        self._seen: set[str] = set()

    def __call__(self, key: str, level: int, message: str, *args: object) -> None:
        """Log ``message`` at ``level`` unless ``key`` was logged before."""
        if key in self._seen:
            return
        self._seen.add(key)
        logger.log(level, message, *args)

    def forget(self, key: str) -> None:
        """Allow ``key`` to be logged again (the problem went away)."""
        self._seen.discard(key)


class SdkThread(threading.Thread):
    """A thread of dxtrack's own: what libraries log on it (botocore, urllib3...) is never
    captured as an error record, which would feed dxtrack its own delivery problems."""


_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


def warn_at_caller(message: str, category: type[Warning]) -> None:
    """A warning attributed to the first frame outside the dxtrack package: the user's line that
    called it, however many of dxtrack's own frames (compiled or not) lie between."""
    frame = sys._getframe(1)
    while frame.f_back is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIR):
        frame = frame.f_back
    module_globals = frame.f_globals
    warnings.warn_explicit(
        message,
        category,
        frame.f_code.co_filename,
        frame.f_lineno,
        module=module_globals.get("__name__"),
        registry=module_globals.setdefault("__warningregistry__", {}),
        module_globals=module_globals,
    )
