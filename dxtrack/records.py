"""Events captured on the caller's thread, and the pure function that turns them into JSON lines.

Capturing keeps only what cannot wait: the time, the values and, for errors, the exception with
its traceback object. Everything else (merging metadata, formatting the traceback, canonical JSON,
the content hash) happens in ``RecordBuilder.build``, which does no I/O.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime, timezone
from typing import Any, Final

import orjson
from xxhash import xxh3_64_hexdigest, xxh3_128_hexdigest

from dxtrack import interrupts, jsonsafe, tracebacks
from dxtrack.capture import ERROR_CALL, Captured
from dxtrack.environment_variables import compiled_allowed
from dxtrack.error_lines import ErrorLines
from dxtrack.events import ERROR, METRIC, Event
from dxtrack.scrubbing import Scrubber, url_credentials_filtered
from dxtrack.shaping import (
    BEFORE_SEND,
    HELD,
    RATE_LIMITED,
    RECORD,
    SAMPLED,
    BeforeSend,
    ErrorLimiter,
    Sampler,
    Shaping,
)

try:  # the compiled writer of metric lines, when it was built at install
    from dxtrack import _build
except ImportError:  # pragma: no cover - the pure-Python builder then does everything
    _build = None  # type: ignore[assignment]

MAX_LINE_BYTES: Final = 1_000 * 1024 - 4096
"""The largest JSON line: one Firehose record (1,000 KiB), less room for the newline and for
what gzip or zstd add to data that does not compress."""

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
        shaping: Shaping | None = None,
    ) -> None:
        shaping = shaping if shaping is not None else Shaping()
        self._scrubber = Scrubber(shaping.scrub_keys) if shaping.scrub else None
        self._scrub = self._scrubber.metadata if self._scrubber is not None else None
        self._clean = url_credentials_filtered if shaping.scrub else str
        self._common = {
            "context": context,
            "stage": stage,
            "run_id": run_id,
            "producer_id": producer_id,
            "host": host,
        }
        self._defaults = dict(default_metadata)
        if self._scrub is not None:
            self._defaults = self._scrub(self._defaults)
        self._max_line_bytes = max_line_bytes
        self._error_lines: ErrorLines | None = None
        self._sources_checked = False
        self._metric_rate = shaping.metric_sample_rate
        self._error_rate = shaping.error_sample_rate
        self._metric_sampler = Sampler(self._metric_rate) if self._metric_rate < 1 else None
        self._error_sampler = Sampler(self._error_rate) if self._error_rate < 1 else None
        limit = shaping.error_rate_limit
        self.limiter = ErrorLimiter(limit) if limit else None
        self._before_send = (
            BeforeSend(shaping.before_send, shaping.log_once)
            if shaping.before_send is not None
            else None
        )
        self.omit: Callable[[str, int], None] = lambda reason, n: None
        """Counts records left out on purpose, by reason (the buffers set their counters')."""

    def _metadata(self, metadata: Mapping[str, Any] | None) -> dict[str, Any]:
        if not metadata:
            return self._defaults
        if self._scrub is not None:
            metadata = self._scrub(dict(metadata))
        if not self._defaults:
            return dict(metadata)
        return {**self._defaults, **metadata}

    def start_batch(self) -> None:
        """A new batch of events: the first error in it checks the source files of the texts
        kept (changed files are read again, as Python does at each print)."""
        self._sources_checked = False

    def _check_sources(self) -> None:
        if not self._sources_checked:
            self._sources_checked = True
            tracebacks.recheck_sources()

    def check_sources_now(self) -> None:
        """Called by the compiled writer before the first error of a build: it writes error
        lines from the JSON kept, which must first forget the texts of files that changed."""
        if self._error_lines is not None:
            self._check_sources()
            self._error_lines.forget_stale()

    def _error_record(self, event: Event, suppressed: int = 0) -> dict[str, Any]:
        """The record of an error event as a dict, without its ``seq`` and ``id`` (metrics are
        built inline, in ``build_many``)."""
        _, now, exc_type, text, trace, metadata = event
        self._check_sources()
        handled, mechanism, log = True, ERROR_CALL, None
        if trace.__class__ is Captured:
            handled, mechanism, log, trace = trace.handled, trace.mechanism, trace.log, trace.trace
        record = {
            **self._common,
            "log": None,
            "metadata": self._metadata(metadata),
            "suppressed": suppressed,
            "timestamp": now,
        }
        if self._error_sampler is not None:
            record["sample_rate"] = self._error_rate
        exception: dict[str, Any] = {"handled": handled, "mechanism": mechanism}
        record["exception"] = exception
        if log is not None:
            record["log"] = {key: log[key] for key in LOG_FIELDS}
            record["log"]["message"] = self._clean(record["log"]["message"])
        if exc_type is None:
            exception.update(type=None, value=None, traceback=None)
            record["fingerprint"] = None if log is None else log_fingerprint(log)
            return record
        name = tracebacks.type_name(exc_type)
        if trace is None:
            printed, fingerprint = "", tracebacks.fingerprint(name, None)
        else:
            printed, fingerprint = tracebacks.describe(exc_type, text, trace)
        exception.update(
            type=name,
            value=self._clean(text),
            traceback=self._clean(printed) if trace is not None else None,
        )
        record["fingerprint"] = fingerprint
        return record

    def _fingerprint(self, event: Event) -> str | None:
        """The fingerprint an error event's record will have."""
        _, _, exc_type, _, trace, _ = event
        if trace.__class__ is Captured:
            if exc_type is None:
                return None if trace.log is None else log_fingerprint(trace.log)
            trace = trace.trace
        if exc_type is None:
            return None
        return tracebacks.fingerprint(tracebacks.type_name(exc_type), trace)

    def _admitted(self, event: Event) -> bool:
        """Whether an error event gets a record now (sampling, then the rate limit)."""
        return self.admit_error(None, event, known=False)

    def admit_error(self, fingerprint: str | None, event: Event, known: bool = True) -> bool:
        """Whether an error event with this fingerprint gets a record now (sampling, then the
        rate limit); what they leave out is counted. The compiled writer's ``admit``, for the
        errors whose fingerprint it knows."""
        if self._error_sampler is not None and not self._error_sampler.keep():
            self.omit(SAMPLED, 1)
            return False
        if self.limiter is not None:
            if not known:
                fingerprint = self._fingerprint(event)
            verdict = RECORD if fingerprint is None else self.limiter.admit(fingerprint, event)
            if verdict == HELD:
                self.omit(RATE_LIMITED, 1)
            return verdict == RECORD
        return True

    def summaries(
        self, next_seq: Callable[[], int], now: float, everything: bool = False
    ) -> tuple[list[tuple[str, bytes]], list[BaseException]]:
        """The summary records of the rate limit's windows that ended by ``now`` (of every
        window, at a flush or exit)."""
        if self.limiter is None:
            return [], []
        lines: list[tuple[str, bytes]] = []
        failures: list[BaseException] = []
        for event, suppressed in self.limiter.due(now, everything):
            try:
                self._finish(ERROR, self._error_record(event, suppressed), next_seq, lines.append)
            except BaseException as exc:  # an interrupt too: Buffers raises it once queued
                failures.append(exc)
        return lines, failures

    def _finish(
        self,
        kind: str,
        record: dict[str, Any],
        next_seq: Callable[[], int],
        append: Callable[[tuple[str, bytes]], None],
    ) -> None:
        """Run ``before_send``, then number the record and append its line."""
        if self._before_send is not None:
            shaped = self._before_send.apply(record)
            if shaped is None:
                self.omit(BEFORE_SEND, 1)
                return
            record = shaped
        record["seq"] = next_seq()
        try:
            body = orjson.dumps(record, default=jsonsafe.readable, option=jsonsafe.OPTIONS)
        except Exception as exc:
            interrupts.keep_cause(exc)
            body = jsonsafe.dumps(record)
        if len(body) > self._max_line_bytes:
            body = jsonsafe.shortened_line(record, self._max_line_bytes)
        digest = xxh3_128_hexdigest(body).encode()
        append((kind, b"".join((body[:-1], b',"id":"', digest, b'"}\n'))))

    def build_many(
        self, events: Iterable[Event], next_seq: Callable[[], int], *, shape: bool = True
    ) -> tuple[list[tuple[str, bytes]], list[BaseException]]:
        """The finished lines of ``events``, and the errors of those that could not be built.
        With ``shape`` (the default), sampling and the error rate limit apply.

        A Ctrl-C landing between two records is kept (see ``interrupts``), and the rest built.
        """
        lines: list[tuple[str, bytes]] = []
        failures: list[BaseException] = []
        remaining = iter(events)
        while True:
            try:
                self._build_into(remaining, next_seq, shape, lines, failures)
                return lines, failures
            except BaseException as exc:
                if not (interrupts.interrupting(exc) and interrupts.keep(exc)):
                    raise

    def _build_into(
        self,
        events: Iterator[Event],
        next_seq: Callable[[], int],
        shape: bool,
        lines: list[tuple[str, bytes]],
        failures: list[BaseException],
    ) -> None:
        """``build_many``'s loop: the shipper's inner loop, so a metric is written out inline."""
        append = lines.append
        common, defaults, scrub = self._common, self._defaults, self._scrub
        sampler = self._metric_sampler if shape else None
        for event in events:
            try:
                if event[0] == METRIC:
                    if sampler is not None and not sampler.keep():
                        self.omit(SAMPLED, 1)
                        continue
                    _, now, name, value, metadata, timestamp = event
                    if metadata:
                        if scrub is not None:
                            metadata = scrub(metadata)
                        metadata = {**defaults, **metadata} if defaults else metadata
                    record = {
                        **common,
                        "metadata": metadata or defaults,
                        "metric_name": name if name.__class__ is str else tracebacks.safe_str(name),
                        "timestamp": now if timestamp is None else unix_time(timestamp),
                        "value": value,
                    }
                    if self._metric_sampler is not None:
                        record["sample_rate"] = self._metric_rate
                    self._finish(METRIC, record, next_seq, append)
                elif not shape or self._admitted(event):
                    self._finish(ERROR, self._error_record(event), next_seq, append)
            except BaseException as exc:  # an interrupt too: kept, raised once queued
                failures.append(exc)

    def build(
        self, event: Event, seq: int | None = None, next_seq: Callable[[], int] | None = None
    ) -> tuple[str, bytes] | None:
        """The finished JSON line of one event (ending in ``\\n``) and its kind, or None when
        sampling or the rate limit leave it out. With ``seq`` it takes that number and is not
        shaped (a metric the compiled writer took a number for); else it takes ``next_seq()``
        when it is kept. The compiled writer's fallback: it writes errors from a template once
        it was made."""
        if seq is not None:
            next_seq = itertools.repeat(seq).__next__
        elif next_seq is None:
            raise ValueError("build() needs seq or next_seq")
        elif event[0] == ERROR:
            if not self._admitted(event):
                return None
            if self._error_lines is not None:
                self._check_sources()
                number = next_seq()
                line = self._error_lines.line(event, number)
                if line is not None:
                    return ERROR, line
                next_seq = itertools.repeat(number).__next__
        lines, failures = self.build_many((event,), next_seq, shape=False)
        if failures:
            raise failures[0]
        return lines[0] if lines else None

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
            b',"producer_id":%s,"run_id":%s,%s"seq":'
            % (common["producer_id"], common["run_id"], self._sample_rate_json(METRIC)),
            b',"stage":%s,"timestamp":' % common["stage"],
            b',"value":',
        )

    def _sample_rate_json(self, kind: str) -> bytes:
        """The ``sample_rate`` field and its comma, for records of ``kind`` when sampled."""
        sampled = self._metric_sampler if kind == METRIC else self._error_sampler
        if sampled is None:
            return b""
        return b'"sample_rate":%s,' % orjson.dumps(sampled.rate)

    def compiled_writer(self) -> Any | None:
        """The compiled writer of metric lines (``_build.MetricWriter``), when it was built and
        not turned off by ``DXTRACK_PURE_PYTHON`` (nor needless: ``before_send`` needs every
        record as a dict); it gives the same bytes as ``build_many``."""
        if _build is None or not compiled_allowed() or self._before_send is not None:
            return None
        try:
            return self.make_writer()
        except Exception:  # default metadata orjson refuses: the pure-Python builder copes
            return None

    def make_writer(self) -> Any:
        """A new compiled writer of this builder's metric lines; from then on ``build`` writes
        errors from a template too."""
        self._error_lines = ErrorLines(
            self.common_json(),
            self._defaults,
            self._max_line_bytes,
            scrub=self._scrub,
            clean=self._clean,
            sample_rate=self._sample_rate_json(ERROR),
            frames_key=_build.frames_key,
        )
        scrubber = self._scrubber
        writer = _build.MetricWriter(
            parts=self.template(),
            defaults=self._defaults,
            dumps=orjson.dumps,
            default=jsonsafe.readable,
            option=jsonsafe.OPTIONS,
            metric_kind=METRIC,
            max_line=self._max_line_bytes,
            sample_rate=self._metric_rate,
            scrub=None if scrubber is None else scrubber.metadata,
            known_keys=None if scrubber is None else scrubber.known,
            seed=int.from_bytes(os.urandom(8), "little"),
        )
        shaped = self._error_sampler is not None or self.limiter is not None
        writer.take_errors(
            ERROR,
            self._error_lines.template,
            self._error_lines.kept,
            self.check_sources_now,
            self.admit_error if shaped else None,
        )
        return writer
