"""Stages dev/prod: delivery to Kinesis Firehose (a moto server over HTTP) that loses nothing."""

from __future__ import annotations

import base64
import json
import logging
import os
import stat
import subprocess
import sys
import textwrap
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

import dxtrack
from dxtrack.api import current_client
from dxtrack.sinks.firehose import destination
from tests.aws import REGION, Hooks, Streams, error_response, spool_directory
from tests.conftest import assert_valid
from tests.lifecycle import wait_until

ROOT = Path(__file__).resolve().parents[1]


def ids(records: list[dict[str, Any]]) -> Counter[str]:
    return Counter(r["id"] for r in records)


def assert_exactly_once(records: list[dict[str, Any]], expected: int) -> None:
    counts = ids(records)
    assert len(records) == expected, f"{len(records)} records landed, expected {expected}"
    assert max(counts.values(), default=1) == 1, "a record landed twice"


def run_program(code: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("DXTRACK_")}
    base["PYTHONPATH"] = str(ROOT)
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env={**base, **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_records_land_in_s3_packed_and_valid(streams: Streams, firehose_calls: Hooks) -> None:
    """Errors and metrics reach their streams, many lines per Firehose record, schema-valid."""
    dxtrack.configure(**streams.settings(default_metadata={"team": "t"}))
    for i in range(500):
        dxtrack.metric("m", i, metadata={"i": i})
    try:
        raise ValueError("boom")
    except ValueError:
        dxtrack.error(metadata={"where": "test"})
    assert dxtrack.flush(timeout=30) is True
    metrics, errors = streams.records("metric"), streams.records("error")
    assert_exactly_once(metrics, 500)
    assert_exactly_once(errors, 1)
    assert sorted(r["value"] for r in metrics) == [float(i) for i in range(500)]
    assert errors[0]["exception"]["value"] == "boom"
    for record in metrics[::50] + errors:
        assert_valid(record, "error" if "exception" in record else "metric")
    records_sent = sum(len(call) for call in firehose_calls.log.calls)
    assert records_sent <= 4, "lines are packed into few Firehose records, not one each"
    stats = dxtrack.stats()
    assert stats["delivered"] == 501 and stats["dropped"] == 0 and stats["spooled"] == 0


def test_eight_threads_and_errors_land_exactly_once(streams: Streams) -> None:
    """8 threads x 10,000 metrics plus errors: every record in S3 exactly once by id."""
    dxtrack.configure(**streams.settings())
    start = threading.Barrier(8)

    def work(thread: int) -> None:
        start.wait()
        for i in range(10_000):
            dxtrack.metric("threads", i, metadata={"t": thread})
            if i % 1_000 == 0:
                try:
                    raise RuntimeError(f"{thread}-{i}")
                except RuntimeError:
                    dxtrack.error()

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert dxtrack.flush(timeout=60) is True
    metrics, errors = streams.records("metric"), streams.records("error")
    assert_exactly_once(metrics, 80_000)
    assert_exactly_once(errors, 80)
    assert {(r["metadata"]["t"], r["value"]) for r in metrics} == {
        (t, float(i)) for t in range(8) for i in range(10_000)
    }
    seqs = sorted(r["seq"] for r in metrics + errors)
    assert seqs == list(range(1, 80_081)), "no gap in the producer's sequence"


def test_program_exiting_without_flush_delivers_everything(
    streams: Streams, tmp_path: Path
) -> None:
    """A job that just ends (no flush) still delivers all its records at exit."""
    result = run_program(
        """
        import dxtrack
        dxtrack.configure()
        for i in range(2_000):
            dxtrack.metric("exit.test", i)
        try:
            raise KeyError("k")
        except KeyError:
            dxtrack.error()
        """,
        streams.env(),
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert_exactly_once(streams.records("metric"), 2_000)
    assert_exactly_once(streams.records("error"), 1)


def test_bucket_deleted_then_restored_loses_nothing(
    streams: Streams, firehose_calls: Hooks
) -> None:
    """While the bucket is gone moto answers 500; once it is back, every record arrives."""
    failed = threading.Event()

    def watch(http_response: Any, parsed: dict[str, Any]) -> None:
        if http_response.status_code >= 500:
            failed.set()

    firehose_calls.after_call = watch
    streams.delete_bucket()
    dxtrack.configure(**streams.settings())
    for i in range(3_000):
        dxtrack.metric("outage", i)
    assert failed.wait(30), "the SDK met the outage"
    streams.create_bucket()
    assert dxtrack.flush(timeout=60) is True
    assert dxtrack.stats()["retried"] > 0
    assert_exactly_once(streams.records("metric"), 3_000)


def test_exit_during_outage_spools_and_next_start_delivers(
    streams: Streams, tmp_path: Path
) -> None:
    """Records still undelivered at exit are spooled (0600) and sent by the next configure()."""
    spool = tmp_path / "spool-outage"
    streams.delete_bucket()
    result = run_program(
        """
        import dxtrack
        dxtrack.configure(exit_timeout=1, retry_budget=60)
        for i in range(1_500):
            dxtrack.metric("spooled", i)
        """,
        {**streams.env(), "DXTRACK_SPOOL_DIR": str(spool)},
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert "1500 spooled" in result.stderr, result.stderr
    segments = list(spool.rglob("seg-*.jsonl"))
    assert segments, "the records were spooled"
    for segment in segments:
        assert stat.S_IMODE(segment.stat().st_mode) == 0o600

    streams.create_bucket()
    assert streams.records("metric") == []
    dxtrack.configure(**streams.settings(spool_dir=spool))
    assert dxtrack.flush(timeout=60) is True
    assert_exactly_once(streams.records("metric"), 1_500)
    assert dxtrack.stats()["replayed"] == 1_500
    assert list(spool.rglob("seg-*.jsonl")) == [], "a delivered segment is deleted"


def test_only_failed_entries_are_sent_again(streams: Streams, firehose_calls: Hooks) -> None:
    """FailedPutCount > 0: the entries Firehose refused, and only those, are sent again."""
    first_call: dict[str, Any] = {}

    def fail_half(records: list[bytes]) -> list[bytes] | None:
        if first_call:
            return None
        first_call["failed"] = [data for i, data in enumerate(records) if i % 2]
        first_call["accepted"] = [data for i, data in enumerate(records) if not i % 2]
        first_call["size"] = len(records)
        return first_call["accepted"]  # type: ignore[no-any-return]

    def report_failures(http_response: Any, parsed: dict[str, Any]) -> None:
        if "answered" in first_call or "size" not in first_call:
            return
        first_call["answered"] = True
        accepted = iter(parsed["RequestResponses"])
        parsed["RequestResponses"] = [
            {"ErrorCode": "ServiceUnavailableException", "ErrorMessage": "Slow down."}
            if i % 2
            else next(accepted)
            for i in range(first_call["size"])
        ]
        parsed["FailedPutCount"] = first_call["size"] // 2

    firehose_calls.rewrite_records = fail_half
    firehose_calls.after_call = report_failures
    dxtrack.configure(**streams.settings(flush_interval=0.5))
    for i in range(12_000):  # several Firehose records of 1,000 KiB in one call
        dxtrack.metric("partial", i, metadata={"pad": "x" * 200})
    assert dxtrack.flush(timeout=60) is True
    assert first_call["size"] >= 2 and first_call["failed"]
    later = [data for call in firehose_calls.log.calls[1:] for data in call]
    for data in first_call["failed"]:
        assert later.count(data) == 1, "each failed entry is sent again, once"
    for data in first_call["accepted"]:
        assert data not in later, "an accepted entry is never sent again"
    assert_exactly_once(streams.records("metric"), 12_000)
    assert dxtrack.stats()["retried"] > 0


def test_whole_call_throttling_is_retried(streams: Streams, firehose_calls: Hooks) -> None:
    """ServiceUnavailableException for the whole call is retried until it goes through."""
    throttled: list[int] = []  # the records in each refused call

    def throttle(params: dict[str, Any]) -> Any:
        if len(throttled) < 3:
            body = json.loads(params["body"])
            throttled.append(sum(base64.b64decode(r["Data"]).count(b"\n") for r in body["Records"]))
            return error_response("ServiceUnavailableException", 400, "Slow down.")
        return None

    firehose_calls.before_call = throttle
    dxtrack.configure(**streams.settings())
    for i in range(100):
        dxtrack.metric("throttled", i)
    assert dxtrack.flush(timeout=60) is True
    assert len(throttled) == 3
    assert_exactly_once(streams.records("metric"), 100)
    assert dxtrack.stats()["retried"] == sum(throttled) >= 100


def test_missing_stream_is_logged_once_with_the_fix_and_spooled(
    streams: Streams, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    """No such stream: one clear log line naming the stream; records spooled, then delivered
    by the next configure() once the stream exists."""
    spool = tmp_path / "spool-missing"
    settings = streams.settings(metric_stream="not-created-yet", spool_dir=spool)
    with caplog.at_level(logging.ERROR, logger="dxtrack"):
        dxtrack.configure(**settings)
        for i in range(50):
            dxtrack.metric("lost?", i)
        assert dxtrack.flush(timeout=30) is False
        for i in range(50, 60):
            dxtrack.metric("lost?", i)
        dxtrack.flush(timeout=5)
    lines = [r.getMessage() for r in caplog.records if "not-created-yet" in r.getMessage()]
    assert len(lines) == 1, lines
    assert "does not exist" in lines[0] and "metric_stream" in lines[0]
    assert dxtrack.stats()["spooled"] == 60

    import boto3

    boto3.client("firehose").create_delivery_stream(
        DeliveryStreamName="not-created-yet",
        ExtendedS3DestinationConfiguration={
            "RoleARN": "arn:aws:iam::123456789012:role/firehose",
            "BucketARN": f"arn:aws:s3:::{streams.bucket}",
            "Prefix": "metric/",
        },
    )
    dxtrack.configure(**settings)
    assert dxtrack.flush(timeout=30) is True
    assert sorted(r["value"] for r in streams.records("metric")) == [float(i) for i in range(60)]


def test_kill_9_keeps_everything_flush_acknowledged(streams: Streams, tmp_path: Path) -> None:
    """After kill -9, every record that flush() had acknowledged is in S3."""
    acked = tmp_path / "acked.txt"
    result = run_program(
        f"""
        import os, signal
        import dxtrack
        dxtrack.configure()
        for batch in range(5):
            for i in range(400):
                dxtrack.metric("acked", batch * 400 + i)
            if dxtrack.flush(timeout=30):
                with open({str(acked)!r}, "a") as f:
                    f.write(f"{{(batch + 1) * 400}}\\n")
        for i in range(10_000):
            dxtrack.metric("unacked", i)
        os.kill(os.getpid(), signal.SIGKILL)
        """,
        streams.env(),
        tmp_path,
    )
    assert result.returncode == -9
    acknowledged = int(acked.read_text().split()[-1])
    assert acknowledged == 2_000
    landed = {r["value"] for r in streams.records("metric") if r["metric_name"] == "acked"}
    assert landed >= {float(i) for i in range(acknowledged)}


def test_forked_children_deliver_their_own_records(streams: Streams, tmp_path: Path) -> None:
    """Children of fork() (by hand and by multiprocessing) ship their own records once."""
    result = run_program(
        """
        import multiprocessing, os, sys
        import dxtrack
        dxtrack.configure()
        for i in range(100):
            dxtrack.metric("parent", i)

        def child(n):
            for i in range(100):
                dxtrack.metric("child", i, metadata={"child": n})

        pids = []
        for n in range(2):
            pid = os.fork()
            if pid == 0:
                child(n)
                sys.exit(0)
            pids.append(pid)
        procs = [multiprocessing.get_context("fork").Process(target=child, args=(n,))
                 for n in (2, 3)]
        for p in procs:
            p.start()
        for pid in pids:
            assert os.waitpid(pid, 0)[1] == 0
        for p in procs:
            p.join()
            assert p.exitcode == 0
        for i in range(100, 200):
            dxtrack.metric("parent", i)
        """,
        streams.env(),
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    records = streams.records("metric")
    assert_exactly_once(records, 600)
    parent = [r for r in records if r["metric_name"] == "parent"]
    assert sorted(r["value"] for r in parent) == [float(i) for i in range(200)]
    by_child: dict[int, list[dict[str, Any]]] = {}
    for r in records:
        if r["metric_name"] == "child":
            by_child.setdefault(r["metadata"]["child"], []).append(r)
    assert sorted(by_child) == [0, 1, 2, 3]
    producers = {r["producer_id"] for r in parent}
    assert len(producers) == 1
    for rows in by_child.values():
        assert len(rows) == 100
        assert {r["producer_id"] for r in rows}.isdisjoint(producers)
        assert sorted(r["seq"] for r in rows) == list(range(1, 101))


def test_synchronous_mode_returns_once_delivered(streams: Streams) -> None:
    """use_async_requests=False: when metric() returns, the record is already in S3."""
    dxtrack.configure(**streams.settings(use_async_requests=False))
    dxtrack.metric("sync", 1)
    assert [r["value"] for r in streams.records("metric")] == [1.0]
    try:
        raise ValueError("sync error")
    except ValueError:
        dxtrack.error()
    assert streams.records("error")[0]["exception"]["value"] == "sync error"


def test_buffered_metrics_are_sent_on_flush_metrics_buffer(streams: Streams) -> None:
    """buffer_metrics=True in prod: nothing is sent until flush_metrics_buffer()."""
    dxtrack.configure(**streams.settings(buffer_metrics=True))
    for i in range(100):
        dxtrack.metric("held", i)
    assert dxtrack.flush(timeout=10) is True
    assert streams.records("metric") == []
    dxtrack.flush_metrics_buffer()
    assert dxtrack.flush(timeout=30) is True
    assert_exactly_once(streams.records("metric"), 100)


def test_buffered_metrics_are_sent_at_exit(streams: Streams, tmp_path: Path) -> None:
    """Held metrics of a job that never flushes them are sent at exit."""
    result = run_program(
        """
        import dxtrack
        dxtrack.configure(buffer_metrics=True)
        for i in range(300):
            dxtrack.metric("held.exit", i)
        """,
        streams.env(),
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert_exactly_once(streams.records("metric"), 300)


def test_lambda_handler_delivers_before_it_returns(streams: Streams) -> None:
    """@flush_after: when the handler returns, its records are in S3, before any freeze."""

    class LambdaContext:
        def get_remaining_time_in_millis(self) -> int:
            return 10_000

    dxtrack.configure(**streams.settings(flush_interval=60))

    @dxtrack.flush_after
    def handler(event: dict[str, Any], context: Any) -> str:
        dxtrack.metric("lambda.invocations", 1, metadata=event)
        return "ok"

    assert handler({"request": "r1"}, LambdaContext()) == "ok"
    assert [r["metadata"] for r in streams.records("metric")] == [{"request": "r1"}]


def test_in_process_mock_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    """Users' own unit tests with moto's in-process mock_aws work with no endpoint set."""
    from moto import mock_aws

    for name in ("AWS_ENDPOINT_URL",):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        streams = Streams.create()
        dxtrack.configure(**streams.settings())
        dxtrack.metric("mocked", 7)
        assert dxtrack.flush(timeout=30) is True
        assert [r["value"] for r in streams.records("metric")] == [7.0]
        dxtrack.shutdown()


def test_a_full_buffer_makes_the_caller_wait_for_room_and_loses_nothing(
    streams: Streams, tmp_path: Path
) -> None:
    """Past max_buffer, the caller waits for the builder to make room: none is lost, and none
    is built on the caller's thread while the builder can keep up."""
    spool = tmp_path / "spool-overflow"
    dxtrack.configure(**streams.settings(max_buffer=100, flush_interval=30, spool_dir=spool))
    for i in range(1_000):
        dxtrack.metric("overflow", i)
    stats = dxtrack.stats()
    assert stats.get("overflowed", 0) == 0 and stats["dropped"] == 0
    assert dxtrack.flush(timeout=60) is True
    assert_exactly_once(streams.records("metric"), 1_000)


def test_records_land_without_a_flush_even_with_a_long_flush_interval(
    streams: Streams,
) -> None:
    """A few records land without a flush, even with a long flush_interval (what a kill -9 can
    take stays small)."""
    dxtrack.configure(**streams.settings(flush_interval=30))
    for i in range(10):
        dxtrack.metric("soon", i)
    wait_until(lambda: len(streams.records("metric")) == 10, 10, "10 records to land unflushed")
    assert_exactly_once(streams.records("metric"), 10)


def test_a_caller_that_waits_too_long_builds_its_records_itself(
    streams: Streams, tmp_path: Path
) -> None:
    """When the builder makes no room within the wait, the caller builds its records and
    hands them on: still none is lost."""
    spool = tmp_path / "spool-overflow-stuck"
    dxtrack.configure(**streams.settings(max_buffer=100, flush_interval=30, spool_dir=spool))
    shipper = current_client().shipper
    assert shipper is not None
    with shipper._build_lock:  # the builder is stuck for as long as this is held
        for i in range(300):
            dxtrack.metric("overflow", i)
        assert dxtrack.stats()["overflowed"] == 200
    assert dxtrack.flush(timeout=60) is True
    assert_exactly_once(streams.records("metric"), 300)


def test_torn_and_corrupt_spool_lines_are_skipped_and_counted(
    streams: Streams, tmp_path: Path
) -> None:
    """A spool segment with a torn tail and a garbage line replays what is whole."""
    spool = tmp_path / "spool-corrupt"
    directory = spool_directory(spool, "metric")
    directory.mkdir(parents=True, mode=0o700)
    good = [
        b'{"context":"c","host":"h","id":"%032x","metadata":{},"metric_name":"m",'
        b'"producer_id":"%032x","run_id":"r","seq":%d,"stage":"prod","timestamp":1.0,'
        b'"value":%d.0}' % (i, 1, i + 1, i)
        for i in range(3)
    ]
    segment = directory / "seg-1-old-000001.jsonl"
    spool.chmod(0o700)
    segment.write_bytes(good[0] + b"\n" + b"not json\n" + good[1] + b"\n" + good[2] + b'\n{"tor')
    dxtrack.configure(**streams.settings(spool_dir=spool))
    assert dxtrack.flush(timeout=30) is False  # two lines were lost to corruption
    assert sorted(r["value"] for r in streams.records("metric")) == [0.0, 1.0, 2.0]
    assert dxtrack.stats()["dropped.spool_corrupt"] == 2
    assert not segment.exists()


def test_connection_errors_are_retried(
    streams: Streams, firehose_calls: Hooks, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing listens at the endpoint at first (connection refused); once a server answers
    there, every record is delivered."""
    from moto.server import ThreadedMotoServer

    from tests.syslog_daemon import free_port

    port = free_port()
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")
    refused = threading.Event()

    def watch(records: list[bytes]) -> None:
        if dxtrack.stats()["retried"]:
            refused.set()

    dxtrack.configure(**streams.settings())
    for i in range(200):
        dxtrack.metric("refused", i)
    firehose_calls.rewrite_records = watch
    while not refused.wait(0.05):  # until a send has failed and a retry comes
        assert dxtrack.stats()["delivered"] == 0
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()  # moto's servers share one in-process backend: the streams exist here too
    try:
        assert dxtrack.flush(timeout=60) is True
        assert_exactly_once(streams.records("metric"), 200)
    finally:
        dxtrack.shutdown(timeout=5)
        server.stop()


def test_credentials_and_region_come_from_the_options(
    streams: Streams, firehose_calls: Hooks, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Explicit keys sign the requests and region_name picks the region; without region_name,
    boto3's configured region is used."""
    import botocore.handlers

    seen: list[str] = []

    def capture(request: Any, **_: Any) -> None:
        if "PutRecordBatch" in request.headers.get("X-Amz-Target", b"").decode():
            seen.append(request.headers["Authorization"].decode())

    botocore.handlers.BUILTIN_HANDLERS.append(("before-send.firehose", capture))
    try:
        dxtrack.configure(
            **streams.settings(
                aws_access_key_id="AKIAEXPLICIT", aws_secret_access_key="s", region_name="eu-west-1"
            )
        )
        dxtrack.metric("signed", 1)
        assert dxtrack.flush(timeout=30) is True
        assert "Credential=AKIAEXPLICIT/" in seen[-1] and "/eu-west-1/firehose/" in seen[-1]

        monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-2")
        dxtrack.configure(**streams.settings(metric_stream="not-in-us-east-2"))
        dxtrack.metric("elsewhere", 1)
        dxtrack.flush(timeout=10)
        assert "Credential=testing/" in seen[-1] and "/us-east-2/firehose/" in seen[-1]
    finally:
        botocore.handlers.BUILTIN_HANDLERS.remove(("before-send.firehose", capture))


def test_region_defaults_to_eu_west_1(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """With no region_name and no region in boto3's configuration, the reference's region."""
    from dxtrack.config import build_config
    from dxtrack.sinks.firehose import FirehoseSink

    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "k")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "s")
    sink = FirehoseSink("s", "metric", build_config(context="c", stage="prod"))
    sink.start()
    assert sink.region == "eu-west-1"
    sink.close()


def test_long_outage_spools_then_recovers_in_the_same_process(
    streams: Streams, firehose_calls: Hooks
) -> None:
    """An outage longer than the retry budget sends records to the spool; once the sink answers
    again (a probe gets through), the spool is replayed in the same process."""
    spooled = threading.Event()

    def watch(http_response: Any, parsed: dict[str, Any]) -> None:
        if http_response.status_code >= 500 and dxtrack.stats()["spooled"]:
            spooled.set()

    firehose_calls.after_call = watch
    streams.delete_bucket()
    dxtrack.configure(**streams.settings(retry_budget=0.5))
    for i in range(5_000):  # several Firehose records: one stays as the probe, the rest spool
        dxtrack.metric("long.outage", i, metadata={"pad": "p" * 500})
    assert spooled.wait(30), "the retry budget ran out and records were spooled"
    for i in range(5_000, 6_000):
        dxtrack.metric("long.outage", i)
    streams.create_bucket()
    assert dxtrack.flush(timeout=60) is True
    records = streams.records("metric")
    assert sorted(r["value"] for r in records) == [float(i) for i in range(6_000)]
    assert_exactly_once(records, 6_000)
    assert dxtrack.stats()["replayed"] > 0


def test_synchronous_mode_spools_before_returning_when_firehose_fails(
    streams: Streams, tmp_path: Path
) -> None:
    """use_async_requests=False during an outage: the call returns once the record is spooled,
    and the next configure() delivers it."""
    spool = tmp_path / "spool-sync"
    streams.delete_bucket()
    dxtrack.configure(**streams.settings(use_async_requests=False, spool_dir=spool))
    dxtrack.metric("sync.outage", 1)
    assert dxtrack.stats()["spooled"] == 1
    assert list(spool.rglob("seg-*.jsonl"))
    streams.create_bucket()
    dxtrack.configure(**streams.settings(use_async_requests=False, spool_dir=spool))
    assert dxtrack.flush(timeout=30) is True
    assert [r["value"] for r in streams.records("metric")] == [1.0]


def test_default_spool_dir_is_the_per_user_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without spool_dir or DXTRACK_SPOOL_DIR, the spool is under the user's cache directory."""
    from dxtrack.config import build_config
    from dxtrack.counters import Counters
    from dxtrack.log import LogOnce
    from dxtrack.wiring import default_spool_dir, routes

    monkeypatch.delenv("DXTRACK_SPOOL_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", "/tmp/dxtrack-cache-test")
    config = build_config(context="c", stage="prod", metric_stream="m", error_stream="e")
    assert config.spool_dir is None
    made = routes(config, None, Counters(), LogOnce())
    assert default_spool_dir() == "/tmp/dxtrack-cache-test/dxtrack/spool"
    root = "/tmp/dxtrack-cache-test/dxtrack/spool/"
    assert [str(r.spool.directory) for r in made if r.spool] == [
        root + destination("prod", kind, REGION, os.environ.get("AWS_ENDPOINT_URL", "aws"))
        for kind in ("error", "metric")
    ]
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "thumbnailer")  # its home is read-only
    assert default_spool_dir() == "/tmp/dxtrack/spool"


def test_spool_is_capped_and_the_excess_counted(streams: Streams, tmp_path: Path) -> None:
    """During an outage the spool stops at max_spool_bytes; what doesn't fit is counted as
    dropped (spool_full), so a long outage can't fill the disk."""
    spool = tmp_path / "spool-capped"
    streams.delete_bucket()
    dxtrack.configure(
        **streams.settings(use_async_requests=False, spool_dir=spool, max_spool_bytes=20_000)
    )
    for i in range(200):  # about 330 bytes each: 66 kB in all
        dxtrack.metric("capped", i)
    stats = dxtrack.stats()
    directories = [d for d in spool.iterdir() if d.is_dir()]
    assert directories
    for directory in directories:  # the cap holds per destination
        on_disk = sum(p.stat().st_size for p in directory.rglob("seg-*.jsonl"))
        assert on_disk <= 20_000, directory.name
    assert stats["spooled"] > 0 and stats["dropped.spool_full"] > 0
    assert stats["dropped"] == stats["dropped.spool_full"]


@pytest.mark.parametrize(
    "items",
    [
        [b'{"a":1}\n', b'{"b":"\\u00e9"}\n{"c":2}\n'],
        [bytes(range(256)), b"", b"x" * 3001],
        [],
    ],
)
def test_request_body_is_the_one_botocore_would_serialise(items: list[bytes]) -> None:
    """The sink writes PutRecordBatch's JSON body itself (botocore's serialiser is the shipper's
    largest cost); it must decode to exactly what botocore would have sent."""
    import botocore.serialize
    import botocore.session

    from dxtrack.sinks.firehose import request_body

    stream = 'stream-\u00e9"\\name'
    model = botocore.session.get_session().get_service_model("firehose")
    params = {"DeliveryStreamName": stream, "Records": [{"Data": data} for data in items]}
    expected = botocore.serialize.create_serializer(
        "json", include_validation=False
    ).serialize_to_request(params, model.operation_model("PutRecordBatch"))["body"]
    assert json.loads(request_body(stream, items)) == json.loads(expected)
