"""Packing JSON lines into items, and items into calls, within a sink's limits."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from dxtrack.sinks.base import Limits

if TYPE_CHECKING:
    from dxtrack.delivery.segments import Claim


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


def pack(
    lines: Sequence[bytes],
    limits: Limits,
    born: float = 0.0,
    claim: Claim | None = None,
    max_bytes: int | None = None,
) -> list[Item]:
    """Join ``lines`` into items of at most ``limits.max_item_bytes`` (or ``max_bytes``, when
    smaller; one line an item without ``pack_lines``). Every line already fits one item: the
    record builder shortens larger ones."""
    if not limits.pack_lines:
        return [Item(line, 1, born, claim=claim, first_line=i) for i, line in enumerate(lines)]
    items: list[Item] = []
    start = 0
    size = 0
    limit = limits.max_item_bytes if max_bytes is None else min(max_bytes, limits.max_item_bytes)
    for i, line in enumerate(lines):
        if size + len(line) > limit and i > start:
            items.append(
                Item(b"".join(lines[start:i]), i - start, born, claim=claim, first_line=start)
            )
            start, size = i, 0
        size += len(line)
    if start < len(lines):
        items.append(
            Item(b"".join(lines[start:]), len(lines) - start, born, claim=claim, first_line=start)
        )
    return items


def calls(
    items: Iterable[Item], limits: Limits, max_bytes: int | None = None
) -> Iterator[list[Item]]:
    """Group ``items`` in order into calls of at most ``max_items_per_call`` and
    ``max_call_bytes`` (or ``max_bytes``, when smaller)."""
    call: list[Item] = []
    size = 0
    limit = limits.max_call_bytes if max_bytes is None else min(max_bytes, limits.max_call_bytes)
    for item in items:
        if call and (len(call) >= limits.max_items_per_call or size + len(item.data) > limit):
            yield call
            call, size = [], 0
        call.append(item)
        size += len(item.data)
    if call:
        yield call
