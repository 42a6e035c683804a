"""The capture buffer, and building its events into JSON lines.

The caller's thread appends each event to a flat buffer with one ``extend``; one thread
at a time takes events out (``drain_lock``) and builds their lines with the record builder,
numbering them with the producer's ``seq``. Lines built elsewhere (by a caller whose buffer was
full, or for the inline routes) wait in ``built`` for the background routes.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from typing import Final

from dxtrack import interrupts
from dxtrack.counters import Counters
from dxtrack.environment_variables import compiled_allowed
from dxtrack.events import EVENT_WIDTH, METRIC, Event, FlatBuffer, iter_events, new_buffer
from dxtrack.log import LogOnce
from dxtrack.records import RecordBuilder
from dxtrack.shaping import SAMPLED

try:  # the compiled writer's counter, when it was built at install
    from dxtrack._build import Sequence as CompiledSequence
except ImportError:  # pragma: no cover - itertools.count then
    CompiledSequence = None  # type: ignore[assignment,misc]

STALE_EVENT_SECONDS: Final = 0.5
"""Captured events older than this are built at the builder's next look, however few they are
(unless a sink that is not stalled has a long queue: they then wait for it)."""

ANCHOR_EVERY: Final = 256
"""One line in this many of a build is kept until the next build. Lines are small objects, in
the 1 MiB arenas of Python's allocator, which returns an arena to the system once nothing in it
is alive: a build's lines, all freed once packed, would give their arenas back, and the next
build would take fresh pages from the kernel (a page fault per 4 KiB of lines, more CPU than
writing them). A line kept in each arena keeps the arena for the next build."""

Line = tuple[str, bytes]
"""A built record: its kind and its JSON line."""
Batch = dict[str, list[bytes]]
"""Built lines by record kind."""
Orphan = tuple[FlatBuffer, threading.Lock]
"""The buffer of a previous configuration, and the lock that lets one thread at a time drain
it: a thread that was in the middle of a tracking call while ``configure()`` ran may still
append to it."""


class Buffers:
    """The capture buffer, the buffers of previous configurations, and built lines waiting."""

    def __init__(
        self,
        builder: RecordBuilder,
        stats: Counters,
        log_once: LogOnce,
        orphans: Sequence[Orphan] = (),
    ) -> None:
        self.builder = builder
        builder.omit = stats.omit
        self._writer = builder.compiled_writer()
        self.stats = stats
        self._log_once = log_once
        self.events: FlatBuffer = new_buffer()
        self.drain_lock = threading.Lock()
        self.orphans = list(orphans)
        self.built: deque[Line] = deque()
        self._seq = new_sequence()
        self.draining = 0
        """Above 0 while lines taken out of the buffers are not yet queued anywhere."""
        self._anchors: list[bytes] = []

    def empty(self) -> bool:
        """Whether nothing waits to be built or queued (a summary the error rate limit owes
        waits too: ``take(final=True)`` builds it)."""
        if self.events or self.built or self.draining:
            return False
        limiter = self.builder.limiter
        if limiter is not None and limiter.holding():
            return False
        return not any(orphan for orphan, _ in self.orphans)

    def stale(self) -> bool:
        """Whether the oldest captured event waited ``STALE_EVENT_SECONDS`` (by its capture
        time; a frozen test clock just never calls it stale)."""
        try:
            return bool(time.time() - self.events[1] > STALE_EVENT_SECONDS)
        except (IndexError, TypeError):
            return False

    def take(self, limit: int | None = None, *, final: bool = False) -> tuple[int, Batch]:
        """Build up to ``limit`` captured events (all when None), everything the orphans hold,
        and the lines waiting in ``built``; return how many captured events were taken, and the
        lines. ``final`` (a flush, or the end) adds the summary of every rate-limit window that
        holds occurrences back. Call ``done()`` once the lines are queued."""
        self.draining += 1
        with self.drain_lock:
            taken = len(self.events) // EVENT_WIDTH
            taken = taken if limit is None else min(taken, limit)
            batch = self.build_from(self.events, taken)
            # at a flush, the summaries once the buffer is drained (not one per chunk)
            merge(batch, by_kind(self.summaries(everything=final and not self.events)))
        for orphan, lock in self.orphans:
            if orphan:
                with lock:
                    merge(batch, self.build_from(orphan, len(orphan) // EVENT_WIDTH))
        merge(batch, by_kind(_pop_all(self.built)))
        return taken, batch

    def done(self) -> None:
        """The lines of the last ``take()`` are queued."""
        self.draining -= 1

    def build_from(self, buffer: FlatBuffer, count: int) -> Batch:
        """Pop ``count`` events from a flat buffer and build their lines: with the compiled
        writer when there is one, else one event at a time (no batch of event tuples outlives
        a young GC generation)."""
        with interrupts.building:
            return self._build_from(buffer, count)

    def _build_from(self, buffer: FlatBuffer, count: int) -> Batch:
        self.builder.start_batch()
        if self._writer is None:
            lines, failures = self.builder.build_many(
                iter_events(buffer, count), self._seq.__next__
            )
            self._count_failures(failures)
            return by_kind(lines)
        metrics: list[bytes] = []
        others: list[Line] = []
        failed: list[BaseException] = []
        try:
            self._writer.build(
                buffer, count, self._seq, self.builder.build, metrics, others, failed
            )
            interrupts.checkpoint()  # a Ctrl-C during the compiled loop: raised here, kept
        except BaseException as exc:
            if not (interrupts.interrupting(exc) and interrupts.keep(exc)):
                raise
        if metrics:  # an orphan's build, often empty, leaves the last anchors be
            self._anchors = metrics[::ANCHOR_EVERY]
        self.stats.omit(SAMPLED, self._writer.take_sampled_out())
        self._count_failures(failed)
        batch = by_kind(others)
        batch[METRIC] = metrics + batch.get(METRIC, [])
        return batch

    def build(self, events: Iterable[Event]) -> list[Line]:
        """The lines of ``events``, then the summaries of rate-limit windows that ended; those
        that can't be built are counted and logged."""
        with interrupts.building:
            self.builder.start_batch()
            lines, failures = self.builder.build_many(events, self._seq.__next__)
            self._count_failures(failures)
            return lines + self.summaries()

    def summaries(self, everything: bool = False) -> list[Line]:
        """The summary records of the rate-limit windows that ended (of every window holding
        occurrences back, with ``everything``)."""
        with interrupts.building:
            lines, failures = self.builder.summaries(self._seq.__next__, time.time(), everything)
            self._count_failures(failures)
            return lines

    def _count_failures(self, failures: Sequence[BaseException]) -> None:
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
            for failure in failures:  # inside a build: kept (see ``interrupts``)
                if interrupts.interrupting(failure):
                    interrupts.keep(failure)

    def reset_after_fork(self, builder: RecordBuilder) -> None:
        """In a forked child: none of the parent's events, a new producer and sequence."""
        self.builder = builder
        builder.omit = self.stats.omit
        self._writer = builder.compiled_writer()
        self.events = new_buffer()
        self.drain_lock = threading.Lock()
        self.orphans = []
        self.built = deque()
        self._seq = new_sequence()
        self.draining = 0


def new_sequence() -> Iterator[int]:
    """The producer's ``seq`` numbers from 1, as ``itertools.count``: compiled when the writer
    is, which then numbers its lines without making an int for each."""
    if CompiledSequence is not None and compiled_allowed():
        return CompiledSequence(1)
    return itertools.count(1)


def by_kind(lines: Iterable[Line]) -> Batch:
    """``lines`` grouped by record kind."""
    batch: Batch = {}
    for kind, data in lines:
        batch.setdefault(kind, []).append(data)
    return batch


def merge(batch: Batch, more: Batch) -> None:
    """Add the lines of ``more`` to ``batch``."""
    for kind, lines in more.items():
        batch.setdefault(kind, []).extend(lines)


def _pop_all(queue: deque[Line]) -> list[Line]:
    """Everything in ``queue``, popped (never swapped: other threads may be appending)."""
    out: list[Line] = []
    popleft = queue.popleft
    while queue:
        try:
            out.append(popleft())
        except IndexError:
            break
    return out
