"""``dxtrack spool status|replay|purge``: what waits on disk per destination, send it now, or
remove it."""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import click
from rich.table import Table

from dxtrack.cli import render
from dxtrack.delivery import compressed_segments, segments

SPOOL_DIR_HELP = "The spool directory. Default: DXTRACK_SPOOL_DIR, else the per-user cache."


@dataclass
class Waiting:
    """What one destination's spool directory holds."""

    destination: str
    segments: int
    lines: int
    bytes: int
    oldest: float | None
    in_use: int
    """Segments that a running process holds open (its current segment or a replay)."""
    unreadable: int = 0
    """Segments whose records can't be counted (a ``.jsonl.zst`` without zstandard)."""


def spool_root(option: str | None) -> Path:
    """The spool directory the option, the environment or the default names."""
    if option:
        return Path(option)
    from dxtrack.wiring import default_spool_dir

    return Path(os.environ.get("DXTRACK_SPOOL_DIR") or default_spool_dir())


def _segments(directory: Path) -> list[Path]:
    return sorted(
        p
        for p in directory.glob("seg-*")
        if segments.is_segment(p.name) and p.is_file() and not p.is_symlink()
    )


_counted: dict[tuple[str, int, int, int], int | None] = {}


def _records(path: Path, info: os.stat_result) -> int | None:
    """The lines in a segment (``info``: its ``stat``), decompressed when its name says it is
    compressed, counted once while it stays the same; None (said on stderr once) when it can't
    be read."""
    key = (str(path), info.st_ino, info.st_size, info.st_mtime_ns)
    if key not in _counted:
        data = path.read_bytes()
        try:
            codec = compressed_segments.codec_of_file(path.name)
            if codec is not None:
                decoded = compressed_segments.decode_all(codec, data, segments.MAX_RECORD_BYTES)
                data = b"".join(member.data for member in decoded.members)
            _counted[key] = data.count(b"\n")
        except ValueError as exc:  # zstd without zstandard; too large to be dxtrack's
            click.echo(f"can't count the records of {path}: {exc}", err=True)
            _counted[key] = None
    return _counted[key]


def _locked(path: Path) -> bool:
    """Whether another process holds the segment's lock (a writer or a replay)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)
    return False


def waiting(root: Path) -> list[Waiting]:
    """Per destination under ``root``: segments, lines, bytes, the oldest, and those in use."""
    found: list[Waiting] = []
    if not root.is_dir():
        return found
    for directory in sorted(p for p in root.iterdir() if p.is_dir() and not p.is_symlink()):
        files = _segments(directory)
        lines = size = in_use = unreadable = 0
        oldest = None
        for path in files:
            with contextlib.suppress(OSError):
                info = path.stat()
                records = _records(path, info)
                lines += records or 0
                unreadable += records is None
                size += info.st_size
                oldest = info.st_mtime if oldest is None else min(oldest, info.st_mtime)
                in_use += _locked(path)
        found.append(Waiting(directory.name, len(files), lines, size, oldest, in_use, unreadable))
    return found


def show(root: Path, rows: list[Waiting], as_json: bool) -> None:
    """The table of what waits, or its JSON."""
    if as_json:
        render.emit_json({"spool_dir": str(root), "destinations": [asdict(r) for r in rows]})
        return
    total = sum(r.lines for r in rows)
    table = Table(title=f"Spool {root}: {total} records waiting")
    for name in ("destination", "segments", "records", "bytes", "oldest", "in use"):
        table.add_column(name, justify="left" if name in ("destination", "oldest") else "right")
    for r in rows:
        age = f"{render.when(r.oldest)} ({_age(r.oldest)} ago)" if r.oldest else ""
        table.add_row(
            r.destination, str(r.segments), str(r.lines), f"{r.bytes:,}", age, str(r.in_use)
        )
    render.console.print(table)


def _age(moment: float | None) -> str:
    seconds = max(time.time() - (moment or time.time()), 0)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f}{unit}"
    return f"{seconds:.0f}s"


@click.group()
def spool() -> None:
    """What waits on disk to be delivered (records spooled during an outage)."""


@spool.command()
@click.option("--spool-dir", help=SPOOL_DIR_HELP)
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
def status(spool_dir: str | None, as_json: bool) -> None:
    """Records waiting per destination."""
    root = spool_root(spool_dir)
    show(root, waiting(root), as_json)


@spool.command()
@click.option("--spool-dir", help=SPOOL_DIR_HELP)
@click.option("--timeout", default=120.0, show_default=True, help="Seconds to keep trying.")
def replay(spool_dir: str | None, timeout: float) -> None:
    """Send what waits now, with the configuration the environment gives (DXTRACK_STAGE, the
    AWS settings...). Exits 1 when records are still waiting at the end."""
    import dxtrack

    root = spool_root(spool_dir)
    before = sum(r.lines for r in waiting(root))
    render.console.print(f"{before} records waiting in {root}")
    if not before:
        return
    try:
        dxtrack.configure(
            context=os.environ.get("DXTRACK_CONTEXT") or "dxtrack-spool-replay",
            spool_dir=str(root),
            capture_unhandled=False,
            capture_log_level=None,
        )
    except ValueError as exc:
        raise click.ClickException(f"the environment's configuration: {exc}") from None
    deadline = time.monotonic() + timeout
    left = before
    try:
        while time.monotonic() < deadline:
            dxtrack.flush(timeout=1.0)
            left = sum(r.lines for r in waiting(root))
            if left <= 0:
                break
    finally:
        dxtrack.shutdown(timeout=10.0)
    rows = waiting(root)
    left, unreadable = sum(r.lines for r in rows), sum(r.unreadable for r in rows)
    render.console.print(
        f"sent {max(before - left, 0)}; {left} still waiting"
        + (f", and {unreadable} segment(s) that can't be read" if unreadable else "")
    )
    if left or unreadable:
        raise SystemExit(1)


@spool.command()
@click.option("--spool-dir", help=SPOOL_DIR_HELP)
@click.option("--yes", "-y", is_flag=True, help="Don't ask for a confirmation.")
def purge(spool_dir: str | None, yes: bool) -> None:
    """Remove what waits, for good, after a confirmation. Segments in use by a running process
    are left alone."""
    root = spool_root(spool_dir)
    rows = waiting(root)
    total = sum(r.lines for r in rows)
    show(root, rows, as_json=False)
    if not total:
        return
    if not yes:
        click.confirm(f"Remove these {total} records for good?", abort=True)
    removed = kept = 0
    for row in rows:
        for path in _segments(root / row.destination):
            removed_lines = _remove_unless_locked(path)
            if removed_lines is None:
                kept += 1
            else:
                removed += removed_lines
    render.console.print(
        f"removed {removed} records; {kept} segments in use or unreadable were left"
    )


def _remove_unless_locked(path: Path) -> int | None:
    """Take the segment's lock, count its lines and remove it; None when someone holds it or
    it can't be read."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return 0
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    try:
        lines = _records(path, os.fstat(fd))
        if lines is not None:  # else left as it is, like a segment in use
            path.unlink()
        return lines
    finally:
        os.close(fd)
