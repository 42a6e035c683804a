from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

class Entry:
    """The compiled caller's side of ``metric()`` or ``error()``; see ``_hotpath.c``."""

    limit: int
    __wrapped__: Callable[..., None]
    def __new__(
        cls,
        fallback: Callable[..., None],
        kind: str,
        clock_namespace: dict[str, Any],
        clock_name: str,
    ) -> Entry: ...
    def __call__(self, *args: Any, **kwargs: Any) -> None: ...
    def route(self, buffer: EventBuffer | deque[Any] | None, limit: int) -> None: ...

class EventBuffer:
    """The capture buffer: events in slots, shown as a flat deque of fields (``events.py``)."""

    def __len__(self) -> int: ...
    def __getitem__(self, index: int) -> Any: ...
    def extend(self, event: Sequence[Any]) -> None: ...
    def popleft(self) -> Any: ...
    def clear(self) -> None: ...
