"""The one place for threads and batching: capture buffer, background shipper, retries, spool.

The caller's thread only appends a captured event to a bounded, flat buffer (see ``events``).
The shipper, one per process, is two daemon threads:

- the builder (``dxtrack-shipper``) builds the JSON lines and packs them for each sink, and
  replays the spool once a sink takes records again;
- the senders (``dxtrack-sender-0`` and ``-1``) send, retry failed items with exponential
  backoff and jitter, and spool what can't be delivered within the retry budget; a sink whose
  limits allow it (Firehose) has two calls in flight at once.

So building the next batch overlaps the network round trip of the last. Routes marked
``inline`` are delivered on the caller's thread instead, before the tracking call returns
(stage ``test``, and ``use_async_requests=False``).
"""

from __future__ import annotations

import itertools
import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Final, TypeVar

from dxtrack.counters import Counters
from dxtrack.events import EVENT_WIDTH, Event, iter_events, pop_events
from dxtrack.log import LogOnce, logger
from dxtrack.packing import Item, ReplayTicket, calls, pack
from dxtrack.records import RecordBuilder
from dxtrack.sinks.base import PermanentSendError, RetryableSendError, Sink
from dxtrack.spool import Segment, Spool

BACKOFF_BASE: Final = 0.1
BACKOFF_MAX: Final = 5.0
BLOCKED_PROBE_SECONDS: Final = 30.0
INLINE_ATTEMPTS: Final = 3
SENDERS: Final = 2
"""Sender threads: a sink whose limits allow it gets this many calls in flight at once."""
DRAIN_CHUNK: Final = 20_000

Line = tuple[str, bytes]
T = TypeVar("T")


class Route:
    """One sink with the items waiting for it, its backoff state and its spool."""

    def __init__(
        self,
        make_sink: Callable[[], Sink],
        *,
        inline: bool,
        spool: Spool | None,
        max_pending_bytes: int,
    ) -> None:
        self.make_sink = make_sink
        self.sink = make_sink()
        self.inline = inline
        self.spool = spool if self.sink.durable else None
        self.max_pending_bytes = max_pending_bytes
        self.lock = threading.Lock()
        self.pending: deque[Item] = deque()
        self.pending_bytes = 0
        self.inflight: list[Item] = []
        self.calls_in_flight = 0
        self.attempt = 0
        self.retry_at = 0.0
        self.blocked_until = 0.0
        self.replaying: list[tuple[ReplayTicket, Segment]] = []
        self.replay_due = True
        self.down = False
        """The retry budget ran out: new records go to the spool, one probes the sink."""
        self.probe_wanted = False
        """A flush is waiting: probe a sink that is down now, not after the backoff."""

    @property
    def name(self) -> str:
        """The sink's name."""
        return self.sink.name

    def busy(self) -> bool:
        """Whether anything waits for, or is being sent to, this sink (a sink that is down only
        holds its probe, which a flush does not wait for)."""
        with self.lock:
            waiting = self.pending and (not self.down or self.probe_wanted)
            return bool(waiting or self.inflight or self.replaying)

    def reset_after_fork(self) -> None:
        """A forked child keeps none of the parent's items, locks or connections."""
        self.lock = threading.Lock()
        self.pending = deque()
        self.pending_bytes = 0
        self.inflight = []
        self.calls_in_flight = 0
        self.replaying = []
        self.attempt = 0
        self.retry_at = self.blocked_until = 0.0
        self.replay_due = True
        self.down = self.probe_wanted = False
        self.sink = self.make_sink()
        if self.spool is not None:
            self.spool.reset_after_fork()


class Pipeline:
    """Captures events on the caller's thread and delivers them to every route."""

    def __init__(
        self,
        builder: RecordBuilder,
        routes: Sequence[Route],
        *,
        max_buffer: int,
        flush_interval: float,
        retry_budget: float,
        stats: Counters,
        log_once: LogOnce,
        orphans: Sequence[deque[Any]] = (),
    ) -> None:
        self.builder = builder
        self._orphans = list(orphans)
        """Buffers of a previous configuration: a thread that was in the middle of a tracking
        call while ``configure()`` ran may still append to one; those events are shipped here."""
        self.stats = stats
        self._log_once = log_once
        self._routes = list(routes)
        self._inline_routes = [r for r in routes if r.inline]
        self._background_routes = [r for r in routes if not r.inline]
        self.max_buffer = max_buffer
        self.max_slots = max_buffer * EVENT_WIDTH
        self.wake_slots = max(1, max_buffer // 2) * EVENT_WIDTH
        self._flush_interval = flush_interval
        self._retry_budget = retry_budget
        self.buffer: deque[Any] = deque()
        self._built: deque[Line] = deque()
        self._seq = itertools.count(1)
        self._wake = threading.Event()
        self._settled = threading.Condition()
        self._cycles = 0
        self._settled_cycle = -1
        self._flush_wanted = False
        self._drain_lock = threading.Lock()
        self._inline_lock = threading.Lock()
        self._closed = False
        self._thread: threading.Thread | None = None
        self._senders: list[threading.Thread] = []
        self._sinks_started = threading.Event()
        self._send_wake = threading.Event()
        # Held while the builder builds and while the sender sends, so that fork() can wait for
        # both to pause: a fork in the middle of a lazy import (urllib3 imports encodings.idna
        # on its first connection) leaves the module's lock held forever in the child.
        self._build_lock = threading.Lock()
        self._send_locks = [threading.Lock() for _ in range(SENDERS)]
        self._held_for_fork: list[threading.Lock] = []
        self.has_inline = bool(self._inline_routes)
        for route in self._inline_routes:
            self._start_sink(route)
        if self._background_routes or any(r.spool for r in routes):
            self._start_thread()

    # ---- caller's thread -------------------------------------------------------------------

    def capture(self, event: Event) -> None:
        """Accept one event; never blocks on the network, never raises."""
        if self.has_inline:
            self.deliver_inline((event,))
            return
        buffer = self.buffer
        size = len(buffer)
        if size < self.max_slots:
            buffer.extend(event)
            if size + EVENT_WIDTH >= self.wake_slots:
                self._wake.set()
        else:
            self.overflow((event,))

    def capture_many(self, events: Sequence[Event]) -> None:
        """Accept several events at once."""
        if self.has_inline:
            self.deliver_inline(events)
            return
        room = max((self.max_slots - len(self.buffer)) // EVENT_WIDTH, 0)
        extend = self.buffer.extend
        for event in events[:room]:
            extend(event)
        if room < len(events):
            self.overflow(events[room:])
        self._wake.set()

    def overflow(self, events: Iterable[Event]) -> None:
        """The buffer is full: the caller builds the lines itself and spools them."""
        lines = self._build_all(events)
        self.stats.add("overflowed", len(lines))
        self._log_once(
            "buffer-full",
            logging.WARNING,
            "dxtrack: the in-memory buffer is full (max_buffer=%d); records go to the disk spool",
            self.max_buffer,
        )
        for route in self._routes:
            mine = _lines_for(route, lines)
            self._spool_or_drop(route, b"".join(mine), len(mine), "buffer_full")

    def deliver_inline(self, events: Iterable[Event]) -> None:
        """Deliver to the inline routes now, on the caller's thread; hand on the rest."""
        with self._inline_lock:
            lines = self._build_all(events)
            for route in self._inline_routes:
                items = pack(_lines_for(route, lines), route.sink.limits)
                for call in calls(items, route.sink.limits):
                    self._send_inline(route, call)
        if self._background_routes:
            self._built.extend(lines)
            self._wake.set()

    def _send_inline(self, route: Route, call: list[Item]) -> None:
        # If it failed moments ago, spool at once, and try again only after the backoff.
        in_backoff = route.attempt and time.monotonic() < route.retry_at
        attempts = 0 if in_backoff else INLINE_ATTEMPTS
        for attempt in range(attempts):
            try:
                failed = set(route.sink.send([item.data for item in call]))
            except PermanentSendError as exc:
                self._report_permanent(route, exc)
                failed = set(range(len(call)))
                break
            except Exception as exc:
                self._report_retryable(route, exc)
                failed = set(range(len(call)))
            else:
                self._forget_problems(route)
            delivered = sum(item.lines for i, item in enumerate(call) if i not in failed)
            self.stats.add("delivered", delivered)
            call = [item for i, item in enumerate(call) if i in failed]
            if not call:
                route.attempt = 0
                return
            self.stats.add("retried", sum(item.lines for item in call))
            if attempt + 1 < attempts:
                time.sleep(_backoff(attempt))
        if attempts:  # the next try, and the replay of the spool, wait for the backoff
            route.attempt += 1
            route.retry_at = time.monotonic() + _backoff(route.attempt)
        for item in call:
            self._spool_or_drop(route, item.data, item.lines, "send_failed")

    # ---- flush and shutdown (any thread) ------------------------------------------------------

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until everything accepted so far was delivered, spooled or dropped.

        Returns True when it was all delivered: nothing is waiting, nothing was spooled that a
        replay hasn't delivered since, and nothing was dropped since ``configure()``.
        """
        if self._thread is None or not self._thread.is_alive():
            if self._background_routes and not self._closed:
                self._start_thread()
            elif not self._closed:
                return self._nothing_left()
        deadline = None if timeout is None else time.monotonic() + timeout
        for route in self._background_routes:
            if route.down:
                route.probe_wanted, route.retry_at = True, 0.0
        self._send_wake.set()
        with self._settled:
            target = self._cycles + 1
            self._flush_wanted = True
            self._wake.set()
            while self._settled_cycle < target:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._settled.wait(remaining if remaining is not None else 1.0)
                if self._thread is None or not self._thread.is_alive():
                    break
        return self._nothing_left()

    def _nothing_left(self) -> bool:
        if self.buffer or self._built or any(r.busy() for r in self._routes):
            return False
        if any(r.spool is not None and r.spool.unreplayed for r in self._routes):
            return False
        return self.stats.snapshot()["dropped"] == 0

    def shutdown(self, timeout: float) -> bool:
        """Deliver what can be delivered within ``timeout``, spool the rest, stop the thread."""
        if self._closed:
            return True
        delivered = self.flush(timeout)
        with self._drain_lock:
            self._closed = True
            events = pop_events(self.buffer)
            for orphan in self._orphans:
                events.extend(pop_events(orphan))
        lines = self._build_all(events)
        lines.extend(self._pop_all_built())
        for route in self._routes:
            with route.lock:
                left = list(route.inflight) + list(route.pending)
                route.pending.clear()
                route.inflight = []
                route.pending_bytes = 0
            left.extend(pack(_lines_for(route, lines), route.sink.limits))
            for item in left:
                self._spool_or_drop(route, item.data, item.lines, "exit_timeout")
            if route.spool is not None:
                route.spool.close_segment()
        self._wake.set()
        self._send_wake.set()
        for thread in (self._thread, *self._senders):
            if thread is not None and thread is not threading.current_thread():
                thread.join(0.5)
        if not any(sender.is_alive() for sender in self._senders):
            self._close_sinks(self._background_routes)
        if self._thread is None or not self._thread.is_alive():
            self._close_sinks(self._inline_routes)
        return delivered

    def _close_sinks(self, routes: Sequence[Route]) -> None:
        for route in routes:
            try:
                route.sink.close()
            except Exception as exc:
                logger.debug("dxtrack: closing %s failed: %r", route.name, exc)

    def reset_after_fork(self, builder: RecordBuilder) -> None:
        """In a forked child: drop the parent's records and start a shipper of its own."""
        self.builder = builder
        self.stats.reset_after_fork()
        self.buffer = deque()
        self._built = deque()
        self._orphans = []
        self._seq = itertools.count(1)
        self._wake = threading.Event()
        self._send_wake = threading.Event()
        self._settled = threading.Condition()
        self._build_lock = threading.Lock()
        self._send_locks = [threading.Lock() for _ in range(SENDERS)]
        self._held_for_fork = []
        self._drain_lock = threading.Lock()
        self._inline_lock = threading.Lock()
        self._cycles, self._settled_cycle = 0, -1
        for route in self._routes:
            route.reset_after_fork()
        for route in self._inline_routes:
            self._start_sink(route)
        self._thread, self._senders = None, []
        if not self._closed and (self._background_routes or any(r.spool for r in self._routes)):
            self._start_thread()

    # ---- the shipper thread ---------------------------------------------------------------------

    def _start_thread(self) -> None:
        """Start the shipper: a builder thread, and a sender thread when there are background
        routes, so that building the next batch overlaps the network round trip of the last."""
        if self._background_routes:
            self._sinks_started = threading.Event()
            self._senders = [
                threading.Thread(
                    target=self._send_loop,
                    args=(lock, i == 0),
                    name=f"dxtrack-sender-{i}",
                    daemon=True,
                )
                for i, lock in enumerate(self._send_locks)
            ]
            for sender in self._senders:
                sender.start()
        self._thread = threading.Thread(target=self._run, name="dxtrack-shipper", daemon=True)
        self._thread.start()

    def before_fork(self, timeout: float) -> None:
        """Pause the caller's inline sends, the builder and the sender (each for at most
        ``timeout`` seconds) until ``after_fork_in_parent``."""
        for lock in (self._inline_lock, self._build_lock, *self._send_locks):
            if lock.acquire(timeout=timeout):
                self._held_for_fork.append(lock)

    def after_fork_in_parent(self) -> None:
        """Let the pipeline go on after ``before_fork``."""
        held, self._held_for_fork = self._held_for_fork, []
        for lock in held:
            lock.release()

    def _send_loop(self, lock: threading.Lock, starts_sinks: bool) -> None:
        if starts_sinks:
            with lock:
                for route in self._background_routes:
                    self._start_sink(route)
            self._sinks_started.set()
        self._sinks_started.wait()
        while not self._closed:
            self._send_wake.wait(self._next_send_wait())
            self._send_wake.clear()
            if not any(route.pending for route in self._background_routes):
                continue
            try:
                with lock:
                    for route in self._background_routes:
                        self._send_due(route, time.monotonic())
                        self._expire(route, time.monotonic())
            except Exception as exc:  # the sender must survive anything
                self._log_once(
                    f"send:{type(exc).__name__}",
                    logging.ERROR,
                    "dxtrack: unexpected error in the sender: %r",
                    exc,
                )
            self._wake.set()  # the builder takes stock: more to build, settled, replay

    def _next_send_wait(self) -> float:
        now = time.monotonic()
        wait = self._flush_interval
        for route in self._background_routes:
            if route.pending:
                wait = min(wait, max(route.retry_at - now, route.blocked_until - now, 0.0))
        return wait

    def _run(self) -> None:
        while True:
            self._wake.wait(self._next_wait())
            self._wake.clear()
            with self._settled:
                self._cycles += 1
                cycle = self._cycles
            try:
                with self._build_lock:
                    self._cycle()
            except Exception as exc:  # the shipper must survive anything
                self._log_once(
                    f"cycle:{type(exc).__name__}",
                    logging.ERROR,
                    "dxtrack: unexpected error in the shipper: %r",
                    exc,
                )
            if self._closed:
                with self._settled:
                    self._settled_cycle = cycle
                    self._settled.notify_all()
                return
            if not (self.buffer or self._built or any(r.busy() for r in self._routes)):
                with self._settled:
                    self._settled_cycle = cycle
                    self._flush_wanted = False
                    self._settled.notify_all()

    def _start_sink(self, route: Route) -> None:
        try:
            route.sink.start()
        except PermanentSendError as exc:
            self._report_permanent(route, exc)
        except Exception as exc:  # send() will try again, with backoff
            self._log_once(
                f"start:{route.name}",
                logging.WARNING,
                "dxtrack: could not start %s: %r",
                route.name,
                exc,
            )

    def _next_wait(self) -> float:
        if (self.buffer or self._built) and self._flush_wanted and not self._sender_is_full():
            return 0.0
        return self._flush_interval

    def _sender_is_full(self) -> bool:
        # Half the bound, so that one more chunk of lines still fits under it.
        return any(
            r.pending_bytes >= r.max_pending_bytes // 2 and not r.down
            for r in self._background_routes
        )

    def _cycle(self) -> None:
        # Build while the sender has room; past that, events wait in the (bounded) buffer,
        # until it is three quarters full: then the oldest waiting records go to the spool
        # here, so that the callers never have to (see ``overflow``).
        while not self._sender_is_full() or len(self.buffer) >= self.max_slots * 3 // 4:
            drained = self._drain(DRAIN_CHUNK)
            self._send_wake.set()
            if drained < DRAIN_CHUNK:
                break
        for route in self._routes:
            self._replay(route)

    def _pop_all_built(self) -> list[Line]:
        return _pop_all(self._built)

    def _drain(self, limit: int) -> int:
        """Build up to ``limit`` captured events and queue them; return how many were taken."""
        with self._drain_lock:
            if self._closed:
                return 0
            taken = min(len(self.buffer) // EVENT_WIDTH, limit)
            # one event at a time, so that no batch of event tuples outlives a young GC generation
            lines = self._build_all(iter_events(self.buffer, taken))
            for orphan in self._orphans:
                lines.extend(self._build_all(iter_events(orphan)))
            lines.extend(self._pop_all_built())
            if not lines:
                return taken
            for route in self._background_routes:
                mine = _lines_for(route, lines)
                if mine:
                    self._enqueue(route, pack(mine, route.sink.limits))
            return taken

    def _enqueue(self, route: Route, items: list[Item]) -> None:
        now = time.monotonic()
        reason = "pending_full"
        with route.lock:
            if now < route.blocked_until:
                spill, reason = items, "sink_rejected"
            elif route.down:  # keep one item as the probe the sender retries; spool the rest
                keep = [] if route.pending else items[:1]
                route.pending.extend(keep)
                route.pending_bytes += sum(len(item.data) for item in keep)
                spill, reason = items[len(keep) :], "retry_budget"
            else:
                route.pending.extend(items)
                route.pending_bytes += sum(len(item.data) for item in items)
                spill = []
                while route.pending_bytes > route.max_pending_bytes and len(route.pending) > 1:
                    oldest = route.pending.popleft()
                    route.pending_bytes -= len(oldest.data)
                    spill.append(oldest)
        for item in spill:
            self._spool_item(route, item, reason)

    def _send_due(self, route: Route, now: float) -> None:
        if now < route.retry_at or now < route.blocked_until:
            return
        while True:
            with route.lock:
                if not route.pending or route.calls_in_flight >= route.sink.limits.max_in_flight:
                    return
                if time.monotonic() < route.retry_at:  # another sender's call just failed
                    return
                call = next(calls(route.pending, route.sink.limits))
                for _ in call:
                    route.pending.popleft()
                route.pending_bytes -= sum(len(item.data) for item in call)
                route.inflight.extend(call)
                route.calls_in_flight += 1
                if route.pending:  # another sender may take the next call meanwhile
                    self._send_wake.set()
            started = time.monotonic()
            for item in call:
                item.first_try = item.first_try or started
            try:
                failed_at: Sequence[int] = route.sink.send([item.data for item in call])
            except PermanentSendError as exc:
                self._report_permanent(route, exc)
                route.blocked_until = time.monotonic() + BLOCKED_PROBE_SECONDS
                self._settle(route, call, range(len(call)))
                self._spool_pending(route, "sink_rejected")
                return
            except Exception as exc:  # RetryableSendError, or anything a sink didn't expect
                self._report_retryable(route, exc)
                failed_at = range(len(call))
            else:
                self._forget_problems(route)
            failed = self._settle(route, call, failed_at)
            route.probe_wanted = False
            if failed:
                self.stats.add("retried", failed)
                route.attempt += 1
                route.retry_at = time.monotonic() + _backoff(route.attempt)
                return
            route.attempt = 0
            route.down = False  # the sink works again; the spool is replayed next

    def _settle(self, route: Route, call: list[Item], failed_at: Iterable[int]) -> int:
        """Account for a finished call; failed items go back to the front of the queue."""
        failed_set = set(failed_at)
        failed = [item for i, item in enumerate(call) if i in failed_set]
        delivered = [item for i, item in enumerate(call) if i not in failed_set]
        self.stats.add("delivered", sum(item.lines for item in delivered))
        for item in delivered:
            self._resolve_ticket(route, item)
        with route.lock:
            done = {id(item) for item in call}
            route.inflight = [item for item in route.inflight if id(item) not in done]
            route.calls_in_flight -= 1
            if not self._closed:
                route.pending.extendleft(reversed(failed))
                route.pending_bytes += sum(len(item.data) for item in failed)
                failed_lines = sum(item.lines for item in failed)
                failed = []
            else:
                failed_lines = 0
        for item in failed:  # shutdown already spooled the queue: spool these ourselves
            self._spool_item(route, item, "exit_timeout")
        return failed_lines

    def _expire(self, route: Route, now: float) -> None:
        """When the oldest item has been retried for longer than the retry budget, the sink is
        down: spool everything waiting for it but that item, which stays as the probe the
        sender goes on retrying (with backoff). When the probe gets through, the sink is up
        again and the spool is replayed."""
        with route.lock:
            head = route.pending[0] if route.pending else None
            if head is None or route.down or not head.first_try:
                return
            if now - head.first_try <= self._retry_budget:
                return
            expired = list(route.pending)[1:]
            route.pending.clear()
            route.pending.append(head)
            route.pending_bytes = len(head.data)
            route.down = True
        if expired:
            self._log_once(
                f"budget:{route.name}",
                logging.WARNING,
                "dxtrack: %s stayed unavailable for %.0fs; records are being spooled "
                "to disk and will be sent when it recovers",
                route.name,
                self._retry_budget,
            )
        for item in expired:
            self._spool_item(route, item, "retry_budget")

    def _spool_pending(self, route: Route, reason: str) -> None:
        with route.lock:
            items = list(route.pending)
            route.pending.clear()
            route.pending_bytes = 0
        for item in items:
            self._spool_item(route, item, reason)

    def _replay(self, route: Route) -> None:
        """Once the sink works, send back what was spooled for it, one segment at a time."""
        spool = route.spool
        now = time.monotonic()
        if spool is None or now < route.blocked_until:
            return
        if route.attempt and (not route.inline or now < route.retry_at):
            return  # a background sink is probed by the sender; an inline one after backoff
        if route.pending or route.replaying:
            return
        if not (route.replay_due or spool.unreplayed):
            return
        spool.close_segment()
        segment = spool.claim()
        if segment is None:
            route.replay_due = False
            return
        self.stats.add("replayed", len(segment.lines))
        ticket = ReplayTicket(outstanding=0)
        items = pack(segment.lines, route.sink.limits, ticket)
        ticket.outstanding = len(items)
        if not items:
            spool.release(segment, delete=True)
            return
        with route.lock:
            route.replaying.append((ticket, segment))
        if route.inline:
            for call in calls(items, route.sink.limits):
                self._send_inline(route, call)
            for item in items:
                self._resolve_ticket(route, item)
            return
        self._enqueue(route, items)
        self._send_wake.set()

    def _resolve_ticket(self, route: Route, item: Item) -> None:
        ticket = item.ticket
        if ticket is None:
            return
        with route.lock:  # the builder and the sender both resolve tickets
            item.ticket = None
            ticket.outstanding -= 1
            if ticket.outstanding > 0 or route.spool is None:
                return
            found = [entry for entry in route.replaying if entry[0] is ticket]
            route.replaying = [entry for entry in route.replaying if entry[0] is not ticket]
        for _, segment in found:
            route.spool.release(segment, delete=True)

    # ---- shared helpers -------------------------------------------------------------------

    def _build_all(self, events: Iterable[Event]) -> list[Line]:
        lines, failures = self.builder.build_many(events, self._seq.__next__)
        if failures:
            self.stats.drop("build_failed", len(failures))
            exc = failures[0]
            self._log_once(
                f"build:{type(exc).__name__}",
                logging.ERROR,
                "dxtrack: could not build %d record(s): %r",
                len(failures),
                exc,
            )
        return lines

    def _spool_item(self, route: Route, item: Item, reason: str) -> None:
        self._spool_or_drop(route, item.data, item.lines, reason)
        self._resolve_ticket(route, item)

    def _spool_or_drop(self, route: Route, data: bytes, lines: int, reason: str) -> None:
        if not lines:
            return
        if route.spool is None:
            self.stats.drop(f"{reason}:{route.name}", lines)
            self._log_once(
                f"drop:{route.name}:{reason}",
                logging.WARNING,
                "dxtrack: %s could not take %d record(s) (%s); they were dropped and counted",
                route.name,
                lines,
                reason,
            )
        else:
            route.spool.append(data, lines)

    def _report_permanent(self, route: Route, exc: Exception) -> None:
        self._log_once(f"permanent:{route.name}", logging.ERROR, "dxtrack: %s", exc)

    def _report_retryable(self, route: Route, exc: Exception) -> None:
        kind = "retryable" if isinstance(exc, RetryableSendError) else type(exc).__name__
        text = " ".join(str(exc).split())[:300]  # one line, even when a server answers in HTML
        self._log_once(
            f"retry:{route.name}:{kind}",
            logging.WARNING,
            "dxtrack: sending to %s failed, will retry: %s",
            route.name,
            text,
        )

    def _forget_problems(self, route: Route) -> None:
        self._log_once.forget(f"permanent:{route.name}")


def _lines_for(route: Route, lines: Iterable[Line]) -> list[bytes]:
    """The lines of the record kinds ``route``'s sink takes."""
    kinds = route.sink.kinds
    return [data for kind, data in lines if kind in kinds]


def _pop_all(queue: deque[T]) -> list[T]:
    """Everything in ``queue``, popped (never swapped: other threads may be appending)."""
    out: list[T] = []
    popleft = queue.popleft
    while queue:
        try:
            out.append(popleft())
        except IndexError:
            break
    return out


def _backoff(attempt: int) -> float:
    """Exponential backoff with full jitter."""
    return random.uniform(0, min(BACKOFF_MAX, BACKOFF_BASE * (2 ** min(attempt, 16))))
