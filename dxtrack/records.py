"""Events captured on the caller's thread, and the pure function that turns them into JSON lines.

Capturing keeps only what cannot wait: the time, the values and, for errors, the exception with
its traceback object. Everything else (merging metadata, formatting the traceback, canonical JSON,
the content hash) happens in ``RecordBuilder.build``, which does no I/O.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timezone
from typing import Any, Final

import orjson
from xxhash import xxh3_64_hexdigest, xxh3_128_hexdigest

from dxtrack import jsonsafe, tracebacks
from dxtrack.capture import ERROR_CALL, Captured
from dxtrack.environment_variables import DXTRACK_PURE_PYTHON
from dxtrack.error_lines import ErrorLines
from dxtrack.events import ERROR, METRIC, Event

try:  # the compiled writer of metric lines, when it was built at install
    from dxtrack import _build
except ImportError:  # pragma: no cover - the pure-Python builder then does everything
    _build = None  # type: ignore[assignment]

MAX_LINE_BYTES: Final = 1_000 * 1024 - 4096
"""The largest JSON line: one Firehose record (1,000 KiB), less room for the newline and for
what gzip or zstd add to data that does not compress."""

_SHORTEN_STEPS: Final = (65_536, 8_192, 1_024, 128)
LOG_FIELDS: Final = ("level", "logger", "message")
"""What an error record captured from ``logging`` says in ``log``."""


def log_fingerprint(log: dict[str, str]) -> str:
    """Groups log messages without an exception: the logger and the message's template."""
    return xxh3_64_hexdigest(f"{log['logger']}\n{log['template']}".encode("utf-8", "replace"))


def unix_time(value: datetime) -> float:
    """Seconds since the epoch for ``value``; a naive datetime is taken as UTC."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return round(value.timestamp(), 6)


class RecordBuilder:
    """Turns captured events into finished JSON lines with an ``id``; pure and thread-confined."""

    def __init__(
        self,
        *,
        context: str,
        stage: str,
        run_id: str,
        default_metadata: Mapping[str, Any],
        producer_id: str,
        host: str,
        max_line_bytes: int = MAX_LINE_BYTES,
    ) -> None:
        self._common = {
            "context": context,
            "stage": stage,
            "run_id": run_id,
            "producer_id": producer_id,
            "host": host,
        }
        self._defaults = dict(default_metadata)
        self._max_line_bytes = max_line_bytes
        self._error_lines: ErrorLines | None = None

    def _metadata(self, metadata: Mapping[str, Any] | None) -> dict[str, Any]:
        if not metadata:
            return self._defaults
        if not self._defaults:
            return dict(metadata)
        return {**self._defaults, **metadata}

    def _error_record(self, event: Event, seq: int) -> dict[str, Any]:
        """The record of an error event as a dict, without its ``id`` (metrics are built inline,
        in ``build_many``)."""
        _, now, exc_type, text, trace, metadata = event
        handled, mechanism, log = True, ERROR_CALL, None
        if trace.__class__ is Captured:
            handled, mechanism, log, trace = trace.handled, trace.mechanism, trace.log, trace.trace
        record = {
            **self._common,
            "log": None,
            "metadata": self._metadata(metadata),
            "seq": seq,
            "timestamp": now,
        }
        exception: dict[str, Any] = {"handled": handled, "mechanism": mechanism}
        record["exception"] = exception
        if log is not None:
            record["log"] = {key: log[key] for key in LOG_FIELDS}
        if exc_type is None:
            exception.update(type=None, value=None, traceback=None)
            record["fingerprint"] = None if log is None else log_fingerprint(log)
            return record
        name = tracebacks.type_name(exc_type)
        printed, fingerprint = tracebacks.describe(name, text, trace if trace is not None else ())
        exception.update(type=name, value=text, traceback=printed if trace is not None else None)
        record["fingerprint"] = fingerprint
        return record

    def build_many(
        self, events: Iterable[Event], next_seq: Callable[[], int]
    ) -> tuple[list[tuple[str, bytes]], list[Exception]]:
        """The finished lines of ``events``, and the errors of those that could not be built.

        This is the shipper's inner loop, so the common case (a metric) is written out inline.
        """
        lines: list[tuple[str, bytes]] = []
        failures: list[Exception] = []
        append = lines.append
        common, defaults, max_bytes = self._common, self._defaults, self._max_line_bytes
        dumps, readable, options = orjson.dumps, jsonsafe.readable, jsonsafe.OPTIONS
        for event in events:
            try:
                if event[0] == METRIC:
                    _, now, name, value, metadata, timestamp = event
                    if metadata:
                        metadata = {**defaults, **metadata} if defaults else metadata
                    record = {
                        **common,
                        "metadata": metadata or defaults,
                        "metric_name": name if name.__class__ is str else tracebacks.safe_str(name),
                        "seq": next_seq(),
                        "timestamp": now if timestamp is None else unix_time(timestamp),
                        "value": value,
                    }
                    kind = METRIC
                else:
                    kind, record = ERROR, self._error_record(event, next_seq())
                try:
                    body = dumps(record, default=readable, option=options)
                except Exception:
                    body = jsonsafe.dumps(record)
                if len(body) > max_bytes:
                    body = self._shortened(record)
                digest = xxh3_128_hexdigest(body).encode()
                append((kind, b"".join((body[:-1], b',"id":"', digest, b'"}\n'))))
            except Exception as exc:
                failures.append(exc)
        return lines, failures

    def build(self, event: Event, seq: int) -> tuple[str, bytes]:
        """The finished JSON line of one event (ending in ``\\n``) and its kind: the
        compiled writer's fallback, which writes errors from a template once it was made."""
        if self._error_lines is not None and event[0] == ERROR:
            line = self._error_lines.line(event, seq)
            if line is not None:
                return ERROR, line
        lines, failures = self.build_many((event,), lambda: seq)
        if failures:
            raise failures[0]
        return lines[0]

    def common_json(self) -> dict[str, bytes]:
        """The JSON of each field every record of this configuration has."""
        return {key: orjson.dumps(value) for key, value in self._common.items()}

    def template(self) -> tuple[bytes, bytes, bytes, bytes, bytes]:
        """A metric line's JSON around its metadata, name, seq, timestamp and value, for the
        compiled writer (``_build.MetricWriter``): the record's keys are fixed and sorted."""
        common = self.common_json()
        return (
            b'{"context":%s,"host":%s,"metadata":' % (common["context"], common["host"]),
            b',"metric_name":',
            b',"producer_id":%s,"run_id":%s,"seq":' % (common["producer_id"], common["run_id"]),
            b',"stage":%s,"timestamp":' % common["stage"],
            b',"value":',
        )

    def compiled_writer(self) -> Any | None:
        """The compiled writer of metric lines (``_build.MetricWriter``), when it was built and
        not turned off by ``DXTRACK_PURE_PYTHON``; it gives the same bytes as ``build_many``."""
        if _build is None or os.environ.get(DXTRACK_PURE_PYTHON, "") not in ("", "0"):
            return None
        try:
            return self.make_writer()
        except Exception:  # default metadata orjson refuses: the pure-Python builder copes
            return None

    def make_writer(self) -> Any:
        """A new compiled writer of this builder's metric lines; from then on ``build`` writes
        errors from a template too."""
        self._error_lines = ErrorLines(self.common_json(), self._defaults, self._max_line_bytes)
        return _build.MetricWriter(
            parts=self.template(),
            defaults=self._defaults,
            dumps=orjson.dumps,
            default=jsonsafe.readable,
            option=jsonsafe.OPTIONS,
            metric_kind=METRIC,
            max_line=self._max_line_bytes,
        )

    def _shortened(self, record: dict[str, Any]) -> bytes:
        plain = jsonsafe.to_jsonable(record)
        for max_chars in _SHORTEN_STEPS:
            body = jsonsafe.dumps(jsonsafe.shorten(plain, max_chars))
            if len(body) <= self._max_line_bytes:
                return body
        plain["metadata"] = {"dxtrack_truncated": True}
        return jsonsafe.dumps(jsonsafe.shorten(plain, _SHORTEN_STEPS[-1]))
