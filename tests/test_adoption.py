"""What a new user meets: the warning of an unconfigured call points at their own line, and the
summary at exit reads as a sentence."""

from __future__ import annotations

import inspect
import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

import dxtrack
from dxtrack import api
from tests.lifecycle import free_port


@pytest.mark.parametrize("kind", ["metric", "error", "errors"])
def test_the_not_configured_warning_points_at_the_callers_line(kind: str) -> None:
    """Whichever call comes first, compiled or pure Python, the warning names this file and the
    line of the call, not dxtrack's own."""
    api._client._warned = False
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if kind == "metric":
            line = inspect.currentframe().f_lineno + 1  # type: ignore[union-attr]
            dxtrack.metric("rows", 1)
        elif kind == "error":
            try:
                raise ValueError("x")
            except ValueError:
                line = inspect.currentframe().f_lineno + 1  # type: ignore[union-attr]
                dxtrack.error()
        else:
            line = inspect.currentframe().f_lineno + 1  # type: ignore[union-attr]
            dxtrack.errors([ValueError("x")])
    [warning] = [w for w in caught if "not configured" in str(w.message)]
    assert (warning.filename, warning.lineno) == (__file__, line)
    assert warning.category is RuntimeWarning


def run_job(tmp_path: Path, program: str, **env: str) -> subprocess.CompletedProcess[str]:
    port = free_port()  # nothing listens: AWS is down for this job
    full = {
        **{k: v for k, v in os.environ.items() if not k.startswith("DXTRACK_")},
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "eu-west-1",
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        "DXTRACK_STAGE": "prod",
        "DXTRACK_CONTEXT": "summary",
        "DXTRACK_SPOOL_DIR": str(tmp_path / "spool"),
        "DXTRACK_EXIT_TIMEOUT": "1",
        "DXTRACK_RETRY_BUDGET": "1",
        **env,
    }
    return subprocess.run(
        [sys.executable, "-c", program], env=full, capture_output=True, text=True, timeout=60
    )


def test_the_summary_at_exit_is_a_sentence(tmp_path: Path) -> None:
    """Records spooled during an outage: one line saying so, where to look, and no stray
    mapping; with drops, the reasons in words."""
    program = "import dxtrack\ndxtrack.configure()\nfor i in range(30): dxtrack.metric('m', i)\n"
    result = run_job(tmp_path, program)
    [summary] = [line for line in result.stderr.splitlines() if "record(s) delivered" in line]
    assert summary == (
        "dxtrack: 0 record(s) delivered, 30 spooled to disk for the next start "
        "(`dxtrack spool status` lists them), 0 dropped"
    )
    assert "{}" not in result.stderr

    result = run_job(tmp_path / "small", program, DXTRACK_MAX_SPOOL_BYTES="1")
    [summary] = [line for line in result.stderr.splitlines() if "record(s) delivered" in line]
    match = re.fullmatch(
        r"dxtrack: 0 record\(s\) delivered, 0 spooled to disk for the next start "
        r"\(`dxtrack spool status` lists them\), 30 dropped \((\w+: \d+(, )?)+\)",
        summary,
    )
    assert match, summary
    assert "{" not in summary
