"""dxtrack.testing: capture records in memory for users' own tests."""

from __future__ import annotations

from pathlib import Path

import pytest

import dxtrack
from dxtrack.testing import capture_records
from tests.conftest import assert_valid, read_jsonl


def job() -> None:
    dxtrack.configure(context="my-job", stage="prod", default_metadata={"team": "t"})
    dxtrack.metric("rows.bad", 3, metadata={"file": "a.csv"})
    try:
        int("x")
    except ValueError:
        dxtrack.error(metadata={"file": "a.csv"})


def test_capture_records_without_configure(tmp_path: Path) -> None:
    """Outside a configured program, records go to memory and nowhere else."""
    with capture_records() as captured:
        dxtrack.metric("m", 1, metadata={"k": "v"})
        dxtrack.errors([KeyError("k")])
        assert [r["value"] for r in captured.metrics] == [1.0]
    assert captured.metrics[0]["metadata"] == {"k": "v"}
    assert captured.errors[0]["exception"]["type"] == "KeyError"
    assert_valid(captured.metrics[0], "metric")
    assert_valid(captured.errors[0], "error")
    assert not (tmp_path / ".dxtrack_output").exists()
    assert dxtrack.context is None


def test_configure_inside_the_block_keeps_capturing(tmp_path: Path) -> None:
    """A job that calls configure(stage='prod') itself still records to memory: no AWS."""
    with capture_records() as captured:
        job()
    assert [(r["context"], r["stage"]) for r in captured.metrics] == [("my-job", "prod")]
    assert captured.metrics[0]["metadata"] == {"team": "t", "file": "a.csv"}
    assert captured.errors[0]["exception"]["type"] == "ValueError"


def test_previous_configuration_is_restored() -> None:
    """After the block, the program's own configuration and files are back."""
    dxtrack.configure(context="outer", stage="test")
    with capture_records() as captured:
        dxtrack.metric("inside", 1)
    dxtrack.metric("outside", 2)
    assert [r["metric_name"] for r in captured.metrics] == ["inside"]
    assert captured.metrics[0]["context"] == "outer"
    records = read_jsonl(Path(".dxtrack_output/metric.jsonl"))
    assert [r["metric_name"] for r in records] == ["outside"]


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_capture_records_captures_logged_errors_and_thread_crashes() -> None:
    """What dxtrack captures by itself lands in the captured records too."""
    import logging
    import threading

    def crash() -> None:
        raise RuntimeError("thread died")

    with capture_records() as captured:
        logging.getLogger("job").error("could not reach %s", "the shop")
        thread = threading.Thread(target=crash)
        thread.start()
        thread.join()
    assert [e["exception"]["mechanism"] for e in captured.errors] == ["logging", "threading"]
    assert captured.errors[0]["log"]["message"] == "could not reach the shop"
