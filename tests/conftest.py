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
from dxtrack.record_schema import load_schema

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
    """A fresh working directory and spool, no DXTRACK_* variables, dxtrack unconfigured; and
    every record a test left in the stage-test files is checked against the schema."""
    for name in list(os.environ):
        if name.startswith("DXTRACK_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DXTRACK_SPOOL_DIR", str(tmp_path / "spool"))
    yield tmp_path
    dxtrack.shutdown(timeout=5)
    api._sink_override = None
    api._client._warned = False
    for kind in ("error", "metric"):
        path = tmp_path / ".dxtrack_output" / f"{kind}.jsonl"
        if path.exists():
            for record in read_jsonl(path):
                assert_valid(record, kind)
