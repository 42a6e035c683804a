"""capture_errors, timer and lambda_handler."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

import dxtrack
from tests.capture_programs import run_program
from tests.test_records import errors, metrics


def test_capture_errors_records_and_reraises_as_a_context_manager_and_decorator() -> None:
    """Each escaping exception is recorded once (decorator, not handled) with the block's
    metadata, then raised on; a block that does not raise records nothing."""
    dxtrack.configure(context="c", stage="test", default_metadata={"job": "j"})

    @dxtrack.capture_errors(metadata={"step": "load"})
    def load(fail: bool) -> str:
        if fail:
            raise OSError("disk gone")
        return "ok"

    assert load(False) == "ok"
    with pytest.raises(OSError, match="disk gone"):
        load(True)
    with pytest.raises(KeyError), dxtrack.capture_errors():
        raise KeyError("k")
    with dxtrack.capture_errors():
        pass
    first, second = errors()
    assert first["exception"]["type"] == "OSError" and second["exception"]["type"] == "KeyError"
    assert first["metadata"] == {"job": "j", "step": "load"}
    assert {(e["exception"]["mechanism"], e["exception"]["handled"]) for e in errors()} == {
        ("decorator", False)
    }


def test_nested_capture_errors_and_error_record_an_exception_once() -> None:
    """The innermost block records it; outer blocks see it was recorded already. An exception
    that error() recorded inside the block is not recorded again either."""
    dxtrack.configure(context="c", stage="test")
    with pytest.raises(ValueError), dxtrack.capture_errors(), dxtrack.capture_errors():
        raise ValueError("once")
    with pytest.raises(TypeError), dxtrack.capture_errors():
        try:
            raise TypeError("recorded by error()")
        except TypeError:
            dxtrack.error()
            raise
    assert [(e["exception"]["type"], e["exception"]["mechanism"]) for e in errors()] == [
        ("ValueError", "decorator"),
        ("TypeError", "error"),
    ]


def test_capture_errors_ignores_keyboard_interrupt_and_system_exit() -> None:
    """They end a program on purpose."""
    dxtrack.configure(context="c", stage="test")
    for stop in (KeyboardInterrupt, SystemExit):
        with pytest.raises(stop), dxtrack.capture_errors():
            raise stop()
    assert not (Path(".dxtrack_output") / "error.jsonl").exists()


def test_capture_errors_and_timer_wrap_coroutine_functions() -> None:
    """Decorating an async function wraps its run, not the creation of its coroutine."""
    dxtrack.configure(context="c", stage="test")

    @dxtrack.timer("fetch.seconds")
    @dxtrack.capture_errors()
    async def fetch(delay: float, fail: bool) -> int:
        await asyncio.sleep(delay)
        if fail:
            raise ConnectionError("reset")
        return 1

    assert asyncio.run(fetch(0.05, False)) == 1
    with pytest.raises(ConnectionError):
        asyncio.run(fetch(0.0, True))
    slow, fast = (m["value"] for m in metrics())
    assert slow >= 0.05 > fast >= 0
    assert [e["exception"]["type"] for e in errors()] == ["ConnectionError"]


def test_timer_records_elapsed_seconds_even_when_the_block_raises() -> None:
    """Monotonic seconds, as a metric with the timer's metadata."""
    dxtrack.configure(context="c", stage="test")
    with dxtrack.timer("step.seconds", metadata={"step": "a"}):
        started = time.monotonic()
        while time.monotonic() - started < 0.02:
            pass
    with pytest.raises(RuntimeError), dxtrack.timer("step.seconds", metadata={"step": "b"}):
        raise RuntimeError("timed anyway")

    @dxtrack.timer("call.seconds")
    def call() -> str:
        return "done"

    assert call() == "done"
    recorded = {(m["metric_name"], m["metadata"].get("step")): m["value"] for m in metrics()}
    assert set(recorded) == {("step.seconds", "a"), ("step.seconds", "b"), ("call.seconds", None)}
    assert recorded[("step.seconds", "a")] >= 0.02


def test_helpers_refuse_bad_arguments_with_a_value_error() -> None:
    """The metric name must be a non-empty string and metadata a dict, named in the message."""
    with pytest.raises(ValueError, match="metric_name"):
        dxtrack.timer("")
    with pytest.raises(ValueError, match="metric_name"):
        dxtrack.timer(42)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="metadata"):
        dxtrack.timer("t", metadata=["not", "a", "dict"])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="metadata"):
        dxtrack.capture_errors(metadata="shop=a")  # type: ignore[arg-type]


class LambdaContext:
    """What AWS Lambda passes as the handler's second argument."""

    def __init__(self, request_id: str, millis_left: int = 30_000) -> None:
        self.aws_request_id = request_id
        self.function_name = "ingest"
        self._millis_left = millis_left

    def get_remaining_time_in_millis(self) -> int:
        return self._millis_left


def test_lambda_handler_tags_the_invocations_records_and_records_what_escapes() -> None:
    """aws_request_id, function_name and cold_start on every record of an invocation (not
    after it); an escaping exception recorded once (lambda, not handled) and raised on."""
    dxtrack.configure(context="c", stage="test", default_metadata={"team": "data"})

    @dxtrack.lambda_handler
    def handler(event: dict[str, Any], context: Any) -> str:
        dxtrack.metric("rows", event["rows"], metadata={"source": "s3"})
        try:
            raise KeyError("handled inside")
        except KeyError:
            dxtrack.error()
        if event.get("fail"):
            raise RuntimeError("invocation failed")
        return "ok"

    assert handler({"rows": 3}, LambdaContext("req-1")) == "ok"
    with pytest.raises(RuntimeError, match="invocation failed"):
        handler({"rows": 4, "fail": True}, LambdaContext("req-2"))
    dxtrack.metric("outside", 1)
    first, second, outside = metrics()
    assert first["metadata"] == {
        "team": "data",
        "source": "s3",
        "aws_request_id": "req-1",
        "function_name": "ingest",
        "cold_start": True,
    }
    assert second["metadata"]["aws_request_id"] == "req-2"
    assert second["metadata"]["cold_start"] is False
    assert outside["metadata"] == {"team": "data"}
    found = [
        (e["exception"]["type"], e["exception"]["mechanism"], e["metadata"]["aws_request_id"])
        for e in errors()
    ]
    assert found == [
        ("KeyError", "error", "req-1"),
        ("KeyError", "error", "req-2"),
        ("RuntimeError", "lambda", "req-2"),
    ]


def test_lambda_handler_delivers_before_returning(tmp_path: Path, streams: Any) -> None:
    """In stage prod, the invocation's records are in S3 when the handler returns, as Lambda
    freezes the process then."""
    outcome = run_program(
        tmp_path,
        """
        import dxtrack
        dxtrack.configure()

        class Context:
            aws_request_id, function_name = "req-9", "ingest"
            def get_remaining_time_in_millis(self):
                return 10_000

        @dxtrack.lambda_handler
        def handler(event, context):
            dxtrack.metric("invocations", 1)
            raise ValueError("bad event")

        try:
            handler({}, Context())
        except ValueError:
            pass
        import os
        os._exit(0)  # frozen: nothing runs after the handler returned, not even atexit
        """,
        env=streams.env(),
    )
    assert outcome.returncode == 0, outcome.describe()
    (metric,) = streams.records("metric")
    (error,) = streams.records("error")
    assert metric["metadata"]["aws_request_id"] == error["metadata"]["aws_request_id"] == "req-9"
    assert error["exception"]["mechanism"] == "lambda"


def test_generator_functions_are_wrapped_for_their_whole_iteration() -> None:
    """A generator (or async generator) is timed over its iteration, and an exception raised
    while it runs is recorded."""
    dxtrack.configure(context="c", stage="test")

    @dxtrack.timer("rows.seconds")
    @dxtrack.capture_errors()
    def rows() -> Any:
        yield 1
        time.sleep(0.05)
        raise ValueError("row 2 unreadable")

    @dxtrack.capture_errors()
    async def pages() -> Any:
        yield 1
        raise LookupError("page 2 missing")

    async def read_pages() -> list[Any]:
        return [page async for page in pages()]

    with pytest.raises(ValueError):
        list(rows())
    with pytest.raises(LookupError):
        asyncio.run(read_pages())
    (timed,) = metrics()
    assert timed["value"] >= 0.05
    assert [e["exception"]["type"] for e in errors()] == ["ValueError", "LookupError"]


def test_one_timer_object_entered_by_several_threads_and_within_itself() -> None:
    """Each entry is timed from its own start: nested entries and other threads' entries of
    the same object do not overwrite it."""
    import threading

    dxtrack.configure(context="c", stage="test")
    shared = dxtrack.timer("shared.seconds")
    inside = threading.Event()

    def slow() -> None:
        with shared:
            inside.set()
            time.sleep(0.3)

    thread = threading.Thread(target=slow)
    thread.start()
    inside.wait()
    with shared, shared:
        pass
    thread.join()
    values = sorted(m["value"] for m in metrics())
    assert len(values) == 3 and values[1] < 0.3 <= values[2]


def test_nested_lambda_handlers_keep_the_outer_invocations_metadata() -> None:
    """An inner decorated handler restores the outer one's metadata when it returns; a context
    whose clock raises never breaks the handler."""
    dxtrack.configure(context="c", stage="test")

    class BrokenContext(LambdaContext):
        def get_remaining_time_in_millis(self) -> int:
            raise RuntimeError("no clock here")

    @dxtrack.lambda_handler
    def inner(event: Any, context: Any) -> None:
        dxtrack.metric("inner", 1)

    @dxtrack.lambda_handler
    def outer(event: Any, context: Any) -> str:
        inner(event, BrokenContext("req-inner"))
        dxtrack.metric("outer", 1)
        return "done"

    assert outer({}, BrokenContext("req-outer")) == "done"
    assert [m["metadata"]["aws_request_id"] for m in metrics()] == ["req-inner", "req-outer"]


def test_a_record_made_while_dxtrack_writes_one_is_kept(tmp_path: Path) -> None:
    """A metadata value whose repr() logs an error runs inside the stage-test write; the log
    record it makes is written after it, not deadlocked on the write lock."""
    outcome = run_program(
        tmp_path,
        """
        import logging
        import dxtrack
        dxtrack.configure(context="c", stage="test")

        class Loud:
            def __repr__(self):
                logging.getLogger("loud").error("repr was called")
                return "Loud()"

        dxtrack.metric("m", 1, metadata={"value": Loud()})
        print("returned")
        """,
        timeout=30,
    )
    assert outcome.stdout == "returned\n", outcome.describe()
    assert outcome.metrics[0]["metadata"] == {"value": "Loud()"}
    assert [e["log"]["message"] for e in outcome.errors] == ["repr was called"]
