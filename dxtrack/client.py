"""The client: validates tracking calls, captures events, and owns the current pipeline."""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from time import monotonic as _monotonic
from time import time as _now
from typing import TYPE_CHECKING, Any

from dxtrack import capture, tracebacks
from dxtrack.arguments import ErrorFunction, MetricFunction, checked_metadata, checked_value
from dxtrack.counters import Counters
from dxtrack.environment_variables import compiled_allowed
from dxtrack.events import ERROR, EVENT_WIDTH, METRIC, Event, FlatBuffer, new_buffer, pop_events
from dxtrack.interrupts import goes_on
from dxtrack.log import LogOnce, logger, warn_at_caller

if TYPE_CHECKING:
    from dxtrack.config import Config
    from dxtrack.delivery.shipper import Shipper
    from dxtrack.wiring import SinkFactory

try:  # the compiled fast path of metric() and error(), when it was built at install
    from dxtrack import _hotpath
except ImportError:  # pragma: no cover - the pure-Python methods then do everything
    _hotpath = None  # type: ignore[assignment]

JOIN_GRACE = 0.3
"""Seconds past its timeout that ``close()`` waits for the threads closing older
configurations, or for another thread's ``close()``."""
ORPHAN_SECONDS = 60.0
"""How long the buffers of a previous configuration are still drained after ``configure()``."""
Closing = tuple[threading.Event, float] | None


def compiled_fast_path() -> bool:
    """Whether ``metric()`` and ``error()`` use the compiled fast path (``dxtrack._hotpath``)."""
    return _hotpath is not None and compiled_allowed()


class Client:
    """The process's one client. ``configure()`` points it at a configuration and a pipeline;
    before that, tracking calls do nothing and warn once.

    ``dxtrack.metric`` and ``dxtrack.error`` are ``metric_entry`` and ``error_entry``: the
    compiled fast path in front of the methods of those names when it was built, else the
    methods themselves. The other module functions are this object's bound methods.
    """

    def __init__(self) -> None:
        self.config: Config | None = None
        self.counters = Counters()
        self._log_once = LogOnce()
        self._pipeline: Shipper | None = None
        self._held: FlatBuffer | None = None
        self._held_lock = threading.Lock()
        self._retiring: list[threading.Thread] = []
        """Threads closing the shippers of previous configurations."""
        self._closing: Closing = None
        """Set while ``close()`` runs: the event it sets when done, and its deadline."""
        self._orphans: list[tuple[FlatBuffer, threading.Lock, float]] = []
        """Buffers of previous configurations, each with its drain lock and when it was
        replaced: a thread in the middle of a tracking call may still append to one."""
        self._lock = threading.RLock()
        self._warned = False
        self.scope: dict[str, Any] | None = None
        """Metadata merged under every call's meanwhile (``set_scope``)."""
        self._compiled: tuple[_hotpath.Entry, _hotpath.Entry] | None = None
        self.metric_entry: MetricFunction = self.metric
        self.error_entry: ErrorFunction = self.error
        if compiled_fast_path():
            namespace = globals()  # the Entry reads _now from here per call: freezegun patches it
            self._compiled = (
                _hotpath.Entry(self.metric, METRIC, namespace, "_now"),
                _hotpath.Entry(self.error, ERROR, namespace, "_now"),
            )
            self.metric_entry, self.error_entry = self._compiled
        self._set_fast_path()

    # ---- configuration ----------------------------------------------------------------------

    def configure(self, config: Config, sinks: Sequence[SinkFactory] | None = None) -> None:
        """Start the new configuration, then close the previous one in the background
        (delivering or spooling its records). Calls made meanwhile on other threads are
        delivered under one or the other: the new shipper also drains the buffers they may
        still be appending to."""
        from dxtrack import wiring

        with self._lock:
            previous, previous_config = self._pipeline, self.config
            orphans = [o for o in self._orphans if o[0] or _monotonic() - o[2] < ORPHAN_SECONDS]
            if previous is not None:
                orphans.append((previous.buffer, previous.drain_lock, _monotonic()))
            if self._held is not None:
                orphans.append((self._held, self._held_lock, _monotonic()))
            self._orphans = orphans
            counters, log_once = Counters(), LogOnce()
            shipper = wiring.shipper(
                config, sinks, counters, log_once, [(o[0], o[1]) for o in orphans]
            )
            self.config, self.counters, self._log_once = config, counters, log_once
            self._held = new_buffer() if config.buffer_metrics else None
            self._held_lock = threading.Lock()
            self._pipeline = shipper
            self._set_fast_path()
        if previous is not None and previous_config is not None:  # close() waits for it
            alive = [thread for thread in self._retiring if thread.is_alive()]
            self._retiring = [*alive, previous.retire(previous_config.exit_timeout)]

    def _set_fast_path(self) -> None:
        """Where ``metric()`` may append without a call: the held metrics with
        ``buffer_metrics``, else the pipeline's buffer until it is full (the builder looks at a
        busy buffer often)."""
        pipeline = self._pipeline
        self._fast_buffer: Any = ()
        self._fast_limit = 0
        self._error_buffer: Any = ()
        self._error_limit = 0
        if pipeline is not None and self.config is not None and not self.scope:
            if not pipeline.has_inline:
                self._error_buffer, self._error_limit = pipeline.buffer, pipeline.max_slots
            if self._held is not None:
                self._fast_buffer = self._held
                self._fast_limit = (self.config.max_buffer - 1) * EVENT_WIDTH
            elif not pipeline.has_inline:
                self._fast_buffer, self._fast_limit = pipeline.buffer, pipeline.max_slots
        if self._compiled is not None:
            compiled_metric, compiled_error = self._compiled
            for entry, buffer, limit in (
                (compiled_metric, self._fast_buffer, self._fast_limit),
                (compiled_error, self._error_buffer, self._error_limit),
            ):
                entry.route(buffer if limit else None, limit)

    def _not_configured(self, calls: int = 1) -> None:
        self.counters.drop("not_configured", calls)
        if not self._warned:
            self._warned = True
            warn_at_caller(
                "dxtrack is not configured: call dxtrack.configure(context=..., stage=...) "
                "first. Tracking calls do nothing until then.",
                RuntimeWarning,
            )

    # ---- tracking: the caller's hot path -------------------------------------------------------

    def metric(
        self,
        metric_name: str,
        value: float,
        metadata: Mapping[str, Any] | None = None,
        timestamp: datetime | None = None,
    ) -> None:
        """Record a number under a dotted ``metric_name``.

        Args:
            metric_name: e.g. ``products.downloaded``.
            value: anything ``float()`` accepts.
            metadata: merged over ``default_metadata``.
            timestamp: when it happened (default: now); a naive datetime is taken as UTC.

        Raises:
            ValueError: ``value`` can't be a float, ``timestamp`` is not a datetime, or
                ``metadata`` is not a dict.
        """
        if value.__class__ is not float:
            value = checked_value(value)
        if metadata is not None:
            metadata = metadata.copy() if metadata.__class__ is dict else checked_metadata(metadata)
        if timestamp is not None and not isinstance(timestamp, datetime):
            raise ValueError(
                f"timestamp must be a datetime, got {type(timestamp).__name__}: {timestamp!r}"
            )
        buffer = self._fast_buffer
        if len(buffer) < self._fast_limit:  # the fast path: no lock, no call
            buffer.extend((METRIC, _now(), metric_name, value, metadata, timestamp))
        else:
            self._metric_slow((METRIC, _now(), metric_name, value, metadata, timestamp))

    def _metric_slow(self, event: Event) -> None:
        pipeline = self._pipeline
        if self.scope:
            event = (*event[:4], capture.with_scope(event[4], self.scope), event[5])
        if pipeline is None:
            self._not_configured()
        elif self._held is not None:
            self._held.extend(event)
            if len(self._held) >= pipeline.max_slots:
                self.flush_metrics_buffer()  # keep memory bounded: hand the held metrics on
        else:
            pipeline.capture(event)

    def error(self, metadata: Mapping[str, Any] | None = None) -> None:
        """Record the exception being handled; call it inside an ``except`` block.

        Raises:
            ValueError: ``metadata`` is not a dict.
        """
        exc_type, exc_value, tb = sys.exc_info()
        if metadata is not None:
            metadata = metadata.copy() if metadata.__class__ is dict else checked_metadata(metadata)
        if exc_value is None:
            self._error_outside_except(metadata)
            return
        text = tracebacks.exception_text(exc_value)
        trace = tracebacks.capture(exc_value, tb)
        buffer = self._error_buffer
        if len(buffer) < self._error_limit:  # the fast path, as in metric()
            buffer.extend((ERROR, _now(), exc_type, text, trace, metadata))
        elif self._pipeline is None:
            self._not_configured()
        else:
            metadata = capture.with_scope(metadata, self.scope)
            self._pipeline.capture((ERROR, _now(), exc_type, text, trace, metadata))
        capture.mark(exc_value)

    def _error_outside_except(self, metadata: dict[str, Any] | None) -> None:
        if self._pipeline is None:
            self._not_configured()
            return
        self._log_once(
            "error-outside-except",
            logging.WARNING,
            "dxtrack.error() was called outside an except block; the record has "
            "no exception. Use dxtrack.errors([exc]) to record an exception object.",
        )
        self.record((ERROR, _now(), None, None, None, metadata))

    def errors(
        self, list_of_exceptions: Iterable[BaseException], metadata: Mapping[str, Any] | None = None
    ) -> None:
        """Record several caught exceptions at once, with their tracebacks where they have one.

        Raises:
            ValueError: ``metadata`` is not a dict, or ``list_of_exceptions`` is not iterable.
        """
        if metadata is not None:
            metadata = checked_metadata(metadata)
        try:
            exceptions = list(list_of_exceptions)
        except TypeError:
            raise ValueError(
                "list_of_exceptions must be a list of exceptions, got "
                f"{type(list_of_exceptions).__name__}"
            ) from None
        pipeline = self._pipeline
        if pipeline is None:
            self._not_configured()
            return
        events = capture.exception_events(exceptions, capture.with_scope(metadata, self.scope))
        if events:
            pipeline.capture_many(events)

    def record(self, event: Event) -> None:
        """Record an event that dxtrack captured by itself (never raises)."""
        pipeline = self._pipeline
        if pipeline is None:
            return
        try:
            if self.scope:
                event = (*event[:5], capture.with_scope(event[5], self.scope))
            pipeline.capture(event)
        except Exception as exc:  # a hook must never break the host
            logger.error("dxtrack: could not record an error: %r", exc)

    def set_scope(self, scope: dict[str, Any] | None) -> None:
        """Merge ``scope`` under the metadata of every call until it is set to None (one
        Lambda invocation at a time). Calls take the Python path meanwhile."""
        self.scope = scope or None
        self._set_fast_path()

    def flush_metrics_buffer(self) -> None:
        """Hand every metric held by ``buffer_metrics=True`` on for delivery."""
        held, pipeline = self._held, self._pipeline
        if pipeline is None:
            self._not_configured(0)
            return
        if held is None:
            return
        with self._held_lock:  # pop, never swap: another thread may be appending right now
            events = pop_events(held)
        if events:
            pipeline.capture_many(events)

    # ---- delivery control -----------------------------------------------------------------

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until everything tracked so far was delivered, or ``timeout`` seconds passed.

        Returns:
            True when everything was delivered; False when something is still waiting, or was
            spooled to disk or dropped.
        """
        deadline = None if timeout is None else _monotonic() + timeout
        for retiring in self._retiring:  # previous configurations first
            retiring.join(None if deadline is None else max(deadline - _monotonic(), 0.0))
        retired = not any(retiring.is_alive() for retiring in self._retiring)
        pipeline = self._pipeline
        if pipeline is None:
            return retired
        left = None if deadline is None else max(deadline - _monotonic(), 0.0)
        return pipeline.flush(left) and retired

    def close(self, timeout: float | None = None) -> bool:
        """Deliver within ``timeout`` (default ``exit_timeout``), spool the rest, stop shipping.

        Runs by itself at exit and before a new ``configure()``. Afterwards dxtrack is
        unconfigured: tracking calls do nothing until the next ``configure()``.
        """
        detached: list[Shipper] = []  # once the shipper is in it, this call closes it
        try:
            closing, timeout = self._detach(timeout, detached)
            if detached:
                return detached[0].shutdown(timeout)
            if closing is not None:  # being closed by another thread: wait for it
                closing[0].wait(max(closing[1] + JOIN_GRACE - _monotonic(), 0.0))
            return True
        except Exception as exc:  # closing must never break the host's exit
            logger.error("dxtrack: error while shutting down: %r", exc)
            return False
        except BaseException as exc:
            if detached and goes_on(exc):  # a Ctrl-C cut the closing short: the rest to disk
                with contextlib.suppress(BaseException):
                    self._unconfigure(detached[0])
                    detached[0].shutdown(0.0, 0.0)
            raise
        finally:
            if detached:
                self._finish_closing(self._closing)

    def _unconfigure(self, pipeline: Shipper) -> None:
        """Tracking calls stop reaching ``pipeline`` (a no-op once another took its place); the
        fast path is set again even when an interrupt cut the last setting short."""
        if self._pipeline is pipeline:
            self._pipeline = self.config = None
        if self._pipeline is None:
            self._set_fast_path()

    def _finish_closing(self, closing: Closing) -> None:
        """Wait for previous configurations still closing, then let waiting threads go on."""
        if closing is not None:
            try:
                for retiring in self._retiring:
                    retiring.join(max(closing[1] + JOIN_GRACE - _monotonic(), 0.0))
            finally:
                closing[0].set()

    def _detach(self, timeout: float | None, detached: list[Shipper]) -> tuple[Closing, float]:
        """Unconfigure; the shipper to close goes in ``detached`` (none if closed already)."""
        # Bounded: after a SIGTERM, the main thread may be stopped inside configure() for good.
        locked = self._lock.acquire(timeout=JOIN_GRACE)
        try:
            pipeline, config, closing = self._pipeline, self.config, self._closing
            if pipeline is None or config is None:
                return closing, 0.0
            try:
                self.flush_metrics_buffer()
            except Exception as exc:  # closing must never break the host's exit
                logger.error("dxtrack: error while shutting down: %r", exc)
            timeout = config.exit_timeout if timeout is None else timeout
            self._closing = (threading.Event(), _monotonic() + timeout)
            detached.append(pipeline)
            self._unconfigure(pipeline)
            return self._closing, timeout
        finally:
            if locked:
                self._lock.release()

    def stats(self) -> dict[str, int]:
        """Counts of records delivered, retried, spooled, replayed and dropped (by reason) since
        the last ``configure()``."""
        return self.counters.snapshot()

    @property
    def shipper(self) -> Shipper | None:
        """The current configuration's shipper (None before ``configure()``)."""
        return self._pipeline

    def reset_after_fork(self) -> None:
        """In a forked child: a new producer id, sequence and shipper; none of the parent's
        records."""
        self._lock = threading.RLock()
        self._held_lock = threading.Lock()
        self._orphans = []
        self._closing = None
        self._retiring = []
        if self._held is not None:
            self._held = new_buffer()
        if self._pipeline is not None and self.config is not None:
            from dxtrack import wiring

            self._pipeline.reset_after_fork(wiring.new_builder(self.config))
        self._set_fast_path()
