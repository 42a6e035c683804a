"""An in-memory sink: the records, parsed, in a list. Used by ``dxtrack.testing``."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import orjson

from dxtrack.sinks.base import Limits

_ONE_LINE_PER_ITEM = Limits(
    max_item_bytes=1 << 62, max_items_per_call=1 << 30, max_call_bytes=1 << 62, pack_lines=False
)


class MemorySink:
    """Keeps every record of one kind it receives, parsed, in ``records``."""

    limits = _ONE_LINE_PER_ITEM
    durable = False

    def __init__(self, kind: str, records: list[dict[str, Any]]) -> None:
        self.name = f"memory:{kind}"
        self.destination = self.name
        self.kinds = frozenset((kind,))
        self.records = records
        self._lock = threading.Lock()

    def start(self) -> None:
        """Nothing to prepare."""

    def send(self, items: Sequence[bytes]) -> Sequence[int]:
        """Parse and keep ``items``."""
        parsed = [orjson.loads(item) for item in items]
        with self._lock:
            self.records.extend(parsed)
        return ()

    def close(self) -> None:
        """Records stay readable after close."""
