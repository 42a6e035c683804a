"""``dxtrack tail``: the latest records, then (``-f``) each new one as it is written."""

from __future__ import annotations

import heapq
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson

from dxtrack.cli.sources import Source, codec_of, kind_of, open_lines

Record = dict[str, Any]


class Follower:
    """Reads what was added to a source's files since the last look: plain files from where it
    stopped (a file that shrank was replaced, and is read again from its start), compressed ones
    past the lines already read."""

    def __init__(self, source: Source, *, first_bytes: int | None = None) -> None:
        self.source = source
        self.first_bytes = first_bytes
        """On the first look at a plain file, read only about this many bytes from its end."""
        self._offsets: dict[Path, int] = {}
        self._lines_read: dict[Path, int] = {}
        self._partial: dict[Path, bytes] = {}

    def new_records(self) -> list[Record]:
        """The records written since the last call (all of them on the first), oldest first."""
        found: list[Record] = []
        for path in self.source.paths():
            found += self._read(path)
        found.sort(key=lambda r: (r.get("timestamp") or 0, r.get("seq") or 0))
        return found

    def _read(self, path: Path) -> list[Record]:
        try:
            with path.open("rb") as raw:
                codec = codec_of(raw.read(4))
                if codec != "none":
                    return self._read_compressed(path)
                size = raw.seek(0, 2)
                first = path not in self._offsets
                offset = self._offsets.get(path, 0)
                if size < offset:
                    offset = 0
                    self._partial.pop(path, None)
                if first and self.first_bytes is not None and size > self.first_bytes:
                    offset = size - self.first_bytes
                raw.seek(offset)
                data = self._partial.pop(path, b"") + raw.read(size - offset)
                self._offsets[path] = size
                if first and offset > 0:  # started inside a line: from the next one
                    data = data[data.find(b"\n") + 1 :] if b"\n" in data else b""
        except OSError:
            return []
        complete, _, rest = data.rpartition(b"\n")
        if rest:
            self._partial[path] = rest
        return list(_records(complete.split(b"\n")))

    def _read_compressed(self, path: Path) -> list[Record]:
        skip = self._lines_read.get(path, 0)
        lines: list[bytes] = []
        try:
            for number, line in enumerate(open_lines(path)):
                if number >= skip:
                    lines.append(line)
        except (OSError, EOFError, ValueError):
            pass  # a member still being written: what was whole is read
        self._lines_read[path] = skip + len(lines)
        return list(_records(lines))


def _records(lines: list[bytes]) -> Iterator[Record]:
    for line in lines:
        if not line.strip():
            continue
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        if isinstance(record, dict) and kind_of(record) is not None:
            yield record


def tail(
    source: Source,
    show: Callable[[Record], None],
    *,
    lines: int,
    follow: bool,
    interval: float = 0.5,
    stop: threading.Event | None = None,
) -> int:
    """Show the last ``lines`` records; with ``follow``, then each new one until ``stop`` is
    set. Returns how many records were shown."""
    follower = Follower(source, first_bytes=max(1 << 20, lines * 32768))
    latest = heapq.nlargest(
        lines, follower.new_records(), key=lambda r: (r.get("timestamp") or 0, r.get("seq") or 0)
    )
    shown = 0
    for record in reversed(latest):
        show(record)
        shown += 1
    stop = stop or threading.Event()
    while follow and not stop.wait(interval if not source.is_s3 else max(interval, 5.0)):
        for record in follower.new_records():
            show(record)
            shown += 1
    return shown
