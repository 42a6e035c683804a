"""Helpers for your own tests: capture what dxtrack records, in memory, with no files and no AWS.

from dxtrack.testing import capture_records

def test_job_reports_bad_rows():
    with capture_records() as captured:
        run_job()
    assert captured.metrics[0]["metric_name"] == "rows.bad"
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from dxtrack import api
from dxtrack.config import build_config
from dxtrack.events import ERROR, METRIC
from dxtrack.integrations import installation
from dxtrack.sinks.memory import MemorySink
from dxtrack.wiring import SinkFactory


@dataclass
class CapturedRecords:
    """The records tracked inside ``capture_records()``, as parsed JSON, in order."""

    errors: list[dict[str, Any]] = field(default_factory=list)
    metrics: list[dict[str, Any]] = field(default_factory=list)


@contextmanager
def capture_records(**configure_kwargs: Any) -> Iterator[CapturedRecords]:
    """Send every record to memory while the block runs; each call has delivered on return.

    Any ``configure()`` inside the block (say, your job's entry point) keeps sending to memory.
    What dxtrack captures by itself (logged errors, unhandled exceptions in threads...) is
    captured too; workers started inside the block do not send to memory.
    Outside a configured program, the block configures ``context="test"``, ``stage="test"``;
    ``configure_kwargs`` override those settings. The previous configuration is restored
    afterwards.
    """
    captured = CapturedRecords()
    sinks: list[SinkFactory] = [
        (lambda: MemorySink(ERROR, captured.errors), True),
        (lambda: MemorySink(METRIC, captured.metrics), True),
    ]
    client = api.current_client()
    previous_config, previous_override = client.config, api._sink_override
    if previous_config is not None and not configure_kwargs:
        config = previous_config
    else:
        settings: dict[str, Any] = {"context": "test", "stage": "test", **configure_kwargs}
        config = build_config(**settings)
    api._sink_override = sinks
    client.configure(config, sinks)
    installation.install(client, config, workers_too=False)  # memory is not shared with workers
    try:
        yield captured
    finally:
        api._sink_override = previous_override
        if previous_config is not None:
            client.configure(previous_config, previous_override)
            installation.install(client, previous_config)
        else:
            installation.uninstall()
            client.close()
