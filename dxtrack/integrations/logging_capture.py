"""Log records at or above ``capture_log_level`` become error records.

dxtrack wraps ``logging.Logger.callHandlers``, which every logger calls for a record that passed
its level and filters. No handler is added and no level is changed: the host's logging works as
it did, and a record the host's configuration never creates is not captured either. dxtrack's
own loggers (``dxtrack`` and below) are never captured.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any

from dxtrack import capture, tracebacks
from dxtrack.integrations.patches import Patch
from dxtrack.log import SdkThread
from dxtrack.shaping import inside_before_send

if TYPE_CHECKING:
    from dxtrack.client import Client

_busy = threading.local()
"""Set while a record is captured: whatever capturing logs is never captured in turn."""


def _own(name: str) -> bool:
    return name == "dxtrack" or name.startswith("dxtrack.")


def log_fields(record: logging.LogRecord) -> dict[str, str]:
    """What an error record says about the log record it came from."""
    try:
        message = record.getMessage()
    except Exception as exc:  # a bad format string or argument: keep what there is
        message = f"{tracebacks.safe_str(record.msg)} <formatting failed: {type(exc).__name__}>"
    return {
        "level": record.levelname,
        "logger": record.name,
        "message": message,
        "template": tracebacks.safe_str(record.msg),
    }


def logging_hook(client: Client, level: int) -> Patch:
    """The patch of ``logging.Logger.callHandlers``, capturing records at ``level`` and above."""

    def call_handlers(logger: logging.Logger, record: logging.LogRecord) -> Any:
        if (
            patch.active
            and record.levelno >= level
            and not getattr(_busy, "on", False)
            and not inside_before_send()
        ):
            _busy.on = True
            try:
                _capture(client, record)
            except Exception:  # a hook must never break the host
                pass
            finally:
                _busy.on = False
        return patch.previous(logger, record)

    patch = Patch(logging.Logger, "callHandlers", call_handlers)
    return patch


def _capture(client: Client, record: logging.LogRecord) -> None:
    if _own(record.name) or isinstance(threading.current_thread(), SdkThread):
        return  # dxtrack's own, or logged by a library on dxtrack's threads (botocore...)
    exc_info = record.exc_info
    exc = exc_info[1] if isinstance(exc_info, tuple) and len(exc_info) == 3 else None
    if exc is not None:
        if not capture.recorded(exc):
            event = capture.exception_event(exc, capture.LOGGING, True, log=log_fields(record))
            client.record(event)
        return
    client.record(capture.message_event(log_fields(record)))
