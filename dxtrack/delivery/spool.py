"""A disk spool of JSON lines that a sink has not accepted, replayed until it does.

One directory per destination, opened safely (``private_dir``). Each writer appends to segment
files of its own, ``seg-<time>-<pid>-<writer>-<n>.jsonl`` (mode 0600; see ``segments``), or with
a codec ``.jsonl.gz``/``.jsonl.zst``, an append a gzip member or zstd frame. A replayer claims a
segment by locking it; when it is done the segment is deleted (all delivered), rewritten in
place with the lines still undelivered, or left as it was: a segment is put back, never copied.
Past ``max_bytes`` on disk, or when the disk fails, records are dropped and counted by reason,
and a failing disk is tried again only ``RETRY_DISK_AFTER`` seconds later.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path

from dxtrack.counters import Counters
from dxtrack.delivery import segments
from dxtrack.delivery.compressed_segments import SUFFIXES
from dxtrack.delivery.compression import Codec
from dxtrack.delivery.packing import CALL_RECORD_BYTES
from dxtrack.delivery.private_dir import UnsafeDirectory, open_private_dir
from dxtrack.delivery.segments import Block, Claim
from dxtrack.log import LogOnce

SEGMENT_BYTES = 4 * 1024 * 1024
"""A segment is closed at this size: small enough to replay without crowding memory ..."""
SEGMENT_RECORD_BYTES = CALL_RECORD_BYTES
"""... or once it holds this much of records, compressed (a replay holds them in memory)."""
SYNC_EVERY = 0.5
"""Seconds between ``fsync`` calls of the open segment, as Vector's disk buffer does."""
RETRY_DISK_AFTER = 5.0
"""After a failed write, seconds before the spool is tried again."""


class Changes:
    """A count of the times lines were added to, or put back in, one spool directory, shared by
    every ``Spool`` of the process on that directory (a replay looks again when it moved)."""

    def __init__(self) -> None:
        self.count = 0

    def bump(self) -> None:
        """Lines were written."""
        self.count += 1


_changes: dict[str, Changes] = {}


class Spool:
    """Lines that could not be delivered, kept on disk for one destination, in ``directory``
    (``<spool_dir>/<destination>``: neither may be a symbolic link)."""

    def __init__(
        self,
        directory: Path,
        stats: Counters,
        log_once: LogOnce,
        max_bytes: int = 1 << 30,
        codec: Codec | None = None,
    ) -> None:
        self.directory = directory
        self.codec = codec
        """What new segments are compressed with (None: plain lines)."""
        self._suffix = SUFFIXES["none" if codec is None else codec.name]
        self.changes = _changes.setdefault(str(directory), Changes())
        self.max_bytes = max_bytes
        """Past this many bytes on disk, new records are dropped and counted (a full disk)."""
        self._stats = stats
        self._log_once = log_once
        self._lock = threading.Lock()
        self._claims_lock = threading.Lock()
        self._dir_fd: int | None = None
        self._refused = False
        self._closed = False
        self._measured_at = 0.0
        self._size = 0
        self._fd: int | None = None
        self._name = ""
        self._written = self._records_written = 0
        self._synced_at = 0.0
        self._dirty = False
        self._failed_at = -RETRY_DISK_AFTER
        self._writer = os.urandom(4).hex()
        self._segments = 0
        self._own: dict[str, int] = {}
        self._unreadable: set[tuple[str, int]] = set()
        self.own_only = False
        """In a forked child: replay only what this process spooled, never the parent's."""

    # ---- the directory -----------------------------------------------------------------------

    def available(self) -> bool:
        """Whether the spool can take lines now: a safe directory, a disk that worked lately."""
        if self._dir_fd is None and not self._refused:
            with self._lock:
                self._open_directory()
        return self._dir_fd is not None and time.monotonic() - self._failed_at >= RETRY_DISK_AFTER

    def _open_directory(self) -> None:
        if self._dir_fd is not None or self._refused:
            return
        try:
            self._dir_fd = open_private_dir(self.directory, private_depth=2)
        except (UnsafeDirectory, OSError) as exc:
            self._refused = True
            self._log_once(
                f"spool-refused:{exc}",
                logging.ERROR,
                "dxtrack: refusing the spool directory: %s. Records that can't be delivered "
                "stay in memory (up to the pending bound) and are counted if dropped",
                exc,
            )
            return
        segments.sweep_leftovers(self._dir_fd)
        self._measure()

    def _measure(self) -> None:
        """Count the bytes on disk again (other processes write and replay here too)."""
        if self._dir_fd is not None:
            self._size = sum(size for _, size in segments.segment_files(self._dir_fd))
            self._measured_at = time.monotonic()

    # ---- writing ------------------------------------------------------------------------------

    def append(self, data: bytes, lines: int, *, plain_size: int = 0) -> int:
        """Append whole JSON lines (``plain_size``: a member or frame of the spool's codec, of
        that many bytes of them); return how many reached the disk, the rest counted by reason."""
        if not lines:
            return 0
        if plain_size == 0:
            plain_size = len(data)
            data = data if self.codec is None else self.codec.compress(data)
        with self._lock:
            written = self._append(data, lines, plain_size)
            if written:
                self._stats.add("spooled", written)
                self._own[self._name] = self._own.get(self._name, 0) + written
                self.changes.bump()
            return written

    def _append(self, data: bytes, lines: int, plain_size: int) -> int:
        self._open_directory()
        if self._dir_fd is None:
            self._stats.drop("spool_closed" if self._closed else "spool_refused", lines)
            return 0
        if self._size + len(data) > self.max_bytes and time.monotonic() - self._measured_at > 1:
            self._measure()  # other processes may have replayed and deleted segments
        if self._size + len(data) > self.max_bytes:
            self._stats.drop("spool_full", lines)
            self._log_once(
                f"spool-full:{self.directory}",
                logging.ERROR,
                "dxtrack: the spool in %s is full (max_spool_bytes=%d); records that can't be "
                "delivered are being dropped and counted",
                self.directory,
                self.max_bytes,
            )
            return 0
        try:
            full = self._records_written >= SEGMENT_RECORD_BYTES
            if self._fd is None or self._written >= SEGMENT_BYTES or full:
                self._close_segment()
                self._fd, self._name = self._create_segment()
                self._written = self._records_written = 0
            segments.write_all(self._fd, data)
        except OSError as exc:
            done = exc.done if isinstance(exc, segments.PartialWrite) else 0
            return self._partial_write(data, done, lines, exc)
        self._written += len(data)
        self._records_written += plain_size
        self._size += len(data)
        self._dirty = True
        self.sync(force=False)
        return lines

    def _partial_write(self, data: bytes, done: int, lines: int, exc: OSError) -> int:
        """Keep the whole lines that reached the disk, cut the torn one, count the rest (with a
        codec, the member or frame is cut whole: its lines are all counted)."""
        whole = data.rfind(b"\n", 0, done) + 1 if self.codec is None else 0
        if self._fd is not None and whole < done:
            try:
                os.ftruncate(self._fd, self._written + whole)
            except OSError:  # the torn tail is skipped and counted at replay: nothing after it
                whole = done
                self._records_written = SEGMENT_RECORD_BYTES
        written = data.count(b"\n", 0, whole) if self.codec is None else 0
        self._written += whole
        self._size += whole
        self._stats.drop("spool_write_failed", lines - written)
        self._disk_failed(exc)
        return written

    def _disk_failed(self, exc: OSError) -> None:
        self._failed_at = time.monotonic()
        self._log_once(
            f"spool-write:{self.directory}",
            logging.ERROR,
            "dxtrack: cannot write the spool in %s (%s); records that can't be delivered are "
            "being dropped and counted",
            self.directory,
            exc,
        )

    def _create_segment(self) -> tuple[int, str]:
        assert self._dir_fd is not None
        self._segments += 1
        stem = f"{time.time_ns():020d}-{os.getpid()}-{self._writer}-{self._segments:06d}"
        return segments.create_segment(self._dir_fd, stem, self._suffix)

    def sync(self, *, force: bool = True) -> None:
        """``fsync`` the open segment when it has unsynced lines (at most every
        ``SYNC_EVERY`` seconds unless ``force``)."""
        if self._fd is None or not self._dirty:
            return
        now = time.monotonic()
        if force or now - self._synced_at >= SYNC_EVERY:
            try:
                os.fsync(self._fd)
            except OSError as exc:
                self._disk_failed(exc)
            self._synced_at, self._dirty = now, False

    def _close_segment(self) -> None:
        if self._fd is not None:
            self.sync()
            fd, self._fd = self._fd, None
            os.close(fd)
            self.changes.bump()  # unlocked: a replayer can take it now

    def close_segment(self) -> None:
        """Close the open segment so that it can be replayed."""
        with self._lock:
            self._close_segment()

    def write_claimed(
        self, units: list[bytes], lines: int, members: list[bytes] | None = None
    ) -> Claim | None:
        """Write ``units`` (whole JSON lines, ``lines`` in all; ``members``: each of them in the
        spool's codec) as a segment kept claimed: the insurance of a call that is taking long,
        released like a replayed segment once it ends. None when the disk can't take them."""
        data = b"".join(units if members is None else members)
        if self.codec is not None and members is None:
            data = self.codec.compress(data)
        with self._lock:
            self._open_directory()
            if self._dir_fd is None or self._size + len(data) > self.max_bytes:
                return None
            fd, name = -1, ""
            try:
                fd, name = self._create_segment()
                segments.write_all(fd, data)
                os.fsync(fd)
            except OSError as exc:
                if fd >= 0:
                    os.close(fd)
                    segments.unlink(self._dir_fd, name)
                self._disk_failed(exc)
                return None
            self._size += len(data)
            self._own[name] = lines
            blocks: list[Block] = [(m, (i,)) for i, m in enumerate(members or ())]
            return Claim(name, fd, units, blocks=None if members is None else blocks)

    # ---- replaying ----------------------------------------------------------------------------

    def claim(self) -> Claim | None:
        """Lock and read the oldest segment that no writer or replayer holds."""
        with self._lock:
            self._open_directory()
        dir_fd = self._dir_fd
        if dir_fd is None:
            return None
        files = segments.segment_files(dir_fd)
        with self._lock:
            self._size = sum(size for _, size in files)
            self._measured_at = time.monotonic()
        for name, size in files:
            if (self.own_only and name not in self._own) or (name, size) in self._unreadable:
                continue
            try:
                found = segments.claim_segment(dir_fd, name)
            except segments.ForeignSegment as exc:
                self._unreadable.add((name, size))  # not read again while it stays the same
                self._log_once(
                    f"spool-foreign:{self.directory}/{name}",
                    logging.WARNING,
                    "dxtrack: not replaying %s/%s: %s",
                    self.directory,
                    name,
                    exc,
                )
                continue
            if found is None:
                continue
            if found.bad:
                self._stats.drop("spool_corrupt", found.bad)
                self._log_once(
                    f"spool-corrupt:{self.directory}/{name}",
                    logging.WARNING,
                    "dxtrack: skipped %d torn or corrupt line(s) in spool segment %s/%s",
                    found.bad,
                    self.directory,
                    name,
                )
            return found
        return None

    def checkpoint(self, claim: Claim) -> None:
        """Write what a replay has delivered so far to disk (the segment keeps only the rest,
        still claimed), so that a crash now sends none of it again."""
        with self._claims_lock:
            done = len(claim.delivered)
            if not claim.released and claim.saved != done < len(claim.lines):
                self._write_back(claim, keep_lock=True)

    def release(self, claim: Claim) -> None:
        """Delete the segment when every unit was delivered, else put the undelivered ones back
        in its place; then unlock it."""
        with self._claims_lock:
            claim.released = True
            try:
                self._write_back(claim, keep_lock=False)
            finally:
                os.close(claim.fd)
            if len(claim.delivered) < len(claim.lines):
                self.changes.bump()  # back for a later replay

    def _write_back(self, claim: Claim, *, keep_lock: bool) -> None:
        dir_fd = self._dir_fd
        if dir_fd is None:
            return
        left = [unit for i, unit in enumerate(claim.lines) if i not in claim.delivered]
        before = after = segments.fd_size(claim.fd)
        try:
            if not left:
                os.unlink(claim.name, dir_fd=dir_fd)
                after = 0
            elif len(claim.delivered) != claim.saved or claim.rewrite:
                after = segments.put_back(dir_fd, claim, keep_lock=keep_lock)
                claim.saved, claim.rewrite = len(claim.delivered), False
        except OSError as exc:
            self._log_once(
                f"spool-release:{self.directory}",
                logging.ERROR,
                "dxtrack: could not update spool segment %s/%s: %s; its lines may be sent again",
                self.directory,
                claim.name,
                exc,
            )
            return
        with self._lock:
            self._size = max(self._size - before + after, 0)
            if claim.name in self._own:
                if left:
                    self._own[claim.name] = sum(unit.count(b"\n") for unit in left)
                else:
                    del self._own[claim.name]

    def unreplayed(self) -> int:
        """Lines this process spooled that are still on disk, waiting for a replay."""
        with self._lock:
            own = dict(self._own)
        dir_fd = self._dir_fd
        if not own or dir_fd is None:
            return 0
        gone = [name for name in own if not segments.exists(dir_fd, name)]
        with self._lock:
            for name in gone:
                self._own.pop(name, None)
        return sum(lines for name, lines in own.items() if name not in gone)

    # ---- process lifecycle -------------------------------------------------------------------

    def close(self) -> None:
        """Sync and close the open segment and the directory, for good (at shutdown, once no
        sender uses the spool)."""
        with self._lock:
            self._close_segment()
            self._refused = self._closed = True  # nothing reopens it
            if self._dir_fd is not None:
                os.close(self._dir_fd)
                self._dir_fd = None

    def reset_after_fork(self) -> None:
        """In a forked child: forget the parent's open segment (the parent keeps its lock), and
        replay only what this process will spool itself."""
        if self._fd is not None:
            os.close(self._fd)
        self._fd = None
        self._lock = threading.Lock()
        self._claims_lock = threading.Lock()
        self._writer = os.urandom(4).hex()
        self._segments = 0
        self._own = {}
        self.own_only = True
