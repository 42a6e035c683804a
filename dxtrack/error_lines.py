"""The JSON line of an error event from a template, beside the compiled writer of metrics.

A record's keys are fixed and sorted, and the same error raised in a loop has the same type,
text and frames, so the JSON of its ``exception`` and ``fingerprint`` is made once and kept.
``line`` gives the bytes ``RecordBuilder.build_many`` gives (the tests compare them), or None
for anything unusual (chained exceptions, values orjson refuses, a line past the size limit),
which the builder then does.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

import orjson
from xxhash import xxh3_128_hexdigest

from dxtrack import jsonsafe, tracebacks
from dxtrack.capture import ERROR_CALL
from dxtrack.events import Event

MAX_KEPT: Final = 1_024
"""Distinct errors whose JSON is kept."""


def nested_json(metadata: Mapping[str, Any]) -> bytes:
    """Metadata's JSON as orjson writes it one level down in a record (its depth limit counts
    from the record)."""
    return orjson.dumps([metadata], default=jsonsafe.readable, option=jsonsafe.OPTIONS)[1:-1]


class ErrorLines:
    """Writes the lines of error events of one configuration."""

    def __init__(
        self,
        json: Mapping[str, bytes],
        defaults: dict[str, Any],
        max_line_bytes: int,
        *,
        scrub: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
        clean: Callable[[str], str] = str,
        sample_rate: bytes = b"",
        frames_key: Callable[[tracebacks.Frames], int] | None = None,
    ) -> None:
        self._head = b'{"context":%s,"exception":' % json["context"]
        self._host = b',"host":%s,"log":null,"metadata":' % json["host"]
        self._ids = b',"producer_id":%s,"run_id":%s,%s"seq":' % (
            json["producer_id"],
            json["run_id"],
            sample_rate,
        )
        self._stage = b',"stage":%s,"suppressed":0,"timestamp":' % json["stage"]
        self._scrub = scrub
        self._clean = clean
        self._defaults = defaults
        self._defaults_json = nested_json(defaults)
        self._max_line_bytes = max_line_bytes
        self._kept: dict[tuple[Any, str, int], tuple[tracebacks.Frames, bytes, str]] = {}
        self._generation = tracebacks.generation
        # the compiled writer looks errors up with its own key: the same function makes them
        self._frames_key = frames_key or tracebacks.frames_key
        self._last: tuple[dict[str, Any] | None, bytes] = (None, b"")

    def line(self, event: Event, seq: int) -> bytes | None:
        """The finished line of an error event, or None when the builder must make it."""
        _, now, exc_type, text, trace, metadata = event
        if exc_type is None or trace.__class__ is not tuple or now.__class__ is not float:
            return None
        try:
            exception = self._exception(exc_type, text, trace)
            metadata_json = self._metadata_json(metadata)
            parts = (self._head, exception, self._host, metadata_json, self._ids)
            body = b"".join((*parts, b"%d" % seq, self._stage, orjson.dumps(now), b"}"))
        except (TypeError, ValueError):  # orjson refused something: the builder copes
            return None
        if len(body) > self._max_line_bytes:
            return None
        digest = xxh3_128_hexdigest(body).encode()
        return b"".join((body[:-1], b',"id":"', digest, b'"}\n'))

    def _metadata_json(self, metadata: dict[str, Any] | None) -> bytes:
        """The merged, scrubbed metadata's JSON. A captured metadata dict is a copy nothing
        changes, and calls with equal plain metadata share one (``_hotpath.c``): the same dict
        as the last one has the same JSON."""
        if not metadata:
            return self._defaults_json
        last_metadata, last_json = self._last
        if metadata is last_metadata:
            return last_json
        own = metadata if self._scrub is None else self._scrub(metadata)
        json = nested_json({**self._defaults, **own} if self._defaults else own)
        self._last = (metadata, json)  # one store: the pair stays a pair
        return json

    @property
    def template(self) -> tuple[bytes, bytes, bytes, bytes]:
        """The line around its exception, metadata, seq and timestamp, for the compiled writer
        (``_build.MetricWriter.take_errors``), which writes the errors whose JSON is kept."""
        return self._head, self._host, self._ids, self._stage

    @property
    def kept(self) -> dict[tuple[Any, str, int], tuple[tracebacks.Frames, bytes, str]]:
        """The JSON of each error seen: ``(type, text, frames_key) -> (frames, JSON,
        fingerprint)``."""
        return self._kept

    def forget_stale(self) -> None:
        """Forget the JSON kept when a source file it shows changed (it is read again)."""
        if self._generation != tracebacks.generation:
            self._kept.clear()
            self._generation = tracebacks.generation

    def _exception(self, exc_type: Any, text: str, trace: tracebacks.Frames) -> bytes:
        """The JSON of ``"exception"`` and ``"fingerprint"`` (between them, the separator)."""
        self.forget_stale()
        key = (exc_type, text, self._frames_key(trace))
        found = self._kept.get(key)
        if found is None or not tracebacks.same_frames(found[0], trace):
            name = tracebacks.type_name(exc_type)
            printed, fingerprint = tracebacks.describe(exc_type, text, trace)
            exception = orjson.dumps(
                {
                    "handled": True,
                    "mechanism": ERROR_CALL,
                    "traceback": self._clean(printed),
                    "type": name,
                    "value": self._clean(text),
                }
            )
            if len(self._kept) >= MAX_KEPT:
                self._kept.clear()
            json = b'%s,"fingerprint":%s' % (exception, orjson.dumps(fingerprint))
            found = (trace, json, fingerprint)
            self._kept[key] = found
        return found[1]
