"""Stage ``test``: records appended to local JSON Lines files, one file per record kind."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from dxtrack.sinks.base import Limits, PermanentSendError

_UNLIMITED = Limits(
    max_item_bytes=1 << 62, max_items_per_call=1 << 30, max_call_bytes=1 << 62, pack_lines=True
)


class JsonlFileSink:
    """Appends lines to ``<directory>/<kind>.jsonl``; the file is opened for each write, so a test
    that deletes the directory gets a fresh file instead of writes into a deleted one."""

    limits = _UNLIMITED
    durable = False

    def __init__(self, directory: Path, kind: str) -> None:
        self.path = directory / f"{kind}.jsonl"
        self.name = f"file:{self.path}"
        self.destination = self.name
        self.kinds = frozenset((kind,))

    def start(self) -> None:
        """Nothing to prepare."""

    def send(self, items: Sequence[bytes]) -> Sequence[int]:
        """Append ``items`` with one ``write`` to a file opened with ``O_APPEND``."""
        data = b"".join(items)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
            finally:
                os.close(fd)
        except OSError as exc:
            raise PermanentSendError(f"cannot write {self.path}: {exc}") from exc
        return ()

    def close(self) -> None:
        """Nothing is held open between writes."""
