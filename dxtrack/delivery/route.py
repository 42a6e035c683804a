"""One sink and what waits for it: the queue, the calls in flight, backoff, and when records go
to disk.

A route never starts threads (``shipper`` does); it decides:

- what the next call sends: fresh items first, then segments claimed back from the spool (or a
  segment's first call, as the probe of a sink that keeps failing);
- when records go to disk: an item that has waited ``SPILL_AFTER`` seconds while the sink is
  stalled, an item built or waiting while the sink is down, and the items of a late call (an
  insurance copy, deleted again if the call succeeds);
- what a finished call means: delivered items are counted and their spool lines deleted, failed
  ones wait for the backoff, or are on disk already.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from typing import Final

from dxtrack.counters import Counters
from dxtrack.delivery.attempts import (
    BLOCKED_PROBE_SECONDS,
    Call,
    attempt,
    count_spooled_at_exit,
    lines_of,
    units_of,
)
from dxtrack.delivery.disk import Disk
from dxtrack.delivery.health import SPILL_AFTER, Health
from dxtrack.delivery.packing import Item, calls, pack
from dxtrack.delivery.segments import Claim
from dxtrack.delivery.spool import Spool
from dxtrack.log import LogOnce
from dxtrack.sinks.base import Sink

REPLAY_CALL_BYTES: Final = 512 * 1024
"""A replay sends at most this much per call, and notes on disk what each call delivered."""
RECHECK_SPOOL_SECONDS: Final = 30.0
"""How often an idle route looks for segments that other processes left in its spool."""


class Route:
    """One sink with the items waiting for it, its backoff state and its spool."""

    def __init__(
        self,
        make_sink: Callable[[], Sink],
        *,
        inline: bool,
        make_spool: Callable[[str], Spool] | None,
        max_pending_bytes: int,
        retry_budget: float,
        linger: float = 0.0,
        stats: Counters,
        log_once: LogOnce,
    ) -> None:
        self.make_sink = make_sink
        self.sink = make_sink()
        self.inline = inline
        durable = self.sink.durable and make_spool is not None
        self.spool = make_spool(self.sink.destination) if make_spool and durable else None
        self.disk = Disk(self.name, self.spool, stats, log_once)
        self.spill = self.disk.spill
        self.max_pending_bytes = max_pending_bytes
        self.retry_budget = retry_budget
        self.linger = linger  # seconds fresh items may wait to fill a call
        self.stats = stats
        self._log_once = log_once
        self._reset_state()

    def _reset_state(self) -> None:
        self.lock = threading.Lock()
        self.wake = threading.Event()
        """Set when the senders may have something to do."""
        self.pending: deque[Item] = deque()
        self.pending_bytes = 0
        self.moving = 0
        """Above 0 while items taken out of ``pending`` are on their way to disk."""
        self.flushes = 0  # flushes (closings too) waiting now: nothing lingers meanwhile
        self.replay: deque[Item] = deque()
        self.claim: Claim | None = None
        self._claim_left = 0
        self._claiming = False
        self.inflight: list[Call] = []
        self.health = Health()
        self._checked_changes = -1  # the spool may hold what earlier runs left
        self._spool_checked = 0.0
        self.closed = False
        self.senders_running = 0
        self.finished = False  # closed, what waited is on disk: the last sender closes the spool
        self.warm = False
        self.cold_call_started = 0.0
        """The sink has made a call: the lazy imports of a first connection are done."""

    @property
    def replay_due(self) -> bool:
        """Whether the spool may hold lines that no replay has looked for since they were
        written."""
        return self.spool is not None and self.spool.changes.count != self._checked_changes

    @property
    def name(self) -> str:
        """The sink's name."""
        return self.sink.name

    def stalled(self, now: float) -> bool:
        """Whether the sink is failing, or took nothing while a call is late (see
        ``Health.stalled``)."""
        return self.health.stalled(now, (call.born for call in self.inflight))

    def down(self, now: float) -> bool:
        """Whether the sink has been failing for ``SPILL_AFTER`` seconds, or refused for good."""
        return self.health.down(now)

    # ---- the builder's side ------------------------------------------------------------------

    def enqueue(self, lines: list[bytes], now: float) -> None:
        """Queue freshly built lines; while the sink is down they go straight to disk."""
        items = pack(lines, self.sink.limits, now)
        if self.spool is not None and self.down(now) and self.spool.available():
            self.spill(items, "spool_unavailable")
            return
        with self.lock:
            self.pending.extend(items)
            self.pending_bytes += sum(len(item.data) for item in items)
            over = self._pop_while(lambda _: self.pending_bytes > self.max_pending_bytes)
        self.spill(over, "pending_full")
        self.wake.set()

    def _pop_while(self, more: Callable[[Item], bool]) -> list[Item]:
        out = []  # the oldest pending items, while ``more(item)`` (the lock held)
        while self.pending and more(self.pending[0]):
            item = self.pending.popleft()
            self.pending_bytes -= len(item.data)
            out.append(item)
        return out

    def maintain(self, now: float) -> None:
        """Put on disk what waited too long, insure slow calls; without a spool, drop what
        waited past ``retry_budget``."""
        if self.spool is None:
            with self.lock:
                expired = self._pop_while(lambda item: item.born <= now - self.retry_budget)
            self.disk.drop(expired, "retry_budget")
            return
        if not self.spool.available():
            return
        with self.lock:
            # a sink that is down takes none of them: to disk at once; else what waited long
            down, stalled = self.down(now), self.stalled(now)
            aged = self._pop_while(lambda i: down or (stalled and i.born <= now - SPILL_AFTER))
            late = self.health.late_after()
            slow = [c for c in self.inflight if c.claim is None and now - c.born >= late]
            self.moving += bool(aged)
        if aged:
            try:
                self.disk.write(aged)
            finally:
                with self.lock:
                    self.moving -= 1
        for call in slow:
            self._insure(call)
        self.spool.sync(force=False)

    def _insure(self, call: Call) -> None:
        assert self.spool is not None
        with call.lock:
            if call.done or call.insurance is not None:
                return
            call.insurance = self.disk.insure(call.items)

    def backlogged(self) -> bool:
        """Whether half the pending bound is used by a sink that is not stalled (the builder
        then waits, so that records are not built only to be spilled)."""
        if self.pending_bytes < self.max_pending_bytes // 2:
            return False
        with self.lock:
            return not self.stalled(time.monotonic())

    # ---- the senders' side -------------------------------------------------------------------

    def refill_replay(self, now: float) -> None:
        """Claim the next spool segment to replay, when it is time to."""
        spool = self.spool
        if spool is None or self.closed:
            return
        with self.lock:
            if self.claim is not None or self._claiming or now < self.health.retry_at:
                return
            if self.pending and not self.down(now):
                return  # fresh records first; the spool is replayed with spare capacity
            if now < self.health.blocked_until:
                return
            if not self.replay_due and now - self._spool_checked < RECHECK_SPOOL_SECONDS:
                return
            self._claiming = True  # until ``self.claim`` is set: one segment at a time
            changes = spool.changes.count
        claim: Claim | None = None
        taken = False
        try:
            claim = spool.claim()
            if claim is None:
                spool.close_segment()  # what this process spooled may wait in its open segment
                claim = spool.claim()
            if claim is None:
                self._checked_changes = changes  # unless more was written meanwhile
                self._spool_checked = now
                return
            items = pack(claim.lines, self.sink.limits, now, claim, REPLAY_CALL_BYTES)
            with self.lock:
                taken = bool(items) and not self.closed  # closed: nobody would send it
                if taken:
                    self.claim, self._claim_left = claim, len(items)
                    self.replay.extend(items)
            if taken:
                self.stats.add("replayed", len(claim.lines))
        finally:
            with self.lock:
                self._claiming = False
            if claim is not None and not taken:
                spool.release(claim)  # back on disk as it was
        self.wake.set()

    def next_call(self, now: float) -> Call | None:
        """The next call to send, or None when there is nothing to send now."""
        with self.lock:
            if self.closed or now < self.health.retry_at or now < self.health.blocked_until:
                return None
            if len(self.inflight) >= self.sink.limits.max_in_flight:
                return None
            down = self.down(now)
            if down and self.inflight:
                return None  # one probe at a time
            # the spool waits for spare capacity, unless it holds the probe of a failing sink;
            # one small replay call at a time, so that a crash sends little of it again (with a
            # codec, one item: it holds REPLAY_CALL_BYTES of records)
            replaying = any(c.claim is not None for c in self.inflight)
            use_replay = bool(self.replay) and (down or not self.pending) and not replaying
            source = self.replay if use_replay else self.pending
            if not source or (not use_replay and not down and self._lingering(now)):
                return None
            limit = (1 if self.sink.limits.codec else REPLAY_CALL_BYTES) if use_replay else None
            items = next(calls(source, self.sink.limits, limit))
            for _ in items:
                source.popleft()
            if not use_replay:
                self.pending_bytes -= sum(len(item.data) for item in items)
            call = Call(items, now, min(item.born for item in items), claim=items[0].claim)
            self.inflight.append(call)
            if self.pending or self.replay:
                self.wake.set()  # another sender may take the next call meanwhile
        return call

    def _lingering(self, now: float) -> bool:
        """Whether fresh items wait to fill a call (each costs botocore's CPU and a round trip):
        until full, ``linger`` seconds after the first was queued, or while a flush waits."""
        limits = self.sink.limits
        if self.flushes or not self.linger or not limits.pack_lines:
            return False
        full = len(self.pending) >= limits.max_items_per_call
        if full or self.pending_bytes >= limits.max_call_bytes * 3 // 4:
            return False
        return now - self.pending[0].born < self.linger

    def send(self, items: Sequence[Item]) -> Sequence[int]:
        """One ``sink.send``; returns the indices of the items that failed. An error retrying
        can't fix blocks the sink for ``BLOCKED_PROBE_SECONDS``."""
        failed, permanent = attempt(self.sink, [item.data for item in items], self._log_once)
        if permanent:
            self.health.blocked_until = time.monotonic() + BLOCKED_PROBE_SECONDS
        return failed

    def settle(self, call: Call, failed_at: Iterable[int]) -> None:
        """Account for a finished call."""
        now = time.monotonic()
        failed_set = set(failed_at)
        failed = [item for i, item in enumerate(call.items) if i in failed_set]
        self.stats.add("delivered", sum(it.lines for it in call.items) - lines_of(failed))
        with call.lock:
            call.done = True
            insurance = call.insurance
        for claim in (call.claim, insurance):
            if claim is not None:
                for i, item in enumerate(call.items):
                    if i not in failed_set:
                        claim.delivered.update(units_of(item, claim is insurance, i))
        release: list[Claim] = [insurance] if insurance is not None else []
        checkpoint: Claim | None = None
        respill: list[Item] = []
        with self.lock:
            self.health.record(bool(failed), now, call.started)
            if call.claim is not None:
                if failed:  # its lines stay on disk: give the segment up until the next try
                    self._claim_left -= len(self.replay)
                    self.replay.clear()
                self._claim_left -= len(call.items)
                if self._claim_left <= 0 and self.claim is call.claim:
                    release.append(call.claim)
                    self.claim = None
                elif not failed:
                    checkpoint = call.claim
            elif failed and insurance is None:
                if (
                    self.closed or now < self.health.blocked_until
                ):  # refused for good: not in memory
                    respill = failed
                else:
                    self.pending.extendleft(reversed(failed))
                    self.pending_bytes += sum(len(item.data) for item in failed)
        self.stats.add("retried", lines_of(failed))
        if call.counted_spooled:
            self.stats.add("spooled", lines_of(failed) - lines_of(call.items))
        elif insurance is not None and failed:
            self.stats.add("spooled", lines_of(failed))
        if checkpoint is not None and self.spool is not None:
            self.spool.checkpoint(checkpoint)
        for claim in release:
            assert self.spool is not None
            self.spool.release(claim)
        self.spill(respill, "exit_timeout" if self.closed else "sink_rejected")
        with self.lock:  # only now: until its lines are back on disk, a flush must wait
            self.inflight.remove(call)
        self.wake.set()

    # ---- flush and shutdown --------------------------------------------------------------------

    def probe_now(self) -> None:
        """A flush is waiting: try a failing sink again at once, not after the backoff."""
        self.health.probe_now()
        self.wake.set()

    def flush_waits(self, waiting: bool) -> None:
        """A flush begins (True) or ends (False): while any waits, nothing lingers."""
        with self.lock:
            self.flushes += 1 if waiting else -1
        if waiting:
            self.probe_now()

    def quiet(self, since: float) -> bool:
        """Nothing is left to do for a flush that began at ``since``: all delivered, or the
        sink has been failing for ``retry_budget`` seconds and was tried again after the flush
        began (its records are on disk, and retried in the background)."""
        with self.lock:
            if self.inflight:
                return False
            fresh = bool(self.pending) or self.moving > 0  # must reach the sink or the disk
            busy = fresh or self.replay or self.claim or self._claiming or self.replay_due
        if not busy:
            return True
        if fresh and self.spool is not None and self.spool.available():
            return False
        return self.health.given_up(time.monotonic(), self.retry_budget, since)

    def close(self) -> None:
        """At exit: what waits goes to disk (or is dropped and counted); calls still in flight
        are insured; a segment being replayed goes back."""
        with self.lock:
            self.closed = True
            left = list(self.pending)
            self.pending.clear()
            self.pending_bytes = 0
            self._claim_left -= len(self.replay)
            self.replay.clear()
            inflight = list(self.inflight)
            claim = self.claim if self._claim_left <= 0 else None
            if claim is not None:
                self.claim = None
        self.spill(left, "exit_timeout")
        if self.spool is not None:
            for call in inflight:
                if call.claim is None:
                    self._insure(call)
                    count_spooled_at_exit(call, self.stats)
            if claim is not None:
                self.spool.release(claim)
            self.spool.close_segment()
        self.wake.set()

    def reset_after_fork(self) -> None:
        """A forked child keeps none of the parent's items, locks, claims or connections. The
        descriptors of the parent's claims are closed here, or the child would keep their locks
        (an ``flock`` belongs to the open file, which parent and child share) until it exits."""
        inherited = [
            self.claim,
            *(c for call in self.inflight for c in (call.claim, call.insurance)),
        ]
        for claim in {id(c): c for c in inherited if c is not None}.values():
            with contextlib.suppress(OSError):
                os.close(claim.fd)
        self._reset_state()
        self.sink = self.make_sink()
        if self.spool is not None:
            self.spool.reset_after_fork()
