"""Records the user shapes, on the shipper: sampling, error storms, and ``before_send``.

A record left out by any of them takes no ``seq`` number, so that a gap in ``seq`` still means a
lost record; what is left out is counted in ``stats()`` under ``omitted.<reason>``.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import orjson

from dxtrack import jsonsafe
from dxtrack.events import Event
from dxtrack.interrupts import goes_on
from dxtrack.log import LogOnce

WINDOW_SECONDS: Final = 60.0
"""The window of ``error_rate_limit``: records per fingerprint per minute."""
MAX_TRACKED_FINGERPRINTS: Final = 10_000
"""Fingerprints whose window is kept; past that many at once, errors are not limited."""

RECORD: Final = 0
"""``ErrorLimiter.admit``: the occurrence gets a record of its own."""
SUMMARIZED: Final = 1
"""Held back, and the first so in its window: the window's summary record is one occurrence."""
HELD: Final = 2
"""Held back, and counted only in the summary's ``suppressed``."""

SAMPLED: Final = "sampled"
RATE_LIMITED: Final = "rate_limited"
BEFORE_SEND: Final = "before_send"

Omit = Callable[[str, int], None]
"""Counts records left out on purpose: ``omit(reason, n)``."""


@dataclass(frozen=True)
class Shaping:
    """What a configuration asks of its records (the defaults: scrubbed, nothing else)."""

    scrub: bool = True
    scrub_keys: Sequence[str] = ()
    metric_sample_rate: float = 1.0
    error_sample_rate: float = 1.0
    error_rate_limit: int | None = None
    before_send: Callable[[dict[str, Any]], Any] | None = None
    log_once: LogOnce = field(default_factory=LogOnce)


class Sampler:
    """Keeps each record with probability ``rate``."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self._random = random.Random().random

    def keep(self) -> bool:
        """Whether the next record is kept."""
        return self._random() < self.rate


class Window:
    """One fingerprint's current window: when it began, the occurrences recorded, and those
    held back, with the latest of them (its summary record)."""

    __slots__ = ("held", "last", "recorded", "start")

    def __init__(self, start: float) -> None:
        self.start = start
        self.recorded = 0
        self.held = 0
        self.last: Event | None = None


class ErrorLimiter:
    """At most ``limit`` records per fingerprint per window; then one summary record per window
    that stands for the occurrences held back: ``suppressed`` says how many besides itself."""

    def __init__(self, limit: int, window: float = WINDOW_SECONDS) -> None:
        self.limit = limit
        self.window = window
        self._windows: dict[str, Window] = {}
        self._ready: list[tuple[Event, int]] = []
        self._lock = threading.Lock()  # the builder, callers building inline or in overflow

    def admit(self, fingerprint: str, event: Event) -> int:
        """``RECORD`` when ``event`` gets a record of its own; else ``SUMMARIZED`` or ``HELD``:
        it is counted in its window's summary. An event past its fingerprint's window closes
        that window."""
        at = event[1] if isinstance(event[1], float) else 0.0
        with self._lock:
            window = self._windows.get(fingerprint)
            if window is not None and at >= window.start + self.window:
                self._ready.extend(_summary(window))
                window = None
            if window is None:
                if len(self._windows) >= MAX_TRACKED_FINGERPRINTS:
                    self._windows = {key: w for key, w in self._windows.items() if w.held}
                    if len(self._windows) >= MAX_TRACKED_FINGERPRINTS:
                        return RECORD
                window = self._windows[fingerprint] = Window(at)
            if window.recorded < self.limit:
                window.recorded += 1
                return RECORD
            window.held += 1
            window.last = event
            return SUMMARIZED if window.held == 1 else HELD

    def holding(self) -> bool:
        """Whether a summary is owed: occurrences are held back, or a window closed."""
        with self._lock:
            return bool(self._ready) or any(w.held for w in self._windows.values())

    def due(self, now: float, everything: bool = False) -> list[tuple[Event, int]]:
        """The summaries of closed windows and of those that ended by ``now`` (of every
        window, at a flush or exit: the window goes on, with nothing held)."""
        with self._lock:
            out, self._ready = self._ready, []
            for fingerprint, window in list(self._windows.items()):
                if everything or now >= window.start + self.window:
                    out.extend(_summary(window))
                    if not everything:
                        del self._windows[fingerprint]
            return out


def _summary(window: Window) -> list[tuple[Event, int]]:
    if window.last is None or not window.held:
        return []
    summary = [(window.last, window.held - 1)]
    window.held, window.last = 0, None
    return summary


_hook = threading.local()


def inside_before_send() -> bool:
    """Whether this thread is running the user's ``before_send``: what it logs is not captured
    (a hook that logs an error for each record would otherwise feed itself forever)."""
    return getattr(_hook, "on", False) is True


class BeforeSend:
    """Runs the user's ``before_send`` on a copy of each record, as JSON types."""

    def __init__(self, hook: Callable[[dict[str, Any]], Any], log_once: LogOnce) -> None:
        self._hook = hook
        self._log_once = log_once

    def apply(self, record: dict[str, Any]) -> dict[str, Any] | None:
        """The record to send (the hook's, or ``record`` itself if the hook failed or returned
        something else than a record with the same fields), or None to drop it."""
        given = orjson.loads(jsonsafe.dumps(record))
        _hook.on = True
        try:
            result = self._hook(given)
        except BaseException as exc:
            if goes_on(exc):  # a Ctrl-C or sys.exit() on the caller's thread: not the hook's
                raise  # failure (the builder thread goes on, whatever the hook raised)
            self._failed(f"raised {type(exc).__name__}: {exc}")
            return record
        finally:
            _hook.on = False
        if result is None:
            return None
        if not isinstance(result, dict) or result.keys() != record.keys():
            self._failed("returned something else than the record with the same fields")
            return record
        return result

    def _failed(self, what: str) -> None:
        self._log_once(
            "before_send",
            logging.ERROR,
            "dxtrack: before_send %s; the record is sent unchanged",
            what,
        )
