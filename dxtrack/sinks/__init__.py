"""Destinations for finished records. Each module holds one sink; ``base`` holds the contract."""

from dxtrack.sinks.base import Limits, PermanentSendError, RetryableSendError, Sink

__all__ = ["Limits", "PermanentSendError", "RetryableSendError", "Sink"]
