"""The one place for threads: the capture buffer, the builder, and each route's senders.

The caller's thread only appends a captured event to a bounded, flat buffer (``buffers``).
In the background, per process:

- the builder (``dxtrack-builder``) builds the JSON lines, queues them on every route, and
  keeps each route's promises over time (``Route.maintain``: what waited too long goes to disk);
- each route has sender threads of its own (``dxtrack-send:<sink>#<n>``), as many as the calls
  its sink may have in flight, so a stuck or slow sink never delays another.

Routes marked ``inline`` are delivered on the caller's thread instead, before the tracking call
returns (stage ``test``, and ``use_async_requests=False``); their sender only replays the spool.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Sequence
from typing import Final

from dxtrack import interrupts
from dxtrack.counters import Counters
from dxtrack.delivery.attempts import close_route, deliver_inline, senders_needed, start_sink
from dxtrack.delivery.buffers import Buffers, Orphan
from dxtrack.delivery.intake import Intake, lines_for
from dxtrack.delivery.route import Route
from dxtrack.events import EVENT_WIDTH
from dxtrack.log import LogOnce, SdkThread, logger
from dxtrack.records import RecordBuilder

DRAIN_CHUNK: Final = 20_000
DRAIN_BYTES: Final = 4 << 20
"""The builder takes about this much at a time (by the size of the lines it built last), so
that one step never overshoots a destination's memory bound by much."""
COLD_CALL_SECONDS: Final = 0.5
"""A fork waits until a sink's first call has run this long: the lazy imports of a first
connection happen in its first moments, and a fork in the middle of one would leave the
module's lock held for ever in the child."""
JOIN_SECONDS: Final = 0.2
MIN_BUILT_BOUND: Final = 10_000
"""Lines built by callers (their buffer full) that may wait for the builder: at least this
many, else a quarter of ``max_buffer``."""
BUSY_POLL_SECONDS: Final = 0.01
BUSY_EVENTS: Final = 1_000
"""The builder looks at the capture buffer every ``BUSY_POLL_SECONDS`` while it found this many
events in it on its last look."""
"""At shutdown, how long in all to wait for the threads (a sender may be stuck in a call)."""
MAINTAIN_EVERY: Final = 0.25
"""The builder wakes at least this often, so that a record is on disk about a second after it
stopped making progress."""


class Shipper(Intake):
    """Captures events on the caller's thread and delivers them to every route."""

    def __init__(
        self,
        builder: RecordBuilder,
        routes: Sequence[Route],
        *,
        max_buffer: int,
        flush_interval: float,
        stats: Counters,
        log_once: LogOnce,
        orphans: Sequence[Orphan] = (),
    ) -> None:
        self.stats = stats
        self._log_once = log_once
        self._routes = list(routes)
        self._inline_routes = [r for r in routes if r.inline]
        self._background_routes = [r for r in routes if not r.inline]
        self.has_inline = bool(self._inline_routes)
        self.max_buffer = max_buffer
        self.max_slots = max_buffer * EVENT_WIDTH
        self.wake_slots = max(1, max_buffer // 2) * EVENT_WIDTH
        self._flush_interval = flush_interval
        self._max_built = max(max_buffer // 4, MIN_BUILT_BOUND)
        self.buffers = Buffers(builder, stats, log_once, orphans)
        self._fresh_state()
        self._closed = False
        for route in self._inline_routes:
            start_sink(route, self._log_once)
        self._start_threads()

    def _fresh_state(self) -> None:
        self._wake = threading.Event()
        self._drained = threading.Event()
        self._progress = threading.Condition()
        self._flush_wanted = False
        self._inline_lock = threading.Lock()
        self._inline_owner = None
        self._reentered = deque()
        self._build_lock = threading.Lock()
        self._held_for_fork: list[threading.Lock] = []
        self._threads: list[threading.Thread] = []
        self._send_locks: list[threading.Lock] = []
        self._built_at = 0.0
        self._busy = False
        self._line_bytes = 400.0
        self._waited_in_vain = False

    # ---- flush and shutdown (any thread) ---------------------------------------------------

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until everything accepted so far was delivered, spooled or dropped.

        Returns True when it was all delivered: nothing is waiting, nothing was spooled that a
        replay hasn't delivered since, and nothing was dropped since ``configure()``.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        since = time.monotonic()
        if self._inline_routes and self.buffers.builder.limiter is not None:
            self.deliver_inline((), summaries=True)
        for route in self._routes:
            route.flush_waits(True)
        try:
            with self._progress:
                self._flush_wanted = True
                self._wake.set()
                while not self._quiet(since):
                    remaining = None if deadline is None else deadline - time.monotonic()
                    if remaining is not None and remaining <= 0:
                        return False
                    self._progress.wait(0.05 if remaining is None else min(remaining, 0.05))
                self._flush_wanted = False
        finally:
            for route in self._routes:
                route.flush_waits(False)
        return self._nothing_left()

    def _quiet(self, since: float) -> bool:
        if not self.buffers.empty():
            return self._closed  # after shutdown nobody builds them: they were spooled
        return all(route.quiet(since) for route in self._routes)

    def _nothing_left(self) -> bool:
        if not self.buffers.empty() or not all(r.quiet(float("inf")) for r in self._routes):
            return False
        if any(r.spool is not None and r.spool.unreplayed() for r in self._routes):
            return False
        return self.stats.snapshot()["dropped"] == 0

    def shutdown(self, timeout: float, join: float | None = None) -> bool:
        """Deliver what can be delivered within ``timeout``, put the rest on disk, stop; wait
        up to ``join`` seconds (default ``JOIN_SECONDS``) for the threads (a sender may be in a
        call) to end."""
        if self._closed:
            return True
        with interrupts.raised_after:  # (a Ctrl-C that cuts it short: see Client.close)
            delivered = self.flush(timeout)
            self._close(JOIN_SECONDS if join is None else join)
        return delivered

    def retire(self, timeout: float) -> threading.Thread:
        """Shut down on a thread of its own, started here (delivering within ``timeout``, and
        joining its threads as long: a replay in flight puts back), so that a signal handled on
        the caller's thread can't interrupt it half-way. What fails is logged, never raised."""

        def shut_down() -> None:
            try:
                self.shutdown(timeout, timeout)
            except Exception as exc:
                logger.error("dxtrack: error while shutting down: %r", exc)

        thread = SdkThread(target=shut_down, name="dxtrack-retire", daemon=True)
        thread.start()
        return thread

    def _close(self, join: float) -> None:
        with interrupts.ctrl_c_held():  # the last lines go to their queues, or to disk, whole
            with self._build_lock:
                self._closed = True
                _, lines = self.buffers.take(final=True)
            for route in self._routes:
                mine = lines_for(route, lines)
                if route.inline and mine:
                    deliver_inline(route, mine)
                elif mine:
                    route.enqueue(mine, time.monotonic())
                route.close()
            self.buffers.done()
        self._wake.set()
        with self._progress:
            self._progress.notify_all()
        deadline = time.monotonic() + join
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(max(deadline - time.monotonic(), 0.0))
        for route in self._routes:
            with route.lock:
                route.finished = True
                last = route.senders_running == 0
            if last:
                close_route(route)  # else its last sender does, once out of its last call
        self._report()

    def _report(self) -> None:
        """Say at the end what was not delivered."""
        counts = self.stats.snapshot()
        if counts["spooled"] or counts["dropped"]:
            reasons = ", ".join(
                f"{name.split('.', 1)[1]}: {count}"
                for name, count in sorted(counts.items())
                if name.startswith("dropped.") and count
            )
            logger.warning(
                "dxtrack: %d record(s) delivered, %d spooled to disk for the next start "
                "(`dxtrack spool status` lists them), %d dropped%s",
                counts["delivered"],
                counts["spooled"],
                counts["dropped"],
                f" ({reasons})" if reasons else "",
            )

    # ---- fork ----------------------------------------------------------------------------------

    def before_fork(self, timeout: float) -> None:
        """Pause the caller's inline sends, the builder and the senders between their steps
        (not during network calls; for at most ``timeout`` seconds in all) until
        ``after_fork_in_parent``: a fork in the middle of a lazy import would leave the
        module's lock held for ever in the child."""
        deadline = time.monotonic() + timeout
        for lock in (self._inline_lock, self._build_lock, *self._send_locks):
            if lock.acquire(timeout=max(deadline - time.monotonic(), 0.0)):
                self._held_for_fork.append(lock)
        for route in self._routes:  # a first call imports in its first moments: let it
            if not route.warm and route.cold_call_started:
                until = min(route.cold_call_started + COLD_CALL_SECONDS, deadline)
                time.sleep(max(until - time.monotonic(), 0.0))

    def after_fork_in_parent(self) -> None:
        """Let the shipper go on after ``before_fork``."""
        held, self._held_for_fork = self._held_for_fork, []
        for lock in held:
            lock.release()

    def reset_after_fork(self, builder: RecordBuilder) -> None:
        """In a forked child: drop the parent's records and start a shipper of its own."""
        self.stats.reset_after_fork()
        self.buffers.reset_after_fork(builder)
        self._fresh_state()
        for route in self._routes:
            route.reset_after_fork()
        for route in self._inline_routes:
            start_sink(route, self._log_once)
        if not self._closed:
            self._start_threads()

    # ---- the threads ---------------------------------------------------------------------------

    def _start_threads(self) -> None:
        for route in self._routes:
            for n in range(senders_needed(route)):
                lock = threading.Lock()
                self._send_locks.append(lock)
                self._threads.append(
                    SdkThread(
                        target=self._send_loop,
                        args=(route, lock, n == 0 and not route.inline),
                        name=f"dxtrack-send:{route.name}#{n}",
                        daemon=True,
                    )
                )
        if self._background_routes or self._threads:
            self._threads.append(
                SdkThread(target=self._build_loop, name="dxtrack-builder", daemon=True)
            )
        for thread in self._threads:
            thread.start()

    def _build_loop(self) -> None:
        while not self._closed:
            # busy (the compiled path fills the buffer without waking anyone): look again soon
            idle = min(self._flush_interval, MAINTAIN_EVERY)
            self._wake.wait(BUSY_POLL_SECONDS if self._busy else idle)
            self._wake.clear()
            try:
                with self._build_lock:
                    if self._closed:
                        return
                    self._cycle()
            except BaseException as exc:  # the builder survives anything, sys.exit() too
                self._log_once(
                    f"cycle:{type(exc).__name__}",
                    logging.ERROR,
                    "dxtrack: unexpected error in the shipper: %r",
                    exc,
                )
            with self._progress:
                self._progress.notify_all()

    def _cycle(self) -> None:
        now = time.monotonic()
        due = self._flush_wanted or self.buffers.stale() or len(self.buffer) >= self.wake_slots
        self._busy = len(self.buffer) >= BUSY_EVENTS * EVENT_WIDTH
        if due or now - self._built_at >= self._flush_interval:
            self._built_at = now
            while self._may_build():
                chunk = min(DRAIN_CHUNK, max(256, int(DRAIN_BYTES / self._line_bytes)))
                if self._drain(chunk) < chunk:
                    break
        if self.buffers.built:  # lines built by callers whose buffer was full
            self._drain(0)
        self._drained.set()
        for route in self._routes:
            route.maintain(time.monotonic())

    def _may_build(self) -> bool:
        """Not while a sink that keeps pace has a long queue: the events then wait in the
        capture buffer, and callers wait for room in it (``overflow``), rather than records
        being spooled while nothing is wrong."""
        return not any(route.backlogged() for route in self._background_routes)

    def _drain(self, limit: int) -> int:
        """Build up to ``limit`` captured events and queue them; return how many were taken."""
        taken, lines = self.buffers.take(limit, final=self._flush_wanted)
        if taken:
            self._waited_in_vain = False
        try:
            if lines:
                sample = [len(line) for built in lines.values() for line in built[:32]]
                if sample:
                    self._line_bytes = sum(sample) / len(sample)
                now = time.monotonic()
                for route in self._background_routes:
                    mine = lines_for(route, lines)
                    if mine:
                        route.enqueue(mine, now)
        finally:
            self.buffers.done()
        return taken

    def _send_loop(self, route: Route, lock: threading.Lock, starts_sink: bool) -> None:
        with route.lock:
            route.senders_running += 1
        if starts_sink:
            with lock:
                start_sink(route, self._log_once)
        while not route.closed:
            route.wake.wait(MAINTAIN_EVERY)
            route.wake.clear()
            try:
                with lock:
                    self._send_due(route, lock)
            except BaseException as exc:  # a sender survives anything, sys.exit() too
                self._log_once(
                    f"send:{type(exc).__name__}",
                    logging.ERROR,
                    "dxtrack: unexpected error in the sender of %s: %r",
                    route.name,
                    exc,
                )
            with self._progress:
                self._progress.notify_all()
        with route.lock:
            route.senders_running -= 1
            last = route.senders_running == 0 and route.finished
        if last:
            close_route(route)

    def _send_due(self, route: Route, lock: threading.Lock) -> None:
        while True:
            now = time.monotonic()
            route.refill_replay(now)
            call = route.next_call(now)
            if call is None:
                return
            if not route.warm:  # its first moments import lazily (urllib3, botocore)
                route.cold_call_started = time.monotonic()
            lock.release()  # a fork need not wait for the network
            try:
                failed = route.send(call.items)
            finally:
                lock.acquire()
            route.warm = True
            route.settle(call, failed)
