"""The signatures of the tracking calls, and the checks of their arguments (the only errors a
tracking call raises)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Protocol


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


def checked_value(value: object) -> float:
    """``value`` as a float, or the ``ValueError`` that names it."""
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"value must be a number, got {type(value).__name__}: {value!r}") from None


def checked_metadata(metadata: object) -> dict[str, Any]:
    """A copy of ``metadata`` as a dict, or the ``ValueError`` that names it."""
    if isinstance(metadata, Mapping):
        return dict(metadata)
    raise ValueError(f"metadata must be a dict, got {type(metadata).__name__}: {metadata!r}")
