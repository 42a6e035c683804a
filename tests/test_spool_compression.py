"""A spool with a codec: each append one gzip member or zstd frame, in segments that ``zcat``
and ``zstdcat`` read as JSON lines; the same ``max_spool_bytes`` holds several times more
records; torn, damaged and mixed segments are replayed as far as they can be, and counted."""

from __future__ import annotations

import gzip
import io
import json
import os
import random
import sys
from pathlib import Path

import orjson
import pytest
import zstandard
from click.testing import CliRunner

import dxtrack
from dxtrack.cli.app import cli
from dxtrack.counters import Counters
from dxtrack.delivery import segments
from dxtrack.delivery import spool as spool_module
from dxtrack.delivery.compression import codec
from dxtrack.delivery.disk import Disk
from dxtrack.delivery.packing import pack
from dxtrack.delivery.spool import Spool
from dxtrack.log import LogOnce
from dxtrack.sinks.base import Limits

CODECS = ["gzip", "zstd"]
SUFFIX = {"none": ".jsonl", "gzip": ".jsonl.gz", "zstd": ".jsonl.zst"}


@pytest.fixture(scope="module")
def records(tmp_path_factory: pytest.TempPathFactory) -> list[bytes]:
    """Real metric lines, as stage ``test`` writes them: 4,000 of them, each its own id."""
    output = tmp_path_factory.mktemp("records")
    dxtrack.configure(context="spool-compression", stage="test", output_dir=output)
    for i in range(4_000):
        dxtrack.metric(
            "http.server.latency", i * 0.37, metadata={"route": f"/api/v1/items/{i % 50}"}
        )
    assert dxtrack.flush(timeout=30) is True
    dxtrack.shutdown()
    lines = (output / "metric.jsonl").read_bytes().splitlines(keepends=True)
    assert len(lines) == 4_000
    return lines


def new_spool(root: Path, name: str, stats: Counters | None = None, **more: int) -> Spool:
    return Spool(root / "dest", stats or Counters(), LogOnce(), codec=codec(name), **more)


def decoded(path: Path) -> bytes:
    """A segment read as a person would: gzip's or zstd's own reader, every member or frame."""
    data = path.read_bytes()
    if path.name.endswith(".gz"):
        return gzip.decompress(data)
    if path.name.endswith(".zst"):
        reader = zstandard.ZstdDecompressor().stream_reader(
            io.BytesIO(data), read_across_frames=True
        )
        return reader.read()
    return data


def replay_all(spool: Spool) -> list[bytes]:
    """Claim every segment, deliver all of it, and return its lines."""
    lines: list[bytes] = []
    while (claim := spool.claim()) is not None:
        lines += claim.lines
        claim.delivered.update(range(len(claim.lines)))
        spool.release(claim)
    return lines


def compressions(spool: Spool, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The sizes of what the spool's codec compresses from now on."""
    sizes: list[int] = []
    compress = type(spool.codec).compress

    def counted(self: object, data: bytes) -> bytes:
        sizes.append(len(data))
        return compress(self, data)  # type: ignore[arg-type]

    monkeypatch.setattr(type(spool.codec), "compress", counted)
    return sizes


def append_in_batches(spool: Spool, lines: list[bytes], size: int = 100) -> int:
    return sum(
        spool.append(b"".join(lines[i : i + size]), len(lines[i : i + size]))
        for i in range(0, len(lines), size)
    )


@pytest.mark.parametrize("name", CODECS)
def test_the_same_bound_holds_several_times_more_records(
    name: str, records: list[bytes], tmp_path: Path
) -> None:
    bound = 64 * 1024
    plain_stats, packed_stats = Counters(), Counters()
    plain = new_spool(tmp_path / "plain", "none", plain_stats, max_bytes=bound)
    packed = new_spool(tmp_path / "packed", name, packed_stats, max_bytes=bound)
    kept_plain = append_in_batches(plain, records)
    kept: list[bytes] = []  # a batch is kept whole or dropped whole; one that compresses
    for i in range(0, len(records), 100):  # smaller may still fit after one was dropped
        batch = records[i : i + 100]
        if packed.append(b"".join(batch), len(batch)):
            kept += batch
    plain.close()
    packed.close()

    assert len(kept) >= 4 * kept_plain > 0, (len(kept), kept_plain)
    assert packed_stats.snapshot()["dropped.spool_full"] == len(records) - len(kept)
    files = sorted((tmp_path / "packed" / "dest").iterdir())
    assert files and all(f.name.endswith(SUFFIX[name]) for f in files)
    assert sum(f.stat().st_size for f in files) <= bound
    assert b"".join(decoded(f) for f in files) == b"".join(kept)


@pytest.mark.parametrize("name", CODECS)
def test_a_claim_reads_the_lines_back_and_a_put_back_keeps_the_codec(
    name: str, records: list[bytes], tmp_path: Path
) -> None:
    spool = new_spool(tmp_path, name)
    lines = records[:1_000]
    assert append_in_batches(spool, lines, size=7) == 1_000  # 143 members or frames
    spool.close_segment()
    claim = spool.claim()
    assert claim is not None and claim.lines == lines
    claim.delivered.update(range(0, 1_000, 3))
    spool.release(claim)

    files = list((tmp_path / "dest").iterdir())
    assert [f.name for f in files] == [claim.name] and claim.name.endswith(SUFFIX[name])
    left = [line for i, line in enumerate(lines) if i % 3]
    assert decoded(files[0]) == b"".join(left)
    assert spool.unreplayed() == len(left)
    assert replay_all(spool) == left
    assert list((tmp_path / "dest").iterdir()) == []


@pytest.mark.parametrize("name", CODECS)
def test_a_torn_last_member_keeps_what_came_before_and_counts_the_tear(
    name: str, records: list[bytes], tmp_path: Path
) -> None:
    """A kill -9 in the middle of an append: the members before it replay whole."""
    stats = Counters()
    spool = new_spool(tmp_path, name, stats)
    append_in_batches(spool, records[:500])
    (segment,) = (tmp_path / "dest").iterdir()  # still open: the next append goes there too
    whole = segment.stat().st_size
    spool.append(b"".join(records[500:600]), 100)
    spool.close_segment()
    torn_at = whole + (segment.stat().st_size - whole) // 2
    os.truncate(segment, torn_at)

    lines = replay_all(spool)
    assert lines[:500] == records[:500]
    assert lines == records[: len(lines)] and len(lines) < 600  # no cut line, nothing made up
    if name == "gzip":  # zstd gives only the whole blocks (128 KiB) of a torn frame
        assert len(lines) > 500, "the whole lines of the torn member are kept"
    assert stats.snapshot()["dropped.spool_corrupt"] == 1


@pytest.mark.parametrize("name", CODECS)
def test_a_damaged_member_is_skipped_counted_and_the_rest_replayed(
    name: str, records: list[bytes], tmp_path: Path
) -> None:
    """Bit rot in the middle of a segment: the members before and after it replay, and the
    damaged one's records are counted (an estimate from its size)."""
    stats = Counters()
    spool = new_spool(tmp_path, name, stats)
    spool.append(b"".join(records[:300]), 300)
    (segment,) = (tmp_path / "dest").iterdir()
    first = segment.stat().st_size
    spool.append(b"".join(records[300:600]), 300)
    second = segment.stat().st_size
    spool.append(b"".join(records[600:900]), 300)
    spool.close_segment()
    data = bytearray(segment.read_bytes())
    data[(first + second) // 2] ^= 0xFF  # a flipped byte inside the second
    segment.write_bytes(bytes(data))

    assert replay_all(spool) == records[:300] + records[600:900]
    assert 240 <= stats.snapshot()["dropped.spool_corrupt"] <= 360


@pytest.mark.parametrize("name", CODECS)
def test_no_flipped_bit_ever_replays_an_altered_record(
    name: str, records: list[bytes], tmp_path: Path
) -> None:
    """A member of many pieces is kept only once its checksum is verified at its end."""
    whole = b"".join(records[:3_000])
    packed = codec(name).compress(whole)
    assert len(packed) > 3 * 16 * 1024
    originals = set(records[:3_000])
    rng = random.Random(7)
    for trial in range(40):
        stats = Counters()
        spool = new_spool(tmp_path / str(trial), name, stats)
        spool.append(packed, 3_000, plain_size=len(whole))
        spool.close()
        (segment,) = (tmp_path / str(trial) / "dest").iterdir()
        data = bytearray(segment.read_bytes())
        data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        segment.write_bytes(bytes(data))
        lines = replay_all(new_spool(tmp_path / str(trial), name, stats))
        assert set(lines) <= originals, f"trial {trial}: an altered record was replayed"
        lost, counted = 3_000 - len(lines), stats.snapshot().get("dropped.spool_corrupt", 0)
        assert lost / 3 <= counted <= lost * 3, f"trial {trial}: {lost} lost, {counted} counted"


def test_segments_of_every_codec_replay_whatever_the_spool_compresses_now(
    records: list[bytes], tmp_path: Path
) -> None:
    """``compression`` changed between runs: what earlier runs left is read by its file name."""
    expected = []
    for i, name in enumerate(["none", "gzip", "zstd", "gzip"]):
        spool = new_spool(tmp_path, name)
        batch = records[i * 100 : (i + 1) * 100]
        append_in_batches(spool, batch, size=10)
        spool.close()
        expected += batch
    names = sorted(f.name for f in (tmp_path / "dest").iterdir())
    assert [n[n.index(".") :] for n in names] == [".jsonl", ".jsonl.gz", ".jsonl.zst", ".jsonl.gz"]
    assert replay_all(new_spool(tmp_path, "none")) == expected


def test_a_zstd_segment_without_zstandard_is_left_on_disk(
    records: list[bytes], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stats = Counters()
    new_spool(tmp_path, "zstd").append(b"".join(records[:10]), 10)
    gzip_spool = new_spool(tmp_path, "gzip", stats)
    gzip_spool.append(b"".join(records[10:20]), 10)
    gzip_spool.close_segment()
    monkeypatch.setitem(sys.modules, "zstandard", None)  # import zstandard: ImportError
    (zstd_segment,) = (tmp_path / "dest").glob("*.zst")
    before = zstd_segment.read_bytes()
    assert replay_all(gzip_spool) == records[10:20]
    assert zstd_segment.read_bytes() == before
    assert "dropped.spool_corrupt" not in stats.snapshot()


def spool_with_a_torn_write(
    name: str,
    records: list[bytes],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    *,
    cut_fails: bool,
) -> tuple[Spool, Counters]:
    """50 records, 50 whose write a full disk cuts in half (the cut that follows failing too,
    with ``cut_fails``), then 50 more; the segment closed."""
    stats = Counters()
    spool = new_spool(tmp_path, name, stats)
    assert spool.append(b"".join(records[:50]), 50) == 50

    def half_then_full(fd: int, data: bytes) -> int:
        os.write(fd, data[: len(data) // 2])
        raise segments.PartialWrite(len(data) // 2, OSError(28, "No space left on device"))

    def cannot_cut(fd: int, length: int) -> None:
        raise OSError(5, "Input/output error")

    with monkeypatch.context() as patched:
        patched.setattr(segments, "write_all", half_then_full)
        if cut_fails:
            patched.setattr(os, "ftruncate", cannot_cut)
        assert spool.append(b"".join(records[50:100]), 50) == 0
    assert spool.append(b"".join(records[100:150]), 50) == 50
    spool.close_segment()
    return spool, stats


@pytest.mark.parametrize("name", CODECS)
def test_a_write_cut_short_drops_and_counts_the_whole_member(
    name: str, records: list[bytes], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A full disk in the middle of a member: it is cut off, so the segment stays whole."""
    spool, stats = spool_with_a_torn_write(name, records, tmp_path, monkeypatch, cut_fails=False)
    counts = stats.snapshot()
    assert counts["dropped.spool_write_failed"] == 50 and counts["spooled"] == 100
    assert replay_all(spool) == records[:50] + records[100:150]
    assert "dropped.spool_corrupt" not in stats.snapshot()


@pytest.mark.parametrize("name", CODECS)
def test_compressed_items_go_to_disk_as_they_are(
    name: str, records: list[bytes], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An item compressed with the spool's codec is written without being compressed again;
    one of another codec is decompressed and compressed as the spool compresses."""
    spool = new_spool(tmp_path, name)
    ours = pack(records[:500], Limits(1 << 20, 500, 4 << 20, True, codec=codec(name)))
    other = "zstd" if name == "gzip" else "gzip"
    theirs = pack(records[500:600], Limits(1 << 20, 500, 4 << 20, True, codec=codec(other)))
    calls = compressions(spool, monkeypatch)
    Disk("test", spool, Counters(), LogOnce()).write(ours + theirs)
    spool.close_segment()
    assert calls == [len(b"".join(records[500:600]))]
    (segment,) = (tmp_path / "dest").iterdir()
    assert segment.read_bytes().startswith(ours[0].data)
    assert replay_all(spool) == records[:600]


@pytest.mark.parametrize("name", CODECS)
def test_the_command_counts_and_purges_compressed_records(
    name: str, records: list[bytes], tmp_path: Path
) -> None:
    root = tmp_path / "spool"
    spool = Spool(root / "firehose-prod-metric", Counters(), LogOnce(), codec=codec(name))
    append_in_batches(spool, records[:777], size=50)
    spool.close()
    status = CliRunner().invoke(cli, ["spool", "status", "--json", "--spool-dir", str(root)])
    assert status.exit_code == 0, status.output
    (row,) = json.loads(status.output)["destinations"]
    assert row["lines"] == 777 and row["segments"] == 1
    purge = CliRunner().invoke(cli, ["spool", "purge", "--yes", "--spool-dir", str(root)])
    assert purge.exit_code == 0, purge.output
    assert "removed 777 records" in purge.output
    assert list((root / "firehose-prod-metric").iterdir()) == []


def test_a_segment_of_thousands_of_one_line_members_replays_whole(
    records: list[bytes], tmp_path: Path
) -> None:
    """A trickle of records during an outage: 12,000 one-line members in one segment."""
    spool = new_spool(tmp_path, "gzip", max_bytes=1 << 30)
    lines = records * 3
    for item in lines:
        spool.append(item, 1)
    spool.close_segment()
    assert replay_all(spool) == lines
    assert orjson.loads(lines[-1])["seq"] == 4_000


@pytest.mark.parametrize("name", CODECS)
def test_a_slow_calls_insurance_is_written_compressed_as_it_is(
    name: str, records: list[bytes], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The items of a call taking long go to a claimed segment without being compressed again;
    a put-back after a partial delivery keeps the codec and only what was not delivered."""
    spool = new_spool(tmp_path, name)
    limits = Limits(1 << 20, 500, 4 << 20, True, codec=codec(name))
    items = pack(records[:900], limits, max_bytes=64 * 1024)
    assert len(items) >= 3
    compress = type(spool.codec).compress
    monkeypatch.setattr(type(spool.codec), "compress", lambda *_: pytest.fail("compressed again"))
    claim = Disk("test", spool, Counters(), LogOnce()).insure(items)
    assert claim is not None and claim.lines == [item.plain() for item in items]
    (segment,) = (tmp_path / "dest").iterdir()
    assert segment.name.endswith(SUFFIX[name])
    assert segment.read_bytes() == b"".join(item.data for item in items)
    assert spool.claim() is None  # held by the call

    monkeypatch.setattr(type(spool.codec), "compress", compress)
    claim.delivered.update({0, 2})
    spool.release(claim)
    assert decoded(segment) == b"".join(item.plain() for item in items[1:2] + items[3:])
    assert replay_all(spool) == b"".join(claim.lines[1:2] + claim.lines[3:]).splitlines(
        keepends=True
    )


@pytest.mark.parametrize("name", CODECS)
def test_when_a_torn_member_cant_be_cut_off_later_appends_go_to_a_new_segment(
    name: str, records: list[bytes], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spool, stats = spool_with_a_torn_write(name, records, tmp_path, monkeypatch, cut_fails=True)
    assert len(list((tmp_path / "dest").iterdir())) == 2
    replayed = replay_all(spool)
    assert replayed[:50] == records[:50] and replayed[-50:] == records[100:150]
    assert len(set(replayed)) == len(replayed) and set(replayed) <= set(records[:150])
    counts = stats.snapshot()
    # the member that could not be cut off is counted as not written; a replay may still
    # deliver its whole lines (then counted twice, never lost)
    assert counts["dropped.spool_write_failed"] == 50
    assert len(replayed) + counts["dropped.spool_write_failed"] >= 150


@pytest.mark.parametrize("name", CODECS)
def test_a_segment_is_closed_at_a_bound_of_records_and_an_oversized_one_is_left_alone(
    name: str, records: list[bytes], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A replay holds a whole segment in memory: the spool closes its own at
    ``SEGMENT_RECORD_BYTES`` of records, and a file holding more than ``MAX_RECORD_BYTES``
    (not dxtrack's) is never decoded whole, nor deleted."""
    monkeypatch.setattr(spool_module, "SEGMENT_RECORD_BYTES", 64 * 1024)
    monkeypatch.setattr(segments, "MAX_RECORD_BYTES", 256 * 1024)
    stats = Counters()
    spool = new_spool(tmp_path, name, stats)
    append_in_batches(spool, records[:2_000], size=50)
    spool.close_segment()
    own = sorted((tmp_path / "dest").iterdir())
    assert len(own) >= 6
    assert all(len(decoded(f)) <= 64 * 1024 + 50 * 400 for f in own)
    bomb = tmp_path / "dest" / f"seg-00000000000000000001-x-y-000001{SUFFIX[name]}"
    bomb.write_bytes(codec(name).compress(b'{"a":1}\n' * 100_000))  # 800 KB of records
    assert replay_all(spool) == records[:2_000]
    assert bomb.exists() and "dropped.spool_corrupt" not in stats.snapshot()


def test_the_command_leaves_segments_it_cant_read(
    records: list[bytes], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "spool"
    for name in ("zstd", "gzip"):
        spool = Spool(root / "firehose-prod-metric", Counters(), LogOnce(), codec=codec(name))
        spool.append(b"".join(records[:100]), 100)
        spool.close()
    monkeypatch.setitem(sys.modules, "zstandard", None)
    purge = CliRunner().invoke(cli, ["spool", "purge", "--yes", "--spool-dir", str(root)])
    assert purge.exit_code == 0, purge.output
    assert "removed 100 records; 1 segments in use or unreadable were left" in purge.output
    (left,) = (root / "firehose-prod-metric").iterdir()
    assert left.name.endswith(".jsonl.zst")


@pytest.mark.parametrize("name", CODECS)
def test_a_put_back_copies_untouched_members_and_compresses_only_whats_left_of_one(
    name: str, records: list[bytes], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Replaying a segment call after call writes back what is left each time: members with
    nothing delivered are copied as they are, so the work stays linear in the segment."""
    spool = new_spool(tmp_path, name)
    sizes = []
    for i in range(4):
        spool.append(b"".join(records[i * 500 : (i + 1) * 500]), 500)
        sizes.append(next((tmp_path / "dest").iterdir()).stat().st_size)
    spool.close_segment()
    (segment,) = (tmp_path / "dest").iterdir()
    original = segment.read_bytes()
    untouched = original[sizes[0] :]  # members 2 to 4
    compressed = compressions(spool, monkeypatch)
    claim = spool.claim()
    assert claim is not None and claim.lines == records[:2_000]
    claim.delivered.update(range(200))
    spool.checkpoint(claim)
    assert segment.read_bytes().endswith(untouched)
    assert compressed == [len(b"".join(records[200:500]))]
    claim.delivered.update(range(200, 800))
    spool.checkpoint(claim)
    assert segment.read_bytes().endswith(original[sizes[1] :])
    assert compressed[1:] == [len(b"".join(records[800:1_000]))]
    spool.release(claim)
    assert replay_all(spool) == records[800:2_000]


def test_a_call_holds_at_most_a_segments_worth_of_records_before_compression() -> None:
    """Its insurance segment is read whole to be replayed: records that compress 100 times
    still make calls a replay can read."""
    from dxtrack.delivery.packing import CALL_RECORD_BYTES, Item, calls

    limits = Limits(1 << 20, 500, 4 << 20, True, codec=codec("gzip"))
    items = [Item(b"x" * 40_000, 1_000, plain_size=4_000_000, codec=codec("gzip"))] * 40
    grouped = list(calls(items, limits))
    assert sum(len(call) for call in grouped) == 40
    assert all(sum(i.plain_size for i in call) <= CALL_RECORD_BYTES for call in grouped)
    assert max(len(call) for call in grouped) == CALL_RECORD_BYTES // 4_000_000


def test_an_unreadable_segment_is_not_read_again_while_it_stays_the_same(
    records: list[bytes], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(segments, "MAX_RECORD_BYTES", 256 * 1024)
    spool = new_spool(tmp_path, "gzip")
    spool.append(b"".join(records[:10]), 10)
    spool.close_segment()
    bomb = tmp_path / "dest" / "seg-00000000000000000001-x-y-000001.jsonl.gz"
    bomb.write_bytes(codec("gzip").compress(b'{"a":1}\n' * 100_000))
    reads: list[str] = []
    read_all = segments.read_all

    def counted(fd: int) -> bytes:
        reads.append(os.readlink(f"/proc/self/fd/{fd}"))
        return read_all(fd)

    monkeypatch.setattr(segments, "read_all", counted)
    assert replay_all(spool) == records[:10]
    assert spool.claim() is None and spool.claim() is None
    assert sum(path.endswith(bomb.name) for path in reads) == 1
