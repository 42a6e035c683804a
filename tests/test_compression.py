"""compression="gzip"/"zstd": every Firehose record is one complete member or frame of whole
lines, S3 objects decode as one stream (and in DuckDB), records land exactly once, and the
spool keeps them compressed through an outage."""

from __future__ import annotations

import gzip
import io
import random
import sys
from collections import Counter
from pathlib import Path

import boto3
import duckdb
import pytest
import zstandard

import dxtrack
from dxtrack.config import build_config
from dxtrack.delivery.compression import Gzip, Zstd, codec
from dxtrack.delivery.packing import pack
from dxtrack.sinks.base import Limits
from tests.aws import (
    GZIP_MAGIC,
    REGION,
    ZSTD_MAGIC,
    Hooks,
    Streams,
    decoded_record,
    spool_directory,
)

MAGIC = {"gzip": GZIP_MAGIC, "zstd": ZSTD_MAGIC}
BILLED_OVER_RAW = {"gzip": 0.15, "zstd": 0.12}


def billed(size: int) -> int:
    """Firehose bills each record rounded up to the next 5 KB."""
    return -(-size // 5120) * 5120


def object_bodies(streams: Streams, kind: str) -> list[bytes]:
    s3 = boto3.client("s3", region_name=REGION)
    listing = s3.list_objects_v2(Bucket=streams.bucket, Prefix=f"{kind}/")
    keys = [obj["Key"] for obj in listing.get("Contents", [])]
    return [s3.get_object(Bucket=streams.bucket, Key=key)["Body"].read() for key in keys]


def decoded_stream(name: str, data: bytes) -> bytes:
    """Concatenated members or frames, read by the codec's own reader, as a consumer would."""
    if name == "gzip":
        return gzip.decompress(data)
    reader = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data), read_across_frames=True)
    return reader.read()  # type: ignore[no-any-return]


def track(metrics: int, errors: int, tag: str) -> None:
    for i in range(metrics):
        dxtrack.metric(
            "http.server.latency",
            random.random() * 100,
            metadata={"route": "/api/v1/items", "status": 200, "call": f"{tag}:{i}"},
        )
    for i in range(errors):
        try:
            raise ValueError(f"boom {i}")
        except ValueError:
            dxtrack.error(metadata={"call": f"{tag}:e{i}"})


@pytest.mark.parametrize("name", ["gzip", "zstd"])
def test_compressed_records_land_once_and_decode_as_one_stream(
    name: str, streams: Streams, firehose_calls: Hooks, tmp_path: Path
) -> None:
    dxtrack.configure(
        **streams.settings(compression=name, spool_dir=tmp_path / "spool", error_rate_limit=None)
    )
    track(20_000, 200, name)
    assert dxtrack.flush(timeout=60) is True

    metrics, errors = streams.records("metric"), streams.records("error")
    assert len(metrics) == 20_000 and len(errors) == 200
    calls = Counter(r["metadata"]["call"] for r in metrics + errors)
    assert max(calls.values()) == 1 and len(calls) == 20_200
    seqs = sorted(r["seq"] for r in metrics + errors)
    assert seqs == list(range(1, 20_201)), "no gap and no repeat in seq"

    sent = [record for call in firehose_calls.log.calls for record in call]
    assert sent and all(record.startswith(MAGIC[name]) for record in sent)
    assert not firehose_calls.log.violations  # limits, one member or frame, whole lines
    raw = sum(len(decoded_record(record)) for record in sent)
    ratio = sum(billed(len(record)) for record in sent) / raw
    assert ratio <= BILLED_OVER_RAW[name], f"billed/raw {ratio:.3f}"

    for body in object_bodies(streams, "metric"):
        assert body.startswith(MAGIC[name])
    # DuckDB reads the objects as Athena would, the codec given (S3 keys carry no extension)
    paths = []
    for i, body in enumerate(object_bodies(streams, "metric")):
        path = tmp_path / f"metric-{i}.json.{'gz' if name == 'gzip' else 'zst'}"
        path.write_bytes(body)
        paths.append(str(path))
    count, distinct = duckdb.execute(
        "select count(*), count(distinct id) from read_json($paths, format='newline_delimited', "
        "compression=$codec)",
        {"paths": paths, "codec": name},
    ).fetchone()  # type: ignore[misc]
    assert count == distinct == 20_000
    dxtrack.shutdown()


@pytest.mark.parametrize("name", ["gzip", "zstd"])
def test_an_outage_spools_compressed_segments_and_the_replay_lands_each_record_once(
    name: str, streams: Streams, firehose_calls: Hooks, tmp_path: Path
) -> None:
    spool = tmp_path / "spool"
    settings = streams.settings(compression=name, spool_dir=spool, retry_budget=1)
    streams.delete_bucket()
    dxtrack.configure(**settings)
    track(3_000, 0, "outage")
    assert dxtrack.flush(timeout=30) is False
    dxtrack.shutdown(timeout=1)
    files = list(spool_directory(spool, "metric").iterdir())
    suffix = ".jsonl.gz" if name == "gzip" else ".jsonl.zst"
    assert files and all(f.name.endswith(suffix) for f in files)
    plain = b"".join(decoded_stream(name, f.read_bytes()) for f in files)
    lines = plain.splitlines()
    assert len(lines) == 3_000 and all(line.startswith(b"{") for line in lines)
    on_disk = sum(f.stat().st_size for f in files)
    assert on_disk <= 0.3 * len(plain), f"{on_disk} bytes on disk for {len(plain)} of records"

    streams.create_bucket()
    firehose_calls.reset()
    dxtrack.configure(**settings)
    assert dxtrack.flush(timeout=60) is True
    metrics = streams.records("metric")
    assert Counter(r["metadata"]["call"] for r in metrics) == Counter(
        f"outage:{i}" for i in range(3_000)
    )
    sent = [record for call in firehose_calls.log.calls for record in call]
    assert sent and all(record.startswith(MAGIC[name]) for record in sent)
    # a replay call holds one item of at most 512 KiB of records, so that a kill -9 during a
    # replay sends little of it twice, compressed or not
    for call in firehose_calls.log.calls:
        assert len(call) == 1 and len(decoded_record(call[0])) <= 512 * 1024
    assert len(firehose_calls.log.calls) >= 2
    dxtrack.shutdown()


def test_a_group_that_compresses_past_the_limit_is_split() -> None:
    """Lines that don't compress (random text) are split until each item fits."""
    rng = random.Random(7)
    lines = [
        b'{"x":"%s"}\n'
        % bytes(rng.choice(b"abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(300))
        for _ in range(400)
    ]
    limits = Limits(
        max_item_bytes=8_000,
        max_items_per_call=500,
        max_call_bytes=1 << 20,
        pack_lines=True,
        codec=Gzip(),
    )
    items = pack(lines, limits)
    assert len(items) > 1
    assert all(len(item.data) <= 8_000 for item in items)
    assert b"".join(item.plain() for item in items) == b"".join(lines)
    assert sum(item.lines for item in items) == 400


def test_compression_is_checked_and_read_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with pytest.raises(ValueError, match="compression must be one of none, gzip, zstd"):
        build_config("job", "prod", compression="brotli")
    with pytest.raises(ValueError, match="compression must be a string"):
        build_config("job", "prod", compression=1)  # type: ignore[arg-type]
    monkeypatch.setenv("DXTRACK_COMPRESSION", "zstd")
    assert build_config("job", "prod").compression == "zstd"
    assert build_config("job", "prod", compression="none").compression == "none"
    monkeypatch.setitem(sys.modules, "zstandard", None)  # as if it were not installed
    with pytest.raises(ValueError, match=r"pip install 'dxtrack\[zstd\]'"):
        build_config("job", "prod")


def test_gzip_without_isal_gives_the_same_members(monkeypatch: pytest.MonkeyPatch) -> None:
    """The standard library's zlib is the fallback; both give gzip members of the same data."""
    data = b"".join(b'{"n":%d}\n' % i for i in range(10_000))
    fast = Gzip()
    monkeypatch.setitem(sys.modules, "isal", None)
    plain_zlib = Gzip()
    assert plain_zlib._isal is None
    for member in (fast.compress(data), plain_zlib.compress(data)):
        assert member.startswith(GZIP_MAGIC) and decoded_record(member) == data
    zstd = Zstd()
    assert decoded_record(zstd.compress(data)) == data
    assert codec("none") is None
