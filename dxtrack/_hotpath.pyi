from collections import deque
from collections.abc import Callable
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
    def route(self, buffer: deque[Any] | None, limit: int) -> None: ...
