"""Packing JSON lines into items, and items into calls, within a sink's limits."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from dxtrack.sinks.base import Limits


@dataclass
class Item:
    """One unit a sink sends: one or more whole JSON lines."""

    data: bytes
    lines: int
    first_try: float = 0.0
    """When it was first sent (0 until then); the retry budget counts from here."""
    ticket: ReplayTicket | None = field(default=None, repr=False)


@dataclass
class ReplayTicket:
    """Tracks the items read from one spool segment until each is delivered or spooled again."""

    outstanding: int
    failed: bool = False


def pack(lines: Iterable[bytes], limits: Limits, ticket: ReplayTicket | None = None) -> list[Item]:
    """Join ``lines`` into items of at most ``limits.max_item_bytes`` (one line an item without
    ``pack_lines``). Every line already fits one item: the record builder shortens larger ones."""
    if not limits.pack_lines:
        return [Item(line, 1, ticket=ticket) for line in lines]
    items: list[Item] = []
    chunk: list[bytes] = []
    size = 0
    limit = limits.max_item_bytes
    for line in lines:
        if size + len(line) > limit and chunk:
            items.append(Item(b"".join(chunk), len(chunk), ticket=ticket))
            chunk, size = [], 0
        chunk.append(line)
        size += len(line)
    if chunk:
        items.append(Item(b"".join(chunk), len(chunk), ticket=ticket))
    return items


def calls(items: Sequence[Item], limits: Limits) -> Iterator[list[Item]]:
    """Group ``items`` in order into calls of at most ``max_items_per_call`` and
    ``max_call_bytes``."""
    call: list[Item] = []
    size = 0
    for item in items:
        if call and (
            len(call) >= limits.max_items_per_call or size + len(item.data) > limits.max_call_bytes
        ):
            yield call
            call, size = [], 0
        call.append(item)
        size += len(item.data)
    if call:
        yield call
