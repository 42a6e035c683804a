"""The signatures of the tracking calls, and the checks of their arguments (the only errors a
tracking call raises)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final, Protocol


class MetricFunction(Protocol):
    """The signature of ``dxtrack.metric``."""

    def __call__(
        self,
        metric_name: str,
        value: float,
        metadata: Mapping[str, Any] | None = None,
        timestamp: datetime | None = None,
    ) -> None: ...


class ErrorFunction(Protocol):
    """The signature of ``dxtrack.error``."""

    def __call__(self, metadata: Mapping[str, Any] | None = None) -> None: ...


def _described(value: object) -> str:
    """The type and repr of a bad argument, for its message (a ``__repr__`` may raise too)."""
    try:
        text = repr(value)
    except Exception:
        text = "<repr() failed>"
    if len(text) > 200:
        text = text[:200] + "..."
    return f"{type(value).__name__}: {text}"


def checked_value(value: object) -> float:
    """``value`` as a float, or the ``ValueError`` that names it (whatever ``__float__``
    raised)."""
    try:
        return float(value)  # type: ignore[arg-type]
    except Exception:
        raise ValueError(f"value must be a number, got {_described(value)}") from None


UNREADABLE_METADATA: Final = "dxtrack_unreadable_metadata"
"""The key of the metadata recorded instead of a mapping that could not be read."""


def checked_metadata(metadata: object) -> dict[str, Any]:
    """A copy of ``metadata`` as a dict, or the ``ValueError`` that names it. A mapping whose
    reading raises is recorded as ``{"dxtrack_unreadable_metadata": "<its error's type>"}``:
    the call never raises into the program for it."""
    if isinstance(metadata, Mapping):
        try:
            return dict(metadata)
        except Exception as exc:
            return {UNREADABLE_METADATA: type(exc).__name__}
    raise ValueError(f"metadata must be a dict, got {_described(metadata)}")
