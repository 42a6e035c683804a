"""What the caller's thread captures: flat events, and how to take them out of a buffer.

An event is a tuple of ``EVENT_WIDTH`` fields:

- ``(METRIC, time, metric_name, value, metadata | None, timestamp | None)``
- ``(ERROR, time, exc_type | None, exc_value | None, traceback | None, metadata | None)``

Buffers hold events flat: each event's fields are appended with one ``extend``, which is
atomic under the GIL, so no per-event container is kept. A tuple holding a metadata dict stays
tracked by the garbage collector, and thousands of them waiting in a buffer would make the
collector walk the host's whole heap again and again.

A buffer is a ``deque``, or with the compiled caller a ``_hotpath.EventBuffer``: it keeps each
event in a slot of a ring, and shows the same flat fields (``len()``, ``extend(event)``,
``popleft()``, ``buffer[i]``), so that the compiled caller fills a slot without making a tuple,
and the compiled writer takes whole events out without a call per field.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Sequence
from itertools import islice
from typing import Any, Protocol

from dxtrack.environment_variables import compiled_allowed

try:  # the compiled capture buffer, when it was built at install
    from dxtrack._hotpath import EventBuffer
except ImportError:  # pragma: no cover - buffers are deques then
    EventBuffer = None  # type: ignore[assignment,misc]

ERROR = "error"
METRIC = "metric"
KINDS = (ERROR, METRIC)
EVENT_WIDTH = 6

Event = tuple[Any, ...]

_NEVER = object()  # no field is this: iter(popleft, _NEVER) never stops by itself


class FlatBuffer(Protocol):
    """What a capture buffer offers: a ``deque`` or an ``EventBuffer``."""

    def __len__(self) -> int: ...
    def __getitem__(self, index: int, /) -> Any: ...
    def extend(self, event: Sequence[Any], /) -> None: ...
    def popleft(self) -> Any: ...


def new_buffer() -> FlatBuffer:
    """An empty capture buffer: an ``EventBuffer`` when the compiled caller may be used."""
    if EventBuffer is not None and compiled_allowed():
        return EventBuffer()
    return deque()


def iter_events(buffer: FlatBuffer, limit: int | None = None) -> Iterator[Event]:
    """Pop up to ``limit`` whole events from a flat buffer, one at a time. Only one thread may
    pop at a time; any number may append (each event with one ``extend``)."""
    count = len(buffer) // EVENT_WIDTH
    if limit is not None:
        count = min(count, limit)
    # Each event in one call into C, which runs no bytecode between its fields: a signal
    # handler that raises can't cut an event in two.
    pop_event = getattr(buffer, "pop_event", None)
    if pop_event is not None:  # an EventBuffer
        for _ in range(count):
            yield pop_event()
        return
    fields = iter(buffer.popleft, _NEVER)  # a deque: popleft() called from C, six at a time
    for _ in range(count):
        yield tuple(islice(fields, EVENT_WIDTH))


def pop_events(buffer: FlatBuffer, limit: int | None = None) -> list[Event]:
    """Pop up to ``limit`` whole events from a flat buffer, as a list."""
    return list(iter_events(buffer, limit))
