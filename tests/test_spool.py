"""The spool on its own: exact under concurrent writers and replayers, put back rather than
copied, and private on a shared machine."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import orjson
import pytest

from dxtrack.counters import Counters
from dxtrack.delivery import spool as spool_module
from dxtrack.delivery.private_dir import UnsafeDirectory, open_private_dir
from dxtrack.delivery.spool import Spool
from dxtrack.log import LogOnce

NOBODY = 65534


def line(n: int) -> bytes:
    return orjson.dumps({"n": n}) + b"\n"


def new_spool(root: Path, stats: Counters | None = None) -> Spool:
    return Spool(root / "spool" / "dest", stats or Counters(), LogOnce())


def test_concurrent_writer_and_replayer_lose_and_copy_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A writer rotating small segments while a replayer claims and deletes them as fast as it
    can: every line is read exactly once, or is still on disk, never both."""
    monkeypatch.setattr(spool_module, "SEGMENT_BYTES", 200)
    writer, replayer = new_spool(tmp_path), new_spool(tmp_path)
    done = threading.Event()
    replayed: list[int] = []

    def replay() -> None:
        while True:
            finished = done.is_set()
            claim = replayer.claim()
            if claim is None:
                if finished:
                    return
                continue
            replayed.extend(orjson.loads(unit)["n"] for unit in claim.lines)
            claim.delivered.update(range(len(claim.lines)))
            replayer.release(claim)

    thread = threading.Thread(target=replay)
    thread.start()
    for n in range(5_000):
        assert writer.append(line(n), 1) == 1
    writer.close()  # for good: segment and directory
    done.set()
    thread.join(30)
    assert not thread.is_alive()
    assert sorted(replayed) == list(range(5_000))
    assert list((tmp_path / "spool" / "dest").iterdir()) == []


def test_a_partly_delivered_segment_is_put_back_in_place(tmp_path: Path) -> None:
    """Lines a replay did not deliver stay in the same segment; nothing is copied elsewhere."""
    spool = new_spool(tmp_path)
    for n in range(10):
        spool.append(line(n), 1)
    spool.close_segment()
    claim = spool.claim()
    assert claim is not None and len(claim.lines) == 10
    claim.delivered.update(range(0, 10, 2))
    spool.release(claim)
    files = sorted((tmp_path / "spool" / "dest").iterdir())
    assert [f.name for f in files] == [claim.name]
    assert [orjson.loads(raw)["n"] for raw in files[0].read_bytes().splitlines()] == [1, 3, 5, 7, 9]
    again = spool.claim()
    assert again is not None and again.name == claim.name and len(again.lines) == 5
    spool.release(again)  # none delivered: unchanged
    assert files[0].read_bytes().count(b"\n") == 5


def test_a_segment_held_by_its_writer_is_never_claimed(tmp_path: Path) -> None:
    """The open segment is locked from before its name appears until it is closed."""
    writer, replayer = new_spool(tmp_path), new_spool(tmp_path)
    writer.append(line(1), 1)
    assert replayer.claim() is None
    writer.close_segment()
    claim = replayer.claim()
    assert claim is not None and claim.lines == [line(1)]
    replayer.release(claim)


def test_files_of_another_user_and_non_files_are_never_replayed(tmp_path: Path) -> None:
    """A segment owned by someone else, a FIFO and a directory named like segments: none is
    read (a FIFO would block), and the spool still replays its own."""
    spool = new_spool(tmp_path)
    spool.append(line(1), 1)
    spool.close_segment()
    directory = tmp_path / "spool" / "dest"
    foreign = directory / "seg-00000000000000000001-evil.jsonl"
    foreign.write_bytes(line(666))
    os.chown(foreign, NOBODY, NOBODY)
    os.mkfifo(directory / "seg-00000000000000000002-fifo.jsonl")
    (directory / "seg-00000000000000000003-dir.jsonl").mkdir()
    claim = spool.claim()
    assert claim is not None and claim.lines == [line(1)]
    claim.delivered.add(0)
    spool.release(claim)
    assert spool.claim() is None
    assert foreign.read_bytes() == line(666)


def test_created_directories_are_private_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        fd = open_private_dir(tmp_path / "a" / "b" / "c", private_depth=2)
    finally:
        os.umask(old)
    os.close(fd)
    for path in (tmp_path / "a", tmp_path / "a" / "b", tmp_path / "a" / "b" / "c"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o700


def test_a_symlink_above_the_spool_is_followed_only_when_trusted(tmp_path: Path) -> None:
    """~/.cache may be a link of the user's own; a link planted by another user is refused, and
    the spool directory itself is never a link."""
    real = tmp_path / "real"
    real.mkdir(mode=0o700)
    mine = tmp_path / "mine"
    mine.symlink_to(real)
    os.close(open_private_dir(mine / "spool" / "dest", private_depth=2))
    assert (real / "spool" / "dest").is_dir()

    planted = tmp_path / "planted"
    planted.symlink_to(real)
    os.lchown(planted, NOBODY, NOBODY)
    with pytest.raises(UnsafeDirectory, match="owned by uid 65534"):
        open_private_dir(planted / "spool" / "dest", private_depth=2)

    (tmp_path / "linked-spool").symlink_to(real / "spool")
    with pytest.raises(UnsafeDirectory, match="symbolic link"):
        open_private_dir(tmp_path / "linked-spool" / "dest", private_depth=2)


def test_shared_directories_above_the_spool(tmp_path: Path) -> None:
    """A sticky world-writable directory (like /tmp) is fine above the spool; a plain
    world-writable one, or one owned by another user, is not."""
    sticky = tmp_path / "sticky"
    sticky.mkdir()
    sticky.chmod(0o1777)
    os.close(open_private_dir(sticky / "dxtrack" / "spool", private_depth=2))

    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    with pytest.raises(UnsafeDirectory, match="writable by group or others"):
        open_private_dir(shared / "dxtrack" / "spool", private_depth=2)

    theirs = tmp_path / "theirs"
    theirs.mkdir(mode=0o755)
    os.chown(theirs, NOBODY, NOBODY)
    with pytest.raises(UnsafeDirectory, match="owned by uid 65534"):
        open_private_dir(theirs / "spool" / "dest", private_depth=2)


def test_a_spool_over_its_bound_counts_what_it_drops(tmp_path: Path) -> None:
    stats = Counters()
    spool = Spool(tmp_path / "spool" / "dest", stats, LogOnce(), max_bytes=100)
    written = sum(spool.append(line(n), 1) for n in range(20))
    counts = stats.snapshot()
    assert written == counts["spooled"] and 0 < written < 20
    assert counts["dropped.spool_full"] == 20 - written
