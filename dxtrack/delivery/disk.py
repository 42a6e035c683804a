"""Where a route's records go when its sink has not taken them: the spool, or, for a sink
without one (or a spool that can't take them now), the drop counters, by reason."""

from __future__ import annotations

import logging

from dxtrack.counters import Counters
from dxtrack.delivery.attempts import lines_of
from dxtrack.delivery.packing import Item
from dxtrack.delivery.segments import Claim
from dxtrack.delivery.spool import Spool
from dxtrack.log import LogOnce


class Disk:
    """A route's way to disk."""

    def __init__(self, name: str, spool: Spool | None, stats: Counters, log_once: LogOnce) -> None:
        self.name = name
        self.spool = spool
        self.stats = stats
        self._log_once = log_once

    def spill(self, items: list[Item], reason: str) -> None:
        """To disk when the spool can take them, else dropped and counted under ``reason``."""
        if not items:
            return
        if self.spool is not None and self.spool.available():
            self.write(items)
        else:
            self.drop(items, reason)

    def write(self, items: list[Item]) -> None:
        """Append ``items`` to the spool (what the disk refuses, it counts)."""
        spool = self.spool
        assert spool is not None
        for item in items:
            if self._as_spooled(item):
                spool.append(item.data, item.lines, plain_size=item.plain_size)
            else:
                spool.append(item.plain(), item.lines)

    def insure(self, items: list[Item]) -> Claim | None:
        """Write the items of a call that is taking long to a segment of their own, kept
        claimed (``Spool.write_claimed``); None when the disk can't take them."""
        assert self.spool is not None
        members = [item.data for item in items]
        units = [item.plain() for item in items]  # what a put-back writes, if it comes to that
        as_they_are = all(self._as_spooled(item) for item in items)
        return self.spool.write_claimed(units, lines_of(items), members if as_they_are else None)

    def _as_spooled(self, item: Item) -> bool:
        """Whether ``item`` is compressed as the spool compresses (and knows its size before
        that): then written as it is."""
        codec = None if self.spool is None else self.spool.codec
        same = codec is not None and item.codec is not None and item.codec.name == codec.name
        return same and item.plain_size > 0

    def drop(self, items: list[Item], reason: str) -> None:
        """Count ``items`` as dropped for ``reason``, and say so once."""
        lines = lines_of(items)
        if not lines:
            return
        self.stats.drop(f"{reason}:{self.name}", lines)
        self._log_once(
            f"drop:{self.name}:{reason}",
            logging.WARNING,
            "dxtrack: %s could not take %d record(s) (%s); they were dropped and counted",
            self.name,
            lines,
            reason,
        )
