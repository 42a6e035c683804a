"""Stage test: JSONL files, appended, on disk before the call returns, thread-safe."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

import dxtrack
from dxtrack import api
from tests.conftest import assert_valid, read_jsonl

OUT = Path(".dxtrack_output")


def test_records_are_on_disk_before_the_call_returns() -> None:
    """Each call's line can be read right after it returns, with no flush."""
    dxtrack.configure(context="c", stage="test")
    for i in range(3):
        dxtrack.metric("m", i)
        assert len(read_jsonl(OUT / "metric.jsonl")) == i + 1
    try:
        raise ValueError("boom")
    except ValueError:
        dxtrack.error()
    assert read_jsonl(OUT / "error.jsonl")[0]["exception"]["value"] == "boom"


def test_files_are_appended_never_overwritten() -> None:
    """Lines from earlier runs (and earlier configurations) stay in the files."""
    OUT.mkdir()
    (OUT / "metric.jsonl").write_text("")
    dxtrack.configure(context="first", stage="test")
    dxtrack.metric("m", 1)
    dxtrack.configure(context="second", stage="test")
    dxtrack.metric("m", 2)
    assert [r["context"] for r in read_jsonl(OUT / "metric.jsonl")] == ["first", "second"]


def test_deleted_output_directory_is_recreated() -> None:
    """A test that removes the output directory between calls gets a fresh file."""
    dxtrack.configure(context="c", stage="test")
    dxtrack.metric("m", 1)
    (OUT / "metric.jsonl").unlink()
    OUT.rmdir()
    dxtrack.metric("m", 2)
    assert [r["value"] for r in read_jsonl(OUT / "metric.jsonl")] == [2.0]


def test_buffered_metrics_wait_for_flush_metrics_buffer() -> None:
    """With buffer_metrics=True nothing is written until flush_metrics_buffer()."""
    dxtrack.configure(context="c", stage="test", buffer_metrics=True)
    for i in range(100):
        dxtrack.metric("test", i)
    assert not (OUT / "metric.jsonl").exists()
    dxtrack.flush_metrics_buffer()
    assert [r["value"] for r in read_jsonl(OUT / "metric.jsonl")] == [float(i) for i in range(100)]
    try:
        raise KeyError("errors are not buffered")
    except KeyError:
        dxtrack.error()
    assert len(read_jsonl(OUT / "error.jsonl")) == 1


def run_python(code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DXTRACK_")}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1])
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_buffered_metrics_are_written_at_exit(tmp_path: Path) -> None:
    """A program that never calls flush_metrics_buffer() still writes its metrics at exit."""
    result = run_python(
        """
        import dxtrack
        dxtrack.configure(context="c", stage="test", buffer_metrics=True)
        for i in range(50):
            dxtrack.metric("at.exit", i)
        """,
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    records = read_jsonl(tmp_path / ".dxtrack_output" / "metric.jsonl")
    assert [r["value"] for r in records] == [float(i) for i in range(50)]


def test_eight_threads_give_exactly_eighty_thousand_valid_lines() -> None:
    """8 threads x 10,000 metrics: 80,000 complete lines, each once, none torn."""
    dxtrack.configure(context="c", stage="test")
    start = threading.Barrier(8)

    def work(thread: int) -> None:
        start.wait()
        for i in range(10_000):
            dxtrack.metric("threads", i, metadata={"thread": thread})

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    records = read_jsonl(OUT / "metric.jsonl")
    assert len(records) == 80_000
    assert {(r["metadata"]["thread"], r["value"]) for r in records} == {
        (t, float(i)) for t in range(8) for i in range(10_000)
    }
    assert sorted(r["seq"] for r in records) == list(range(1, 80_001))
    assert len({r["id"] for r in records}) == 80_000
    for record in records[::997]:
        assert_valid(record, "metric")


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_full_disk_is_counted_not_raised(tmp_path: Path) -> None:
    """When the disk is full (ENOSPC), tracking goes on; the loss is counted and logged."""
    out = tmp_path / "full"
    out.mkdir()
    (out / "metric.jsonl").symlink_to("/dev/full")
    dxtrack.configure(context="c", stage="test", output_dir=out)
    dxtrack.metric("m", 1)
    dxtrack.metric("m", 2)
    try:
        raise ValueError("still recorded")
    except ValueError:
        dxtrack.error()
    stats = dxtrack.stats()
    assert stats["dropped"] == 2
    assert stats["delivered"] == 1
    assert read_jsonl(out / "error.jsonl")[0]["exception"]["value"] == "still recorded"
    assert dxtrack.flush() is False  # not everything tracked was delivered


def test_unwritable_output_directory_does_not_raise(tmp_path: Path) -> None:
    """An output directory that can't be created loses records, counted, without raising."""
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    dxtrack.configure(context="c", stage="test", output_dir=blocker / "out")
    dxtrack.metric("m", 1)
    assert dxtrack.stats()["dropped"] == 1
    assert dxtrack.stats()["dropped.send_failed:file:" + str(blocker / "out" / "metric.jsonl")] == 1


def test_from_dxtrack_import_dxtrack_is_the_same_api() -> None:
    """`from dxtrack import dxtrack` and `import dxtrack` are the same API."""
    from dxtrack import dxtrack as legacy

    assert legacy is dxtrack
    legacy.configure(context="legacy", stage="test")
    legacy.metric("m", 1)
    assert dxtrack.context == "legacy"
    assert legacy.metric is api.metric
    assert read_jsonl(OUT / "metric.jsonl")[0]["context"] == "legacy"
