"""Spool segment files: creating, reading, putting back; no policy (that is ``spool``'s).

Every operation is relative to the spool directory's descriptor and never follows a symbolic
link. A segment holds plain JSON lines (``.jsonl``), or gzip members or zstd frames of them
(``.jsonl.gz``, ``.jsonl.zst``), as the spool's ``compression`` was when it was created; it is
read by its name's ending, whatever the spool's codec is now. A segment is created under a
hidden name, locked with ``flock``, and only then renamed into view, so no replayer can take a
segment that its writer still holds; it is put back by writing the lines left to a hidden file
and renaming that over it, so a crash leaves either the old segment or the new one, never a
mix.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import stat
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import orjson

from dxtrack.delivery import compressed_segments
from dxtrack.delivery.compression import Codec

OPEN_FLAGS = os.O_NOFOLLOW | os.O_CLOEXEC
LEFTOVER_SECONDS = 60.0
"""Hidden files older than this are what a crash left between creating and renaming: removed."""
MAX_RECORD_BYTES = 64 * 1024 * 1024
"""A compressed segment that holds more records than this is not read (the spool closes its
own at a quarter of it): it was not written by dxtrack."""
REWRITTEN_MEMBER_BYTES = 512 * 1024
"""A put-back compresses what is left of a partly delivered member again, in members of at most
this much of records (what a replay call sends), which the next put-back copies as they are."""

Block = tuple[bytes | None, Sequence[int]]
"""A member of a compressed segment: its bytes (None: to be compressed again), and the indices
of the claim's units it holds."""


@dataclass(eq=False)
class Claim:
    """A locked segment and its units (whole JSON lines, one or more each); ``delivered`` holds
    the indices of the units accepted."""

    name: str
    fd: int
    lines: list[bytes]
    delivered: set[int] = field(default_factory=set)
    rewrite: bool = False
    """Corrupt lines were skipped (``bad`` of them): write the segment back without them."""
    bad: int = 0
    saved: int = 0
    """How many delivered units the file on disk already leaves out."""
    released: bool = False
    blocks: list[Block] | None = None
    """A compressed segment's members: a put-back copies those with nothing delivered."""


class ForeignSegment(OSError):
    """A segment that is not a regular file of the current user: never replayed."""


def segment_files(dir_fd: int) -> list[tuple[str, int]]:
    """The segments in the directory, oldest first (names begin with their creation time), with
    their sizes."""
    try:
        names = sorted(os.listdir(dir_fd))
    except OSError:
        return []
    found = []
    for name in names:
        if is_segment(name):
            with contextlib.suppress(OSError):
                found.append((name, os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_size))
    return found


def is_segment(name: str) -> bool:
    """Whether ``name`` is a segment's: ``seg-<stem>`` and one of the endings."""
    return name.startswith("seg-") and name.endswith(tuple(compressed_segments.SUFFIXES.values()))


def sweep_leftovers(dir_fd: int) -> None:
    """Remove hidden files that a crash left behind (old enough that nobody is writing them)."""
    with contextlib.suppress(OSError):
        for name in os.listdir(dir_fd):
            if name.startswith((".new-", ".put-")):
                with contextlib.suppress(OSError):
                    info = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
                    if time.time() - info.st_mtime > LEFTOVER_SECONDS:
                        os.unlink(name, dir_fd=dir_fd)


def create_segment(dir_fd: int, stem: str, suffix: str = ".jsonl") -> tuple[int, str]:
    """A new, empty segment ``seg-<stem><suffix>``, locked before it appears under its name."""
    hidden, name = f".new-{stem}", f"seg-{stem}{suffix}"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | OPEN_FLAGS
    fd = os.open(hidden, flags, 0o600, dir_fd=dir_fd)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.rename(hidden, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except OSError:
        os.close(fd)
        unlink(dir_fd, hidden)
        raise
    return fd, name


def write_all(fd: int, data: bytes) -> int:
    """Write ``data``; on an error, raise ``PartialWrite`` saying how much reached the file."""
    view = memoryview(data)
    done = 0
    try:
        while done < len(data):
            done += os.write(fd, view[done:])
    except OSError as exc:
        raise PartialWrite(done, exc) from exc
    return done


class PartialWrite(OSError):
    """A write that failed after ``done`` bytes."""

    def __init__(self, done: int, cause: OSError) -> None:
        super().__init__(cause.errno, cause.strerror)
        self.done = done


def claim_segment(dir_fd: int, name: str) -> Claim | None:
    """Lock and read segment ``name``: its descriptor (holding the lock) and its whole lines;
    ``rewrite`` when torn or corrupt lines were skipped (``Claim.bad`` of them). None when
    another process holds it or it is gone; ``ForeignSegment`` when it is not this user's
    regular file, or can't be read."""
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NONBLOCK | OPEN_FLAGS, dir_fd=dir_fd)
    except OSError:
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ForeignSegment("not a regular file")
        if info.st_uid != os.geteuid():
            raise ForeignSegment(f"owned by uid {info.st_uid}, not this user")
        codec = codec_of_segment(name)  # before reading it all, when it can't be decoded
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        now = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        if (now.st_ino, now.st_dev) != (info.st_ino, info.st_dev):
            os.close(fd)  # put back or deleted by another replayer meanwhile
            return None
        lines, bad, blocks = segment_lines(codec, read_all(fd))
    except ForeignSegment:
        os.close(fd)
        raise
    except OSError:
        os.close(fd)
        return None
    return Claim(name, fd, lines, rewrite=bool(bad), bad=bad, blocks=blocks)


def put_back(dir_fd: int, claim: Claim, *, keep_lock: bool = False) -> int:
    """Replace the claimed segment with its units not delivered, atomically, compressed as its
    name says; returns its new size. With ``keep_lock`` the new file is locked before it
    replaces the old one, and becomes the claim's descriptor."""
    data = _rest(claim)
    hidden = f".put-{claim.name}"
    fd = os.open(hidden, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | OPEN_FLAGS, 0o600, dir_fd=dir_fd)
    try:
        if keep_lock:
            fcntl.flock(fd, fcntl.LOCK_EX)
        write_all(fd, data)
        os.fsync(fd)
        os.rename(hidden, claim.name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except BaseException:
        os.close(fd)
        raise
    if keep_lock:
        os.close(claim.fd)
        claim.fd = fd
    else:
        os.close(fd)
    return len(data)


def _rest(claim: Claim) -> bytes:
    """The units not delivered, as a put-back writes them: members with nothing delivered as
    they are, what is left of the others compressed again."""
    codec = codec_of_segment(claim.name)
    delivered, lines = claim.delivered, claim.lines
    if codec is None:
        return b"".join(unit for i, unit in enumerate(lines) if i not in delivered)
    blocks: list[Block] = []
    out: list[bytes] = []
    for raw, indices in claim.blocks or [(None, range(len(lines)))]:
        left = [i for i in indices if i not in delivered]
        if raw is not None and len(left) == len(indices):
            blocks.append((raw, indices))
            out.append(raw)
            continue
        start = size = 0
        for end, i in enumerate(left):  # runs of REWRITTEN_MEMBER_BYTES
            size += len(lines[i])
            if size >= REWRITTEN_MEMBER_BYTES or end == len(left) - 1:
                group = left[start : end + 1]
                out.append(codec.compress(b"".join(lines[i] for i in group)))
                blocks.append((out[-1], group))
                start, size = end + 1, 0
    claim.blocks = blocks
    return b"".join(out)


def codec_of_segment(name: str) -> Codec | None:
    """The codec segment ``name`` is written with; ``ForeignSegment`` when it can't be had."""
    try:
        return compressed_segments.codec_of_file(name)
    except ValueError as exc:
        raise ForeignSegment(str(exc)) from None


def segment_lines(codec: Codec | None, data: bytes) -> tuple[list[bytes], int, list[Block] | None]:
    """The whole JSON-object lines of a segment's ``data`` (written with ``codec``), how many
    torn or corrupt ones it had (a torn member or frame counts one; a damaged one, an estimate
    of its lines), and its members when it is compressed."""
    if codec is None:
        return (*valid_lines(data), None)
    try:
        decoded = compressed_segments.decode_all(codec, data, MAX_RECORD_BYTES)
    except compressed_segments.TooLarge as exc:
        raise ForeignSegment(str(exc)) from None
    lines: list[bytes] = []
    blocks: list[Block] = []
    bad = 0
    for member in decoded.members:
        good, wrong = valid_lines(member.data)
        wrong = wrong or member.raw is None  # cut short at the end of a line: the cut counts
        blocks.append((None if wrong else member.raw, range(len(lines), len(lines) + len(good))))
        lines += good
        bad += wrong
    return lines, bad + decoded.damaged_records(len(lines)), blocks


def valid_lines(data: bytes) -> tuple[list[bytes], int]:
    """The whole JSON-object lines of ``data``, and how many torn or corrupt ones it had."""
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
    return good, bad


def read_all(fd: int) -> bytes:
    """Everything from ``fd`` on."""
    chunks = []
    while chunk := os.read(fd, 1 << 20):
        chunks.append(chunk)
    return b"".join(chunks)


def fd_size(fd: int) -> int:
    """The size of the open file, 0 if it can't be told."""
    try:
        return os.fstat(fd).st_size
    except OSError:
        return 0


def unlink(dir_fd: int, name: str) -> None:
    """Remove ``name`` if it is there."""
    with contextlib.suppress(OSError):
        os.unlink(name, dir_fd=dir_fd)


def exists(dir_fd: int, name: str) -> bool:
    """Whether ``name`` is in the directory."""
    try:
        os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except OSError:
        return False
    return True
