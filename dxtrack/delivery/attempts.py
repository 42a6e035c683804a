"""One call to a sink: what is in flight, what its answer means, and the backoff after it; and
delivery on the caller's thread, a few tries of it."""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

from dxtrack import interrupts
from dxtrack.counters import Counters
from dxtrack.delivery.packing import Item, calls, pack
from dxtrack.delivery.segments import Claim
from dxtrack.log import LogOnce, logger
from dxtrack.sinks.base import PermanentSendError, RetryableSendError, Sink

if TYPE_CHECKING:
    from dxtrack.delivery.route import Route

BACKOFF_BASE: Final = 0.1
BACKOFF_MAX: Final = 5.0
INLINE_ATTEMPTS: Final = 3
BLOCKED_PROBE_SECONDS: Final = 30.0
"""After an error retrying can't fix, how long before the sink is tried again."""


@dataclass(eq=False)
class Call:
    """One ``send`` in flight."""

    items: list[Item]
    started: float
    born: float
    """When its oldest item was queued: how long its records have waited counts, not only how
    long the call has been in flight."""
    claim: Claim | None = None
    """The spool segment its items were read from (a replay)."""
    insurance: Claim | None = None
    """The segment its items were written to because it took long."""
    lock: threading.Lock = field(default_factory=threading.Lock)
    done: bool = False
    counted_spooled: bool = False
    """Counted as spooled at exit, while still in flight."""


def count_spooled_at_exit(call: Call, stats: Counters) -> None:
    """A call still in flight at exit is on disk for the next start (its insurance copy):
    counted as spooled, and uncounted again if it then succeeds before the process ends."""
    with call.lock:
        if call.insurance is not None and not call.done:
            call.counted_spooled = True
            stats.add("spooled", lines_of(call.items))


def attempt(sink: Sink, items: list[bytes], log_once: LogOnce) -> tuple[Sequence[int], bool]:
    """One ``sink.send``: the indices of the items that failed (all of them when the whole call
    failed), and whether the failure is one retrying can't fix. Logs each problem once."""
    try:
        failed = sink.send(items)
    except PermanentSendError as exc:
        log_once(f"permanent:{sink.name}", logging.ERROR, "dxtrack: %s", exc)
        return range(len(items)), True
    except BaseException as exc:  # RetryableSendError, anything a sink didn't expect
        if interrupts.goes_on(exc):  # a Ctrl-C on the caller's thread (inline delivery)
            raise
        kind = "retryable" if isinstance(exc, RetryableSendError) else type(exc).__name__
        text = " ".join(str(exc).split())[:300]  # one line, even when a server answers in HTML
        log_once(
            f"retry:{sink.name}:{kind}",
            logging.WARNING,
            "dxtrack: sending to %s failed, will retry: %s",
            sink.name,
            text,
        )
        return range(len(items)), False
    log_once.forget(f"permanent:{sink.name}")
    return failed, False


def deliver_inline(route: Route, lines: list[bytes]) -> None:
    """Deliver on the caller's thread, a few tries with backoff; then spool the rest. A Ctrl-C
    on the way puts what is not delivered on disk (or counts it), then goes on up."""
    left: list[list[Item]] | None = None  # the calls not settled yet, once packed
    try:
        now = time.monotonic()
        items = pack(lines, route.sink.limits, now)
        if route.spool is not None and (
            route.down(now) or now < route.health.retry_at or interrupts.pending()
        ):  # failing moments ago, or a Ctrl-C to raise: don't wait on it (again)
            left = []
            route.spill(items, "send_failed")
            return
        left = list(calls(items, route.sink.limits))
        while left:
            call = left[0]
            for tries in range(INLINE_ATTEMPTS):
                failed = set(route.send(call))
                delivered = lines_of(call) - sum(call[i].lines for i in failed)
                call = left[0] = [item for i, item in enumerate(call) if i in failed]
                route.stats.add("delivered", delivered)
                if not call or now < route.health.blocked_until or interrupts.pending():
                    break
                route.stats.add("retried", lines_of(call))
                if tries + 1 < INLINE_ATTEMPTS:
                    time.sleep(backoff(tries))
            with route.lock:
                route.health.record(bool(call), time.monotonic())
            left.pop(0)
            route.spill(call, "send_failed")
    except BaseException as exc:
        if interrupts.goes_on(exc):
            packed = [[*pack(lines, route.sink.limits, 0.0)]] if left is None else left
            route.spill([item for call in packed for item in call], "interrupted")
        raise
    route.wake.set()


def start_sink(route: Route, log_once: LogOnce) -> None:
    """Get a route's sink ready (clients, connections); a failure is reported as ``send`` would
    report it, and ``send`` tries again."""
    try:
        route.sink.start()
    except PermanentSendError as exc:
        log_once(f"permanent:{route.name}", logging.ERROR, "dxtrack: %s", exc)
    except Exception as exc:
        log_once(
            f"start:{route.name}",
            logging.WARNING,
            "dxtrack: could not start %s: %r",
            route.name,
            exc,
        )


def senders_needed(route: Route) -> int:
    """One sender thread per call a route's sink may have in flight; an inline route needs one
    only to replay its spool."""
    if route.inline:
        return 1 if route.spool is not None else 0
    return route.sink.limits.max_in_flight


def close_route(route: Route) -> None:
    """Close the sink and the spool of a route that no thread uses any more."""
    try:
        route.sink.close()
    except Exception as exc:
        logger.debug("dxtrack: closing %s failed: %r", route.name, exc)
    if route.spool is not None:
        route.spool.close()


def lines_of(items: Iterable[Item]) -> int:
    return sum(item.lines for item in items)


def units_of(item: Item, whole_items: bool, index: int) -> range:
    """The units of a claim an item covers: one per item for an insurance segment (written
    item by item), its lines for a replayed segment."""
    if whole_items:
        return range(index, index + 1)
    return range(item.first_line, item.first_line + item.lines)


def backoff(attempt: int) -> float:
    """Exponential backoff with full jitter."""
    return random.uniform(0, min(BACKOFF_MAX, BACKOFF_BASE * (2 ** min(attempt, 16))))
