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

import sys as _sys
from typing import Any as _Any

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


def __getattr__(name: str) -> _Any:
    """``dxtrack.context``, ``.stage``, ``.run_id`` and ``.default_metadata`` read back the
    configuration (None before ``configure()``); ``dxtrack.compiled`` says whether ``metric()``
    and ``error()`` run compiled (False without the built extension, or with
    ``DXTRACK_PURE_PYTHON=1``)."""
    if name == "compiled":
        from dxtrack.client import compiled_fast_path

        return compiled_fast_path()
    if name in _READ_BACK:
        from dxtrack import api

        config = api.current_client().config
        if config is None:
            return None
        value = getattr(config, name)
        return dict(value) if name == "default_metadata" else value  # a copy
    raise AttributeError(f"module 'dxtrack' has no attribute {name!r}")


def __dir__() -> list[str]:
    """The API, and nothing the package imports for itself."""
    return sorted({*__all__, *_READ_BACK, "compiled", "dxtrack", "__version__"})


dxtrack = _sys.modules[__name__]
