"""A call that stays in flight for long gets a copy on disk (its insurance against a crash):
deleted when Firehose accepts the call, kept and replayed once when it fails."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import dxtrack
from tests.aws import Hooks, Streams, error_response, spool_directory
from tests.test_firehose_delivery import assert_exactly_once


def spool_lines(directory: Path) -> int:
    return sum(path.read_bytes().count(b"\n") for path in directory.glob("seg-*.jsonl"))


def wait_for(predicate: Any, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


def hold_first_call(hooks: Hooks, answer: Any) -> tuple[threading.Event, threading.Event]:
    """Make the first PutRecordBatch wait until released, then answer with ``answer``."""
    entered, release = threading.Event(), threading.Event()

    def before_call(params: dict[str, Any]) -> Any:
        if entered.is_set():
            return None
        entered.set()
        release.wait(30)
        return answer

    hooks.before_call = before_call
    return entered, release


def test_a_slow_call_that_succeeds_leaves_nothing_on_disk(
    streams: Streams, firehose_calls: Hooks, tmp_path: Path
) -> None:
    spool = tmp_path / "spool-slow"
    entered, release = hold_first_call(firehose_calls, None)
    dxtrack.configure(**streams.settings(spool_dir=spool))
    for i in range(1_000):
        dxtrack.metric("slow", i)
    assert entered.wait(20)
    directory = spool_directory(spool, "metric")
    assert wait_for(lambda: spool_lines(directory) == 1_000), "the call in flight is on disk"
    release.set()
    assert dxtrack.flush(timeout=30) is True
    assert spool_lines(directory) == 0, "the copy is deleted once Firehose took the call"
    assert dxtrack.stats()["spooled"] == 0
    assert_exactly_once(streams.records("metric"), 1_000)


def test_a_slow_call_that_fails_is_replayed_once_from_its_copy(
    streams: Streams, firehose_calls: Hooks, tmp_path: Path
) -> None:
    spool = tmp_path / "spool-slow-failing"
    failure = error_response("ServiceUnavailableException", 503, "Slow down.")
    entered, release = hold_first_call(firehose_calls, failure)
    dxtrack.configure(**streams.settings(spool_dir=spool))
    for i in range(1_000):
        dxtrack.metric("slow", i)
    assert entered.wait(20)
    directory = spool_directory(spool, "metric")
    assert wait_for(lambda: spool_lines(directory) == 1_000)
    release.set()
    assert dxtrack.flush(timeout=30) is True
    assert dxtrack.stats()["spooled"] == 1_000
    assert dxtrack.stats()["replayed"] == 1_000
    assert spool_lines(directory) == 0
    assert_exactly_once(streams.records("metric"), 1_000)
