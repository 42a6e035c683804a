"""Records: field names, timestamps, ids, tracebacks and strict JSON, as DESIGN.md says."""

from __future__ import annotations

import json
import math
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import xxhash
from freezegun import freeze_time

import dxtrack
from dxtrack.records import METRIC, RecordBuilder
from dxtrack.tracebacks import type_name as exception_type_name
from tests.conftest import assert_valid, read_jsonl

OUT = Path(".dxtrack_output")


def metrics() -> list[dict]:
    return read_jsonl(OUT / "metric.jsonl")


def errors() -> list[dict]:
    return read_jsonl(OUT / "error.jsonl")


def test_metric_record_has_the_readme_fields() -> None:
    """A metric carries the README's fields, with metadata merged over default_metadata."""
    dxtrack.configure(
        context="shop-scraper", stage="test", run_id="r1", default_metadata={"team": "a", "x": 0}
    )
    dxtrack.metric("products.downloaded", 42, metadata={"shop": "s1", "x": 1})
    (record,) = metrics()
    assert_valid(record, "metric")
    for field in ("context", "metric_name", "value", "stage", "metadata", "run_id", "timestamp"):
        assert field in record
    assert record["context"] == "shop-scraper"
    assert record["metric_name"] == "products.downloaded"
    assert record["value"] == 42.0 and isinstance(record["value"], float)
    assert record["stage"] == "test"
    assert record["run_id"] == "r1"
    assert record["metadata"] == {"team": "a", "x": 1, "shop": "s1"}


def test_error_record_has_the_readme_fields() -> None:
    """error() inside except records type, value and a printable traceback."""
    dxtrack.configure(context="c", stage="test", run_id="r1", default_metadata={"team": "a"})

    def failing() -> None:
        raise KeyError("missing-key")

    try:
        failing()
    except KeyError:
        dxtrack.error(metadata={"row": 7})
    (record,) = errors()
    assert_valid(record, "error")
    assert record["exception"]["type"] == "KeyError"
    assert record["exception"]["value"] == "'missing-key'"
    traceback = record["exception"]["traceback"]
    assert traceback.startswith("Traceback (most recent call last):")
    assert "in failing" in traceback and "KeyError: 'missing-key'" in traceback
    assert record["metadata"] == {"team": "a", "row": 7}
    assert (record["context"], record["stage"], record["run_id"]) == ("c", "test", "r1")


@freeze_time("2024-03-05 06:07:08.123456")
def test_timestamp_is_unix_seconds_utc() -> None:
    """The default timestamp is the call's time as unix seconds, UTC, with microseconds."""
    dxtrack.configure(context="c", stage="test")
    dxtrack.metric("m", 1)
    expected = datetime(2024, 3, 5, 6, 7, 8, 123456, tzinfo=timezone.utc).timestamp()
    assert metrics()[0]["timestamp"] == pytest.approx(expected, abs=1e-6)


def test_explicit_timestamps_naive_is_utc_and_aware_is_converted() -> None:
    """A naive datetime counts as UTC; an aware one is converted to UTC."""
    dxtrack.configure(context="c", stage="test")
    dxtrack.metric("m", 1, timestamp=datetime(year=1985, month=11, day=20))
    plus_two = timezone(timedelta(hours=2))
    dxtrack.metric("m", 2, timestamp=datetime(1985, 11, 20, 2, 0, tzinfo=plus_two))
    first, second = metrics()
    assert first["timestamp"] == 501292800.0
    assert second["timestamp"] == 501292800.0


@pytest.mark.parametrize("bad", ["2020-01-01", 1234567890, None.__class__])
def test_timestamp_must_be_a_datetime(bad: object) -> None:
    """A timestamp that is not a datetime raises ValueError naming it."""
    dxtrack.configure(context="c", stage="test")
    with pytest.raises(ValueError, match="timestamp"):
        dxtrack.metric("m", 1, timestamp=bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", ["abc", None, [1], object()])
def test_metric_value_must_be_a_number(bad: object) -> None:
    """A value float() refuses raises ValueError naming the argument and the value."""
    dxtrack.configure(context="c", stage="test")
    with pytest.raises(ValueError, match=r"value.*" + type(bad).__name__):
        dxtrack.metric("m", bad)  # type: ignore[arg-type]
    assert not (OUT / "metric.jsonl").exists()


@pytest.mark.parametrize("bad", ["a=1", 5, ["a"], ("a", 1)])
def test_metadata_must_be_a_dict(bad: object) -> None:
    """metric(), error() and errors() refuse metadata that is not a dict."""
    dxtrack.configure(context="c", stage="test")
    with pytest.raises(ValueError, match="metadata"):
        dxtrack.metric("m", 1, metadata=bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="metadata"):
        dxtrack.errors([ValueError()], metadata=bad)  # type: ignore[arg-type]
    try:
        raise ValueError("x")
    except ValueError:
        with pytest.raises(ValueError, match="metadata"):
            dxtrack.error(metadata=bad)  # type: ignore[arg-type]


def test_numeric_strings_and_decimals_are_values() -> None:
    """Anything float() accepts is a value; NaN and infinities become null (strict JSON)."""
    dxtrack.configure(context="c", stage="test")
    for value in ("1.5", Decimal("2.25"), 3, True, math.nan, math.inf):
        dxtrack.metric("m", value)  # type: ignore[arg-type]
    assert [r["value"] for r in metrics()] == [1.5, 2.25, 3.0, 1.0, None, None]


def test_id_is_the_content_hash_of_the_record() -> None:
    """id is xxh3-128 over the record's canonical JSON without the id."""
    dxtrack.configure(context="c", stage="test", default_metadata={"z": 1, "a": [1, 2]})
    dxtrack.metric("m", 1, metadata={"b": "é"})
    line = (OUT / "metric.jsonl").read_bytes().rstrip(b"\n")
    record = json.loads(line)
    record_id = record.pop("id")
    canonical = json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert xxhash.xxh3_128_hexdigest(canonical.encode()) == record_id


def test_identical_calls_get_distinct_ids() -> None:
    """Two identical metrics in the same instant are two records, not one duplicate."""
    with freeze_time("2024-01-01"):
        dxtrack.configure(context="c", stage="test")
        dxtrack.metric("m", 1)
        dxtrack.metric("m", 1)
    first, second = metrics()
    assert first["timestamp"] == second["timestamp"]
    assert first["id"] != second["id"]
    assert (first["seq"], second["seq"]) == (1, 2)


def test_builder_is_deterministic_for_the_same_event() -> None:
    """Building the same event with the same sequence number gives the same bytes (and id)."""
    builder = RecordBuilder(
        context="c",
        stage="prod",
        run_id="r",
        default_metadata={"a": 1},
        producer_id="0" * 32,
        host="h",
    )
    event = (METRIC, 1700000000.5, "m", 1.0, {"b": {2, 1}, "c": b"\xff"}, None)
    assert builder.build(event, 3) == builder.build(event, 3)
    assert builder.build(event, 3) != builder.build(event, 4)


def test_errors_keeps_tracebacks_and_null_for_never_raised() -> None:
    """errors() keeps the traceback of raised exceptions and null for never-raised ones."""
    dxtrack.configure(context="c", stage="test")
    caught = []
    for i in range(3):
        try:
            raise ValueError(str(i))
        except ValueError as e:
            caught.append(e)
    caught.append(RuntimeError("never raised"))
    dxtrack.errors(caught, metadata={"batch": 1})
    records = errors()
    assert [r["exception"]["value"] for r in records] == ["0", "1", "2", "never raised"]
    for record in records[:3]:
        assert "raise ValueError(str(i))" in record["exception"]["traceback"]
    assert records[3]["exception"]["traceback"] is None
    assert records[3]["exception"]["type"] == "RuntimeError"
    assert all(r["metadata"] == {"batch": 1} for r in records)


def test_chained_exceptions_are_in_the_traceback() -> None:
    """The traceback text includes the cause of a chained exception."""
    dxtrack.configure(context="c", stage="test")
    try:
        try:
            {}["k"]
        except KeyError as inner:
            raise RuntimeError("outer") from inner
    except RuntimeError:
        dxtrack.error()
    traceback = errors()[0]["exception"]["traceback"]
    assert "KeyError: 'k'" in traceback and "direct cause" in traceback


def test_non_builtin_exception_type_is_qualified() -> None:
    """Exception types outside builtins carry their module."""

    class ParseError(Exception):
        pass

    assert exception_type_name(ValueError) == "ValueError"
    assert exception_type_name(ParseError) == f"{__name__}.{ParseError.__qualname__}"
    assert exception_type_name(json.JSONDecodeError) == "json.decoder.JSONDecodeError"


def test_fingerprint_groups_the_same_error_and_separates_others() -> None:
    """The same error from the same place shares a fingerprint; another place doesn't."""
    dxtrack.configure(context="c", stage="test")

    def fail(kind: type[Exception]) -> None:
        raise kind("x")

    for i in range(2):
        try:
            fail(ValueError)
        except ValueError:
            dxtrack.error(metadata={"i": i})
    try:
        fail(KeyError)
    except KeyError:
        dxtrack.error()
    first, second, third = errors()
    assert first["fingerprint"] == second["fingerprint"]
    assert first["fingerprint"] != third["fingerprint"]
    assert first["id"] != second["id"]


def test_error_outside_except_records_nulls_and_does_not_raise() -> None:
    """error() with no exception being handled still records, with a null exception."""
    dxtrack.configure(context="c", stage="test")
    dxtrack.error(metadata={"where": "nowhere"})
    (record,) = errors()
    assert record["exception"] == {
        "type": None,
        "value": None,
        "traceback": None,
        "handled": True,
        "mechanism": "error",
    }
    assert record["fingerprint"] is None and record["log"] is None


def test_metadata_is_a_snapshot_at_call_time() -> None:
    """Mutating a metadata dict after the call does not change the record."""
    dxtrack.configure(context="c", stage="test")
    metadata = {"i": 0}
    for i in range(3):
        metadata["i"] = i
        dxtrack.metric("m", i, metadata=metadata)
    assert [r["metadata"]["i"] for r in metrics()] == [0, 1, 2]


def test_user_str_that_raises_is_recorded_not_raised() -> None:
    """An exception whose __str__ raises is still recorded."""

    class Nasty(Exception):
        def __str__(self) -> str:
            raise RuntimeError("no str for you")

    dxtrack.configure(context="c", stage="test")
    dxtrack.errors([Nasty()])
    assert "str() failed" in errors()[0]["exception"]["value"]


def test_oversized_metadata_is_shortened_with_a_marker() -> None:
    """A record over one Firehose record (1,000 KiB) is cut down, not dropped."""
    dxtrack.configure(context="c", stage="test")
    dxtrack.metric("m", 1, metadata={"blob": "x" * 3_000_000, "small": "kept"})
    line = (OUT / "metric.jsonl").read_bytes()
    assert len(line) <= 1_000 * 1024
    record = json.loads(line)
    assert record["metadata"]["small"] == "kept"
    assert "truncated" in record["metadata"]["blob"]
    assert record["value"] == 1.0


def _divide(x: int) -> float:
    return 10 / x


def _loop_then_fail(items: list[int]) -> None:
    for item in items:
        if item > 2:
            _divide(0)


def _chained() -> None:
    try:
        _loop_then_fail([1, 2, 3])
    except ZeroDivisionError as exc:
        raise RuntimeError("wrapped") from exc


def _in_handler() -> None:
    try:
        {}["missing"]
    except KeyError:
        _divide(0)


@pytest.mark.parametrize("failing", [_chained, _in_handler, lambda: _loop_then_fail([5])])
def test_traceback_text_matches_python(failing: Any) -> None:
    """The traceback formatted on the shipper is Python's own, line for line (no carets)."""
    import re
    import sys
    import traceback

    from dxtrack import tracebacks

    try:
        failing()
    except Exception:
        exc_type, exc, tb = sys.exc_info()
        assert exc_type is not None and exc is not None
        expected = "".join(traceback.format_exception(exc_type, exc, tb))
        trace = tracebacks.capture(exc, tb)
    assert trace is not None
    ours = tracebacks.format(exc_type, str(exc), trace)
    caret_lines = re.compile(r"^\s*[~^]+\s*$\n", re.MULTILINE)
    assert ours == caret_lines.sub("", expected)


def test_errors_records_non_exceptions_by_type_and_text() -> None:
    """An item of errors() that is not an exception is recorded, not raised on."""
    dxtrack.configure(context="c", stage="test")
    dxtrack.errors(["not an exception", 42])
    records = errors()
    assert [(r["exception"]["type"], r["exception"]["value"]) for r in records] == [
        ("str", "not an exception"),
        ("int", "42"),
    ]
    assert all(r["exception"]["traceback"] is None for r in records)


def test_stage_defaults_to_test() -> None:
    """Without a stage, records go to the local files, never to AWS."""
    dxtrack.configure(context="c")
    assert dxtrack.stage == "test"
    dxtrack.metric("m", 1)
    assert metrics()[0]["stage"] == "test"
