"""How a sink has been doing: failures, backoff, and whether records waiting for it belong on
disk."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from dxtrack.delivery.attempts import backoff

SPILL_AFTER: Final = 1.0
"""Seconds a record may wait unaccepted (or a call stay in flight) before it is on disk."""
SLOW_CALL_FACTOR: Final = 4.0
"""A call is late after ``SPILL_AFTER`` seconds, or this many times as long as calls have been
taking, whichever is longer: a sink that answers every call slowly is working."""


@dataclass
class Health:
    """The outcome of a route's calls so far."""

    attempt: int = 0
    """Failures in a row."""
    retry_at: float = 0.0
    blocked_until: float = 0.0
    """Refused for good (bad credentials, no such stream): only probed until then."""
    failing_since: float | None = None
    last_attempt: float = 0.0
    last_success: float = 0.0
    call_seconds: float = 0.0
    """How long successful calls have been taking (a moving average)."""

    def down(self, now: float) -> bool:
        """Failing for ``SPILL_AFTER`` seconds, or refused for good."""
        if now < self.blocked_until:
            return True
        return self.failing_since is not None and now - self.failing_since >= SPILL_AFTER

    def late_after(self) -> float:
        """Seconds after which a call in flight is late (see ``SLOW_CALL_FACTOR``)."""
        return max(SPILL_AFTER, SLOW_CALL_FACTOR * self.call_seconds)

    def stalled(self, now: float, calls_born: Iterable[float]) -> bool:
        """Failing, or nothing accepted while a call is late (its records queued that long
        ago). A sink that is only slower than
        the job is not stalled: what waits for it stays in memory (the builder, and then the
        callers, wait for it)."""
        if self.failing_since is not None:
            return True
        late = self.late_after()
        if now - self.last_success < late:
            return False
        return any(now - born >= late for born in calls_born)

    def record(self, failed: bool, now: float, started: float | None = None) -> None:
        """Back off after a failure; after a success, forget the failures before it (and note
        how long the call took, when it was a call that ``started`` then)."""
        self.last_attempt = now
        if not failed and started is not None:
            took = now - started
            self.call_seconds = (
                took if not self.call_seconds else 0.8 * self.call_seconds + 0.2 * took
            )
        if failed:
            self.attempt += 1
            self.retry_at = now + backoff(self.attempt)
            if self.failing_since is None:
                self.failing_since = now
        else:
            self.attempt, self.failing_since, self.last_success = 0, None, now

    def probe_now(self) -> None:
        """Try again at once, not after the backoff."""
        self.retry_at = 0.0
        self.blocked_until = min(self.blocked_until, time.monotonic())

    def given_up(self, now: float, retry_budget: float, since: float) -> bool:
        """Refused for good, or failing for ``retry_budget`` seconds, and tried again after
        ``since``."""
        failing = self.failing_since
        given_up = now < self.blocked_until or (
            failing is not None and now - failing >= retry_budget
        )
        return given_up and self.last_attempt >= since
