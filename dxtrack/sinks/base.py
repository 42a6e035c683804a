"""The one contract every sink fulfils."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from dxtrack.delivery.compression import Codec


class RetryableSendError(Exception):
    """The whole call failed, and trying again later may work (throttling, 5xx, network)."""


class PermanentSendError(Exception):
    """Retrying can't fix this (no such stream, access denied). The message says how to fix it."""


@dataclass(frozen=True)
class Limits:
    """What one item and one ``send`` call may hold.

    An item is what the destination bills and stores as one unit: a Firehose record, a syslog
    message. With ``pack_lines`` the shipper joins many JSON lines into one item.
    """

    max_item_bytes: int
    max_items_per_call: int
    max_call_bytes: int
    pack_lines: bool
    max_in_flight: int = 1
    """How many calls may be in flight at once (from different sender threads)."""
    codec: Codec | None = None
    """What packed items are compressed with (``compression``); None sends plain lines."""


class Sink(Protocol):
    """Delivers finished items to one destination. Sinks never start threads and never retry.

    ``send`` returns the indices of the items that failed and may be sent again; it raises
    ``RetryableSendError`` or ``PermanentSendError`` when the whole call failed. Any other
    exception is treated as retryable.
    """

    name: str
    """Unique and stable: used in logs and counters."""

    destination: str
    """Where it delivers, as a directory name: the key of its spool. Two sinks with the same
    destination share a spool, so it names what records go to, not how it is spelt."""

    kinds: frozenset[str]
    """The record kinds (``error``, ``metric``) this sink receives."""

    limits: Limits

    durable: bool
    """Whether records this sink can't take are spooled to disk (else dropped and counted)."""

    def start(self) -> None:
        """Get ready to send: import libraries, create clients. Called once, on the thread that
        will send, as soon as the pipeline starts (not lazily at exit, when the interpreter
        may no longer allow it). May raise; ``send`` then tries again."""
        ...

    def send(self, items: Sequence[bytes]) -> Sequence[int]:
        """Deliver ``items``; return the indices of those that failed and may be retried."""
        ...

    def close(self) -> None:
        """Release connections and files. Called once, after the last send."""
        ...
