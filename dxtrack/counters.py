"""Counts of what happened to records, by outcome and reason."""

from __future__ import annotations

import threading
from collections import Counter


class Counters:
    """Thread-safe counters of records: ``delivered``, ``retried``, ``spooled``, ``dropped`` ...

    Counters named ``dropped.<reason>`` say why records were lost; ``dropped`` is their sum.
    ``omitted.<reason>`` count records left out on purpose.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()

    def add(self, name: str, n: int = 1) -> None:
        """Add ``n`` to the counter ``name``."""
        if n:
            with self._lock:
                self._counts[name] += n

    def drop(self, reason: str, n: int = 1) -> None:
        """Count ``n`` records lost for ``reason``."""
        if n:
            with self._lock:
                self._counts["dropped"] += n
                self._counts[f"dropped.{reason}"] += n

    def omit(self, reason: str, n: int = 1) -> None:
        """Count ``n`` records left out on purpose (sampling, a rate limit, ``before_send``):
        ``omitted.<reason>``, and ``omitted`` their sum. Not a loss."""
        if n:
            with self._lock:
                self._counts["omitted"] += n
                self._counts[f"omitted.{reason}"] += n

    def snapshot(self) -> dict[str, int]:
        """A copy of every counter; the main ones are always present."""
        with self._lock:
            counts = dict(self._counts)
        for name in ("delivered", "retried", "spooled", "dropped", "replayed", "omitted"):
            counts.setdefault(name, 0)
        return counts

    def reset_after_fork(self) -> None:
        """Give a forked child its own, empty counters and a lock nobody holds."""
        self._lock = threading.Lock()
        self._counts = Counter()
