from collections import deque
from collections.abc import Callable, Iterator
from typing import Any

class MetricWriter:
    """Writes the JSON lines of metric events from a template; see ``_build.c``."""

    def __new__(
        cls,
        parts: tuple[bytes, bytes, bytes, bytes, bytes],
        defaults: dict[str, Any],
        dumps: Callable[..., bytes],
        default: Callable[[Any], Any],
        option: int,
        metric_kind: str,
        max_line: int,
        sample_rate: float = 1.0,
        scrub: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
        known_keys: dict[Any, bool] | None = None,
        seed: int = 0,
    ) -> MetricWriter: ...
    def build(
        self,
        buffer: deque[Any],
        count: int,
        next_seq: Callable[[], int] | Iterator[int],
        fallback: Callable[
            [tuple[Any, ...], int | None, Callable[[], int]], tuple[str, bytes] | None
        ],
        metric_lines: list[bytes],
        other_lines: list[tuple[str, bytes]],
        failures: list[Exception],
    ) -> None: ...
    def take_sampled_out(self) -> int: ...
    def take_errors(
        self,
        kind: str,
        parts: tuple[bytes, bytes, bytes, bytes],
        kept: dict[tuple[Any, str, int], tuple[tuple[Any, ...], bytes, str]],
        prepare: Callable[[], object],
        admit: Callable[[str, tuple[Any, ...]], bool] | None = None,
    ) -> None: ...

def frames_key(frames: tuple[Any, ...]) -> int: ...
def same_frames(a: tuple[Any, ...], b: tuple[Any, ...], /) -> bool: ...
def join_groups(lines: list[bytes], limit: int, /) -> list[tuple[bytes, int]]: ...

class Sequence:
    """Numbers from ``start``, as ``itertools.count``; the writer reads it directly."""

    def __new__(cls, start: int = 1) -> Sequence: ...
    def __iter__(self) -> Sequence: ...
    def __next__(self) -> int: ...
