"""The caller's side of the shipper: events into the capture buffer, and what happens when it
is full (the caller waits for room, then builds its own lines), or when routes are inline."""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Iterable, Sequence
from typing import Final

from dxtrack import interrupts
from dxtrack.counters import Counters
from dxtrack.delivery.attempts import deliver_inline
from dxtrack.delivery.buffers import Batch, Buffers, Line, by_kind
from dxtrack.delivery.route import Route
from dxtrack.events import EVENT_WIDTH, Event, FlatBuffer
from dxtrack.log import LogOnce

OVERFLOW_WAIT_SECONDS: Final = 0.5
"""How long a caller whose buffer is full waits for room in it, and then for the builder to take
the line it built, before dropping its record."""


class Intake:
    """What the caller's thread does; ``Shipper`` runs the threads behind it."""

    buffers: Buffers
    stats: Counters
    _log_once: LogOnce
    has_inline: bool
    max_buffer: int
    max_slots: int
    wake_slots: int
    _max_built: int
    _wake: threading.Event
    _drained: threading.Event
    _closed: bool
    _waited_in_vain: bool
    _threads: list[threading.Thread]
    _inline_lock: threading.Lock
    _inline_owner: int | None
    _reentered: deque[Event]
    _inline_routes: list[Route]
    _background_routes: list[Route]

    @property
    def buffer(self) -> FlatBuffer:
        """The capture buffer (flat events; see ``events``)."""
        return self.buffers.events

    @property
    def drain_lock(self) -> threading.Lock:
        """The lock one thread at a time holds to take events out of ``buffer``."""
        return self.buffers.drain_lock

    # ---- caller's thread ---------------------------------------------------------------------

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
            self.overflow(list(events[room:]))
        self._wake.set()

    def overflow(self, events: Sequence[Event]) -> None:
        """The buffer is full: the caller waits for room (the sinks are slower than the job
        makes records); past ``OVERFLOW_WAIT_SECONDS`` it builds the lines itself and hands them
        to the builder thread, which queues them (past each route's memory bound, to disk). The
        caller takes no lock the shipper needs (a signal handler may interrupt it anywhere): it
        polls; when even the built lines pile up, it drops and counts them."""
        if self._wait_for_room(len(events)):
            extend = self.buffer.extend
            for event in events:
                extend(event)
            return
        built = self.buffers.built
        lines: list[Line] = []
        with interrupts.raised_after:
            try:  # the lines are queued or counted, though a Ctrl-C cuts the wait short
                lines = self.buffers.build(events)
                self.stats.add("overflowed", len(lines))
                self._log_once(
                    "buffer-full",
                    logging.WARNING,
                    "dxtrack: the in-memory buffer is full (max_buffer=%d); the calling threads "
                    "build their records themselves until the shipper catches up",
                    self.max_buffer,
                )
                if len(built) >= self._max_built:
                    self._drained.clear()
                    self._wake.set()
                    self._drained.wait(OVERFLOW_WAIT_SECONDS)
            finally:
                if len(built) >= self._max_built:
                    self.stats.drop("buffer_full", len(lines))
                else:
                    built.extend(lines)
                self._wake.set()

    def _wait_for_room(self, count: int) -> bool:
        """Wait up to ``OVERFLOW_WAIT_SECONDS`` until ``count`` events fit the buffer; after a
        wait in vain, no caller waits again until the builder has taken events."""
        if self._closed or self._waited_in_vain or threading.current_thread() in self._threads:
            return False
        needed = max(self.max_slots - count * EVENT_WIDTH, 0)  # more than fit: wait for empty
        deadline = time.monotonic() + OVERFLOW_WAIT_SECONDS
        self._wake.set()
        while len(self.buffer) > needed:
            if self._closed or time.monotonic() >= deadline:
                self._waited_in_vain = True
                return False
            time.sleep(0.001)
        return True

    def deliver_inline(self, events: Iterable[Event], *, summaries: bool = False) -> None:
        """Deliver to the inline routes now, on the caller's thread; hand on the rest.
        ``summaries`` (a flush) adds the summary of every rate-limit window holding
        occurrences back.

        A thread already inside (a signal handler that logs an error, a finalizer the garbage
        collector runs, while this thread delivers) leaves its events to the outer call."""
        me = threading.get_ident()
        if self._inline_owner == me:
            self._reentered.extend(events)
            return
        with interrupts.raised_after, self._inline_lock, interrupts.building:
            self._inline_owner = me
            try:
                while True:
                    self._deliver_inline_now(events, summaries)
                    summaries = False
                    if not self._reentered:
                        break
                    events = [self._reentered.popleft() for _ in range(len(self._reentered))]
            finally:
                self._inline_owner = None

    def _deliver_inline_now(self, events: Iterable[Event], summaries: bool = False) -> None:
        lines = self.buffers.build(events)
        if summaries:
            lines += self.buffers.summaries(everything=True)
        batch = by_kind(lines)
        for route in self._inline_routes:
            mine = lines_for(route, batch)
            if mine:
                deliver_inline(route, mine)
        if self._background_routes:
            self.buffers.built.extend(lines)
            self._wake.set()


def lines_for(route: Route, batch: Batch) -> list[bytes]:
    """The lines of the record kinds ``route``'s sink takes."""
    kinds = [kind for kind in route.sink.kinds if batch.get(kind)]
    if len(kinds) == 1:
        return batch[kinds[0]]
    return [line for kind in kinds for line in batch[kind]]
