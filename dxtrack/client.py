"""The client: validates tracking calls, captures events, and owns one pipeline.

``Client`` is what ``configure()`` creates. ``NoopClient`` answers before that.
"""

from __future__ import annotations

import socket
import sys
import threading
import uuid
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from time import time as _now
from typing import Any

from dxtrack.config import Config
from dxtrack.counters import Counters
from dxtrack.log import LogOnce, logger
from dxtrack.pipeline import Pipeline, Route
from dxtrack.records import ERROR, METRIC, Event, RecordBuilder
from dxtrack.sinks.base import Sink
from dxtrack.spool import Spool

MAX_PENDING_BYTES = 32 * 1024 * 1024
"""Bytes of packed records per sink held in memory while they wait for delivery; past this the
oldest go to the disk spool."""

SinkFactory = tuple[Callable[[], Sink], bool]
"""How to make one sink, and whether it is delivered on the caller's thread (inline)."""


def default_spool_dir() -> str:
    """The per-user cache directory for the spool."""
    import platformdirs

    return str(platformdirs.user_cache_path("dxtrack") / "spool")


def _sink_factories(config: Config) -> list[SinkFactory]:
    factories: list[SinkFactory] = []
    if config.stage == "test":
        from dxtrack.sinks.jsonl_file import JsonlFileSink

        for kind in (ERROR, METRIC):
            factories.append(
                (lambda kind=kind: JsonlFileSink(config.output_dir, kind), True)  # type: ignore[misc]
            )
    else:
        from dxtrack.sinks.firehose import FirehoseSink

        for kind, stream in ((ERROR, config.error_stream), (METRIC, config.metric_stream)):
            factories.append(
                (
                    lambda kind=kind, stream=stream: FirehoseSink(  # type: ignore[misc]
                        stream, kind, config
                    ),
                    not config.use_async_requests,
                )
            )
    if config.papertrail_hostport:
        from dxtrack.sinks.papertrail import papertrail_sink_factory

        factories.append((papertrail_sink_factory(config), False))
    return factories


def _value(value: object) -> float:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"value must be a number, got {type(value).__name__}: {value!r}") from None


def _metadata(metadata: object, name: str = "metadata") -> dict[str, Any]:
    if isinstance(metadata, Mapping):
        return dict(metadata)
    raise ValueError(f"{name} must be a dict, got {type(metadata).__name__}: {metadata!r}")


def _metric_name(metric_name: object) -> str:
    if isinstance(metric_name, str):
        return str(metric_name)
    raise ValueError(f"metric_name must be a string, got {type(metric_name).__name__}")


class Client:
    """Tracks errors and metrics for one configuration."""

    def __init__(self, config: Config, sinks: Sequence[SinkFactory] | None = None) -> None:
        self.config = config
        self.counters = Counters()
        self._log_once = LogOnce()
        spool_root = config.spool_dir
        routes = []
        for make_sink, inline in sinks if sinks is not None else _sink_factories(config):
            route = Route(make_sink, inline=inline, spool=None, max_pending_bytes=MAX_PENDING_BYTES)
            if route.sink.durable:
                root = spool_root if spool_root is not None else default_spool_dir()
                directory = _spool_path(root, route.sink.name)
                route.spool = Spool(directory, self.counters, self._log_once)
            routes.append(route)
        self._pipeline = Pipeline(
            self._new_builder(),
            routes,
            max_buffer=config.max_buffer,
            flush_interval=config.flush_interval,
            retry_budget=config.retry_budget,
            stats=self.counters,
            log_once=self._log_once,
        )
        self._capture = self._pipeline.capture
        self._metric_buffer: list[Event] | None = [] if config.buffer_metrics else None
        self._metric_buffer_lock = threading.Lock()
        self._closed = False

    def _new_builder(self) -> RecordBuilder:
        config = self.config
        return RecordBuilder(
            context=config.context,
            stage=config.stage,
            run_id=config.run_id,
            default_metadata=config.default_metadata,
            producer_id=uuid.uuid4().hex,
            host=socket.gethostname(),
        )

    # ---- tracking: the caller's hot path -------------------------------------------------------

    def metric(
        self,
        metric_name: str,
        value: float,
        metadata: Mapping[str, Any] | None = None,
        timestamp: datetime | None = None,
    ) -> None:
        """Record ``value`` for ``metric_name``. See ``dxtrack.metric``."""
        if value.__class__ is not float:
            value = _value(value)
        if metadata is not None:
            metadata = metadata.copy() if metadata.__class__ is dict else _metadata(metadata)  # type: ignore[attr-defined]
        if timestamp is not None and not isinstance(timestamp, datetime):
            raise ValueError(
                f"timestamp must be a datetime, got {type(timestamp).__name__}: {timestamp!r}"
            )
        if metric_name.__class__ is not str:
            metric_name = _metric_name(metric_name)
        event = (METRIC, _now(), metric_name, value, metadata, timestamp)
        if self._metric_buffer is None:
            self._capture(event)
        else:
            self._buffer_metric(event)

    def error(self, metadata: Mapping[str, Any] | None = None) -> None:
        """Record the exception being handled. See ``dxtrack.error``."""
        exc_type, exc_value, tb = sys.exc_info()
        if metadata is not None:
            metadata = metadata.copy() if metadata.__class__ is dict else _metadata(metadata)  # type: ignore[attr-defined]
        if exc_type is None:
            self._log_once("error-outside-except", 30,
                           "dxtrack.error() was called outside an except block; the record has "
                           "no exception. Use dxtrack.errors([exc]) to record an exception object.")
        self._capture((ERROR, _now(), exc_type, exc_value, tb, metadata))

    def errors(
        self, list_of_exceptions: Iterable[BaseException], metadata: Mapping[str, Any] | None = None
    ) -> None:
        """Record several exceptions in one call. See ``dxtrack.errors``."""
        if metadata is not None:
            metadata = _metadata(metadata)
        try:
            exceptions = list(list_of_exceptions)
        except TypeError:
            raise ValueError(
                "list_of_exceptions must be a list of exceptions, got "
                f"{type(list_of_exceptions).__name__}"
            ) from None
        now = _now()
        events = [
            (ERROR, now, type(exc), exc, getattr(exc, "__traceback__", None), metadata)
            for exc in exceptions
        ]
        if events:
            self._pipeline.capture_many(events)

    def _buffer_metric(self, event: Event) -> None:
        with self._metric_buffer_lock:
            buffer = self._metric_buffer
            if buffer is None:
                self._capture(event)
                return
            buffer.append(event)
            full = len(buffer) >= self.config.max_buffer
        if full:  # keep memory bounded: hand a full buffer on as if it was flushed
            self.flush_metrics_buffer()

    def flush_metrics_buffer(self) -> None:
        """Hand every buffered metric to the sinks (with ``buffer_metrics=True``)."""
        with self._metric_buffer_lock:
            if not self._metric_buffer:
                return
            events, self._metric_buffer = self._metric_buffer, []
        self._pipeline.capture_many(events)

    # ---- delivery control -----------------------------------------------------------------

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until everything accepted so far was delivered; True when it all was."""
        return self._pipeline.flush(timeout)

    def close(self, timeout: float | None = None) -> bool:
        """Send buffered metrics, deliver within ``timeout``, spool the rest; then stop."""
        if self._closed:
            return True
        self._closed = True
        try:
            self.flush_metrics_buffer()
            delivered = self._pipeline.shutdown(
                self.config.exit_timeout if timeout is None else timeout
            )
        except Exception as exc:  # closing must never break the host's exit
            logger.error("dxtrack: error while shutting down: %r", exc)
            return False
        counts = self.counters.snapshot()
        if counts["spooled"] or counts["dropped"]:
            logger.warning(
                "dxtrack: %d record(s) delivered, %d spooled to disk for the next start, "
                "%d dropped (%s)",
                counts["delivered"],
                counts["spooled"],
                counts["dropped"],
                {k: v for k, v in counts.items() if k.startswith("dropped.")},
            )
        return delivered

    def stats(self) -> dict[str, int]:
        """Counts of records delivered, retried, spooled, replayed and dropped (by reason)."""
        return self.counters.snapshot()

    def reset_after_fork(self) -> None:
        """In a forked child: a new producer id, sequence and shipper; none of the parent's
        records."""
        with_buffer = self._metric_buffer is not None
        self._metric_buffer = [] if with_buffer else None
        self._metric_buffer_lock = threading.Lock()
        self._pipeline.reset_after_fork(self._new_builder())

    # ---- configuration read-back ----------------------------------------------------------

    @property
    def context(self) -> str | None:
        """The configured context."""
        return self.config.context

    @property
    def stage(self) -> str | None:
        """The configured stage."""
        return self.config.stage

    @property
    def run_id(self) -> str | None:
        """The configured or generated run id."""
        return self.config.run_id

    @property
    def default_metadata(self) -> dict[str, Any] | None:
        """A copy of the configured default metadata."""
        return dict(self.config.default_metadata)


def _spool_path(root: Any, sink_name: str) -> Any:
    from pathlib import Path

    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in sink_name)
    return Path(root) / safe


class NoopClient:
    """Answers before ``configure()``: does nothing, and warns once."""

    context = stage = run_id = default_metadata = None

    def __init__(self) -> None:
        self._warned = False

    def _warn(self) -> None:
        if not self._warned:
            self._warned = True
            warnings.warn(
                "dxtrack is not configured: call dxtrack.configure(context=..., stage=...) "
                "first. Tracking calls do nothing until then.",
                RuntimeWarning,
                stacklevel=4,
            )

    def metric(self, *args: Any, **kwargs: Any) -> None:
        """Does nothing before ``configure()``."""
        self._warn()

    def error(self, *args: Any, **kwargs: Any) -> None:
        """Does nothing before ``configure()``."""
        self._warn()

    def errors(self, *args: Any, **kwargs: Any) -> None:
        """Does nothing before ``configure()``."""
        self._warn()

    def flush_metrics_buffer(self) -> None:
        """Does nothing before ``configure()``."""
        self._warn()

    def flush(self, timeout: float | None = None) -> bool:
        """Nothing to deliver: True."""
        return True

    def close(self, timeout: float | None = None) -> bool:
        """Nothing to close: True."""
        return True

    def stats(self) -> dict[str, int]:
        """All zero."""
        return Counters().snapshot()

    def reset_after_fork(self) -> None:
        """Nothing to reset."""
