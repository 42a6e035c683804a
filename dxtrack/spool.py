"""A disk spool of JSON lines that a sink could not take, replayed on a later start.

Each writer appends to segment files of its own, ``seg-<pid>-<random>-<n>.jsonl`` (mode 0600), and
holds an exclusive ``flock`` on the open segment. A replayer takes only segments it can lock, so a
live writer's segment is never read half-written, and two replayers never share a segment. A
segment is deleted only after everything read from it was delivered or spooled again.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import orjson

from dxtrack.counters import Counters
from dxtrack.log import LogOnce

SEGMENT_BYTES = 4 * 1024 * 1024
"""A segment is closed at this size: small enough to replay without crowding memory."""


@dataclass
class Segment:
    """A claimed segment: its lines, and the lock that keeps other replayers away."""

    path: Path
    lines: list[bytes]
    fd: int


class Spool:
    """Lines that could not be delivered, kept on disk for one destination."""

    def __init__(
        self, directory: Path, stats: Counters, log_once: LogOnce, max_bytes: int = 1 << 30
    ) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        """Past this many bytes on disk, new records are dropped (and counted), so that an
        outage can't fill the host's disk."""
        self._size: int | None = None  # bytes of segments on disk, counted at the first append
        self._stats = stats
        self._log_once = log_once
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._segment_name = ""
        self._written = 0
        self._segments = 0
        self._writer_id = os.urandom(4).hex()
        self._own: dict[str, int] = {}

    @property
    def unreplayed(self) -> int:
        """Lines this process spooled that no replay has delivered yet."""
        with self._lock:
            return sum(self._own.values())

    def append(self, data: bytes, lines: int) -> bool:
        """Append ``data`` (whole JSON lines); False, counted as dropped, when the disk fails."""
        if not data:
            return True
        with self._lock:
            if self._size is None:
                self._size = self._disk_size()
            if self._size + len(data) > self.max_bytes:
                self._stats.drop("spool_full", lines)
                self._log_once(
                    f"spool-full:{self.directory}",
                    logging.ERROR,
                    "dxtrack: the spool in %s is full (max_spool_bytes=%d); records that can't "
                    "be delivered are being dropped and counted",
                    self.directory,
                    self.max_bytes,
                )
                return False
            try:
                if self._fd is None or self._written >= SEGMENT_BYTES:
                    self._open_segment()
                assert self._fd is not None
                view = memoryview(data)
                while view:
                    view = view[os.write(self._fd, view) :]
                self._written += len(data)
                self._size += len(data)
            except OSError as exc:
                self._stats.drop("spool_write_failed", lines)
                self._log_once(
                    f"spool-write:{self.directory}",
                    logging.ERROR,
                    "dxtrack: cannot write the spool in %s (%s); records that can't be delivered "
                    "are being dropped and counted",
                    self.directory,
                    exc,
                )
                self._close_segment()
                return False
            self._stats.add("spooled", lines)
            self._own[self._segment_name] = self._own.get(self._segment_name, 0) + lines
            return True

    def _open_segment(self) -> None:
        self._close_segment()
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._segments += 1
        name = f"seg-{os.getpid()}-{self._writer_id}-{self._segments:06d}.jsonl"
        fd = os.open(self.directory / name, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        self._fd, self._written, self._segment_name = fd, 0, name

    def _close_segment(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            with contextlib.suppress(OSError):
                os.fsync(fd)
            os.close(fd)

    def close_segment(self) -> None:
        """Close the current segment so that it can be replayed."""
        with self._lock:
            self._close_segment()

    def claim(self) -> Segment | None:
        """Lock and read the oldest segment that no live writer or replayer holds."""
        try:
            paths = sorted(self.directory.glob("seg-*.jsonl"), key=_mtime)
        except OSError:
            return None
        for path in paths:
            try:
                fd = os.open(path, os.O_RDONLY)
            except OSError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                continue
            if not path.exists():  # replayed and deleted by another process meanwhile
                os.close(fd)
                continue
            try:
                data = _read_all(fd)
            except OSError:
                os.close(fd)
                continue
            return Segment(path, self._valid_lines(data, path), fd)
        return None

    def release(self, segment: Segment, *, delete: bool) -> None:
        """Delete ``segment`` (its lines were delivered or spooled again) or keep it, and unlock."""
        try:
            if delete:
                size = _file_size(segment.path)
                segment.path.unlink(missing_ok=True)
                with self._lock:
                    self._own.pop(segment.path.name, None)
                    if self._size is not None:
                        self._size = max(self._size - size, 0)
        finally:
            os.close(segment.fd)

    def _valid_lines(self, data: bytes, path: Path) -> list[bytes]:
        lines = data.split(b"\n")
        tail = lines.pop()  # b"" when the segment ends in a newline, else a torn write
        good: list[bytes] = []
        bad = 1 if tail else 0
        for line in lines:
            if not line:
                continue
            try:
                if isinstance(orjson.loads(line), dict):
                    good.append(line + b"\n")
                    continue
            except orjson.JSONDecodeError:
                pass
            bad += 1
        if bad:
            self._stats.drop("spool_corrupt", bad)
            self._log_once(
                f"spool-corrupt:{path}",
                logging.WARNING,
                "dxtrack: skipped %d torn or corrupt line(s) in spool segment %s",
                bad,
                path,
            )
        return good

    def _disk_size(self) -> int:
        try:
            return sum(_file_size(path) for path in self.directory.glob("seg-*.jsonl"))
        except OSError:
            return 0

    def reset_after_fork(self) -> None:
        """In a forked child: forget the parent's open segment and start segments of its own."""
        if self._fd is not None:
            os.close(self._fd)  # the parent's lock stays: it holds the same open file
        self._fd = None
        self._lock = threading.Lock()
        self._writer_id = os.urandom(4).hex()
        self._segments = 0
        self._own = {}


def _file_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def _read_all(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 1 << 20):
        chunks.append(chunk)
    return b"".join(chunks)
