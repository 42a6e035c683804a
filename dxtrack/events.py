"""What the caller's thread captures: flat events, and how to take them out of a buffer.

An event is a tuple of ``EVENT_WIDTH`` fields:

- ``(METRIC, time, metric_name, value, metadata | None, timestamp | None)``
- ``(ERROR, time, exc_type | None, exc_value | None, traceback | None, metadata | None)``

Buffers hold events flat: each event's fields are appended with one ``deque.extend``, which is
atomic under the GIL, so no per-event container is kept. A tuple holding a metadata dict stays
tracked by the garbage collector, and thousands of them waiting in a buffer would make the
collector walk the host's whole heap again and again.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from typing import Any

ERROR = "error"
METRIC = "metric"
KINDS = (ERROR, METRIC)
EVENT_WIDTH = 6

Event = tuple[Any, ...]


def iter_events(buffer: deque[Any], limit: int | None = None) -> Iterator[Event]:
    """Pop up to ``limit`` whole events from a flat buffer, one at a time. Only one thread may
    pop at a time; any number may append (each event with one ``extend``)."""
    count = len(buffer) // EVENT_WIDTH
    if limit is not None:
        count = min(count, limit)
    popleft = buffer.popleft
    for _ in range(count):
        yield (popleft(), popleft(), popleft(), popleft(), popleft(), popleft())


def pop_events(buffer: deque[Any], limit: int | None = None) -> list[Event]:
    """Pop up to ``limit`` whole events from a flat buffer, as a list."""
    return list(iter_events(buffer, limit))
