"""Every example of the reference README, run as written, in stage test."""

from __future__ import annotations

import socket
from datetime import datetime
from pathlib import Path

import pytest

from tests.conftest import read_jsonl

OUT = Path(".dxtrack_output")


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_importing_and_configuring_with_every_option() -> None:
    """The README's configure() call, with all its options, works in stage test."""
    from dxtrack import dxtrack

    dxtrack.configure(
        stage="test",
        context="<context-name>",
        run_id="<idenfier>",
        default_metadata={"team": "data"},
        profile_name="<aws-profile-name>",
        aws_access_key_id="<aws-access-key-id>",
        aws_secret_access_key="<aws-secret-access-key>",
        buffer_metrics=False,
        papertrail_hostport=f"127.0.0.1:{closed_port()}",
        use_async_requests=True,
    )
    dxtrack.metric("configured", 1)
    assert read_jsonl(OUT / "metric.jsonl")[0]["context"] == "<context-name>"
    # Papertrail is unreachable here: its records are counted as lost, never raised.
    assert dxtrack.shutdown(timeout=0.5) is False
    assert dxtrack.stats()["dropped"] >= 1


def some_func() -> None:
    raise ValueError("unexpected")


def test_tracking_handled_exceptions_and_reraising() -> None:
    """try/except with dxtrack.error(metadata=...) then `raise e` records and re-raises."""
    from dxtrack import dxtrack

    dxtrack.configure(stage="test", context="ctx", default_metadata={"team": "data"})
    with pytest.raises(ValueError, match="unexpected"):
        try:
            some_func()
        except Exception as e:
            dxtrack.error(metadata={"shop": "s1"})
            raise e
    (record,) = read_jsonl(OUT / "error.jsonl")
    assert record["exception"]["type"] == "ValueError"
    assert record["metadata"] == {"team": "data", "shop": "s1"}
    assert "some_func" in record["exception"]["traceback"]


def test_tracking_a_list_of_errors() -> None:
    """The README's loop of raised-and-caught errors, reported with dxtrack.errors()."""
    from dxtrack import dxtrack

    dxtrack.configure(stage="test", context="ctx")
    n_errors = 4
    errors = []
    for i in range(0, n_errors):
        try:
            raise ValueError(str(i))
        except ValueError as e:
            errors.append(e)
    dxtrack.errors(errors, metadata={"batch": "b1"})
    records = read_jsonl(OUT / "error.jsonl")
    assert [r["exception"]["value"] for r in records] == ["0", "1", "2", "3"]
    assert all(r["metadata"] == {"batch": "b1"} for r in records)


def test_basic_metric() -> None:
    """dxtrack.metric('<dotted_metric_name>', <value>, metadata={...})."""
    from dxtrack import dxtrack

    dxtrack.configure(stage="test", context="ctx")
    dxtrack.metric("products.downloaded.per_shop", 17, metadata={"shop": "s1"})
    (record,) = read_jsonl(OUT / "metric.jsonl")
    assert (record["metric_name"], record["value"], record["metadata"]) == (
        "products.downloaded.per_shop",
        17.0,
        {"shop": "s1"},
    )


def test_buffered_metrics_full_flow() -> None:
    """The README's buffer_metrics flow: 100 metrics, held, then flushed."""
    from dxtrack import dxtrack

    dxtrack.configure(stage="test", context="ctx", buffer_metrics=True)
    for i in range(0, 100):
        dxtrack.metric("test", i)
    assert not (OUT / "metric.jsonl").exists()
    dxtrack.flush_metrics_buffer()
    assert len(read_jsonl(OUT / "metric.jsonl")) == 100


def test_specifying_a_timestamp() -> None:
    """metric(..., timestamp=datetime(year=1985, month=11, day=20)) backdates the record."""
    from dxtrack import dxtrack

    dxtrack.configure(stage="test", context="ctx")
    dxtrack.metric("<dotted-metric-name>", 1, timestamp=datetime(year=1985, month=11, day=20))
    assert read_jsonl(OUT / "metric.jsonl")[0]["timestamp"] == 501292800.0
