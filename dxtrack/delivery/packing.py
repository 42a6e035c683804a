"""Packing JSON lines into items, and items into calls, within a sink's limits."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

from dxtrack.environment_variables import compiled_allowed
from dxtrack.sinks.base import Limits

try:
    from dxtrack import _build
except ImportError:  # installed without a C compiler: the pure-Python packing below
    _build = None  # type: ignore[assignment]

if TYPE_CHECKING:
    from dxtrack.delivery.compression import Codec
    from dxtrack.delivery.segments import Claim

COMPRESSED_GROUP: Final = 4
"""With a codec, an item holds up to this many times the item limit of lines before compression
(split again in the rare case that they compress to more than the limit)."""
CALL_RECORD_BYTES: Final = 16 * 1024 * 1024
"""With a codec, a call holds at most this much of records before compression: a slow call's
insurance segment is read whole to be replayed (``spool.SEGMENT_RECORD_BYTES``)."""


@dataclass(eq=False)
class Item:
    """One unit a sink sends: one or more whole JSON lines."""

    data: bytes
    lines: int
    born: float = 0.0
    """When it joined its route (``time.monotonic()``); it goes to disk once it has waited
    ``SPILL_AFTER`` seconds without being accepted."""
    claim: Claim | None = field(default=None, repr=False)
    """The spool segment it was read from, for items being replayed (they are on disk)."""
    first_line: int = 0
    """The index of its first line in ``claim``."""
    codec: Codec | None = field(default=None, repr=False)
    """What ``data`` is compressed with (None: plain JSON lines)."""
    plain_size: int = 0
    """With a codec, the size of its lines before compression."""

    def plain(self) -> bytes:
        """Its JSON lines, uncompressed."""
        return self.data if self.codec is None else self.codec.decompress(self.data)


def pack(
    lines: Sequence[bytes],
    limits: Limits,
    born: float = 0.0,
    claim: Claim | None = None,
    max_bytes: int | None = None,
) -> list[Item]:
    """Join ``lines`` into items of at most ``limits.max_item_bytes`` (or ``max_bytes``, when
    smaller; one line an item without ``pack_lines``), compressed with ``limits.codec``. Every
    line already fits one item: the record builder shortens larger ones."""
    if not limits.pack_lines:
        return [Item(line, 1, born, claim=claim, first_line=i) for i, line in enumerate(lines)]
    limit = limits.max_item_bytes if max_bytes is None else min(max_bytes, limits.max_item_bytes)
    codec = limits.codec
    # a replay's items (``max_bytes``) hold at most that much of records, compressed or not
    group = limit if codec is None or max_bytes is not None else limit * COMPRESSED_GROUP
    items: list[Item] = []
    start = 0
    for data, count in _joined_groups(lines, group):
        if codec is None:
            items.append(Item(data, count, born, claim, start))
        else:
            items.extend(_compressed(lines, start, start + count, limit, codec, born, claim, data))
        start += count
    return items


def _joined_groups(lines: Sequence[bytes], limit: int) -> list[tuple[bytes, int]]:
    """Runs of lines of at most ``limit`` bytes (or one line), each joined, with its count: in
    one compiled pass when there is one (``_build.join_groups``), else in Python."""
    if _build is not None and lines.__class__ is list and compiled_allowed():
        return _build.join_groups(lines, limit)
    return [(b"".join(lines[start:end]), end - start) for start, end in _groups(lines, limit)]


def _groups(lines: Sequence[bytes], limit: int) -> Iterator[tuple[int, int]]:
    """``(start, end)`` of runs of lines of at most ``limit`` bytes (or one line)."""
    start = 0
    size = 0
    for i, line in enumerate(lines):
        if size + len(line) > limit and i > start:
            yield start, i
            start, size = i, 0
        size += len(line)
    if start < len(lines):
        yield start, len(lines)


def _compressed(
    lines: Sequence[bytes],
    start: int,
    end: int,
    limit: int,
    codec: Codec,
    born: float,
    claim: Claim | None,
    joined: bytes | None = None,
) -> list[Item]:
    """``lines[start:end]`` (``joined``, when given) as compressed items of at most ``limit``
    bytes each."""
    joined = b"".join(lines[start:end]) if joined is None else joined
    data = codec.compress(joined)
    if len(data) <= limit or end - start == 1:  # one line always fits once compressed
        return [Item(data, end - start, born, claim, start, codec, len(joined))]
    middle = (start + end) // 2
    return _compressed(lines, start, middle, limit, codec, born, claim) + _compressed(
        lines, middle, end, limit, codec, born, claim
    )


def calls(
    items: Iterable[Item], limits: Limits, max_bytes: int | None = None
) -> Iterator[list[Item]]:
    """Group ``items`` in order into calls of at most ``max_items_per_call`` and
    ``max_call_bytes`` (or ``max_bytes``, when smaller), and ``CALL_RECORD_BYTES`` of records
    before compression."""
    call: list[Item] = []
    size = records = 0
    limit = limits.max_call_bytes if max_bytes is None else min(max_bytes, limits.max_call_bytes)
    for item in items:
        full = len(call) >= limits.max_items_per_call or size + len(item.data) > limit
        if call and (full or records + item.plain_size > CALL_RECORD_BYTES):
            yield call
            call, size, records = [], 0, 0
        call.append(item)
        size += len(item.data)
        records += item.plain_size
    if call:
        yield call
