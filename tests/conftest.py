"""Shared fixtures: every test starts unconfigured, in its own directory, with its own spool."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest

import dxtrack
from dxtrack import api
from dxtrack.environment_variables import DXTRACK_PURE_PYTHON
from dxtrack.record_schema import load_schema

pytest_plugins = ["tests.lifecycle_fixtures"]

VALIDATORS = {
    kind: jsonschema.Draft202012Validator(
        load_schema(kind), format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    for kind in ("error", "metric")
}


def assert_valid(record: dict[str, Any], kind: str) -> None:
    """Fail unless ``record`` matches the shipped JSON Schema of ``kind``."""
    VALIDATORS[kind].validate(record)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Parse a JSON Lines file strictly (NaN and Infinity are refused)."""
    records = []
    with open(path, "rb") as handle:
        for line in handle:
            assert line.endswith(b"\n"), "every line ends in a newline"
            records.append(json.loads(line, parse_constant=_refuse_constant))
    return records


def _refuse_constant(name: str) -> None:
    raise AssertionError(f"not strict JSON: {name}")


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh working directory and spool, no DXTRACK_* variables but DXTRACK_STAGE=test,
    dxtrack unconfigured; and
    every record a test left in the stage-test files is checked against the schema."""
    for name in list(os.environ):
        if name.startswith("DXTRACK_") and name != DXTRACK_PURE_PYTHON:  # the run's choice
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DXTRACK_SPOOL_DIR", str(tmp_path / "spool"))
    monkeypatch.setenv("DXTRACK_STAGE", "test")  # as a job's environment would; stage is required
    yield tmp_path
    dxtrack.shutdown(timeout=5)
    api._sink_override = None
    api._client._warned = False
    for kind in ("error", "metric"):
        path = tmp_path / ".dxtrack_output" / f"{kind}.jsonl"
        if path.exists():
            for record in read_jsonl(path):
                assert_valid(record, kind)


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    """moto's server over real HTTP; boto3 (and so dxtrack) finds it via AWS_ENDPOINT_URL."""
    import logging

    from moto.server import ThreadedMotoServer

    from tests.aws import REGION

    # moto's server runs in this process, and werkzeug logs each failure a test makes it give
    # at ERROR: dxtrack would record those as errors (capture_log_level), as it should in a
    # real host. The tests' own server stays quiet instead.
    logging.getLogger("werkzeug").setLevel(logging.CRITICAL)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    saved = {k: os.environ.get(k) for k in _AWS_VARIABLES}
    os.environ.update(
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION=REGION,
        AWS_ENDPOINT_URL=url,
    )
    yield url
    server.stop()
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


_AWS_VARIABLES = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_DEFAULT_REGION",
    "AWS_ENDPOINT_URL",
)
_HOOKS: list[Any] = []


@pytest.fixture
def firehose_calls(moto_server: str) -> Iterator[Any]:
    """Every PutRecordBatch of the test, checked against Firehose's limits at the end."""
    from tests.aws import Hooks

    if not _HOOKS:
        hooks = Hooks()
        hooks.install()
        _HOOKS.append(hooks)
    hooks = _HOOKS[0]
    hooks.reset()
    yield hooks
    dxtrack.shutdown(timeout=5)
    assert hooks.log.violations == [], "PutRecordBatch over Firehose's limits"
    hooks.reset()


@pytest.fixture
def streams(firehose_calls: Any) -> Any:
    """A bucket and two streams of this test's own on the moto server."""
    from tests.aws import Streams

    return Streams.create()
