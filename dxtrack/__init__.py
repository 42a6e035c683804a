"""dxtrack: errors and metrics from Python jobs into your data lake.

    import dxtrack
    dxtrack.configure(context="my-job", stage="prod")
    dxtrack.metric("products.downloaded", 42, metadata={"shop": "a"})
    try:
        ...
    except Exception:
        dxtrack.error(metadata={"shop": "a"})

``from dxtrack import dxtrack`` gives this same module, as in the original README.
"""

from __future__ import annotations

import sys
from typing import Any

from dxtrack.api import (
    capture_errors,
    configure,
    error,
    errors,
    flush,
    flush_after,
    flush_metrics_buffer,
    lambda_handler,
    metric,
    shutdown,
    stats,
    timer,
)

__version__ = "0.1.0"

__all__ = [
    "capture_errors",
    "configure",
    "error",
    "errors",
    "flush",
    "flush_after",
    "flush_metrics_buffer",
    "lambda_handler",
    "metric",
    "shutdown",
    "stats",
    "timer",
]

_READ_BACK = ("context", "stage", "run_id", "default_metadata")


def __getattr__(name: str) -> Any:
    """``dxtrack.context``, ``.stage``, ``.run_id`` and ``.default_metadata`` read back the
    configuration (None before ``configure()``)."""
    if name in _READ_BACK:
        from dxtrack import api

        config = api.current_client().config
        if config is None:
            return None
        value = getattr(config, name)
        return dict(value) if name == "default_metadata" else value  # a copy
    raise AttributeError(f"module 'dxtrack' has no attribute {name!r}")


dxtrack = sys.modules[__name__]
