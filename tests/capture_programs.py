"""Run a small Python program in a child process and read what dxtrack recorded from it."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.conftest import assert_valid, read_jsonl


@dataclass
class Outcome:
    """A finished program: its exit status and output, and the records in its output dir."""

    returncode: int
    stdout: str
    stderr: str
    errors: list[dict[str, Any]]
    metrics: list[dict[str, Any]]

    def mechanisms(self) -> Counter[tuple[str | None, str, bool]]:
        """(type, mechanism, handled) of each error record, counted."""
        return Counter(
            (e["exception"]["type"], e["exception"]["mechanism"], e["exception"]["handled"])
            for e in self.errors
        )

    def describe(self) -> str:
        return f"exit {self.returncode}\n--- stdout\n{self.stdout}\n--- stderr\n{self.stderr}"


def run_program(
    directory: Path, *sources: str, env: dict[str, str] | None = None, timeout: float = 90
) -> Outcome:
    """Run ``sources``, each dedented, one after the other, as ``job.py`` in ``directory``;
    stage-test records go to ``directory/out``."""
    program = directory / "job.py"
    program.write_text("".join(textwrap.dedent(source) for source in sources))
    out = directory / "out"
    child_env = {**os.environ, "DXTRACK_OUTPUT_DIR": str(out), **(env or {})}
    child_env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    done = subprocess.run(
        [sys.executable, str(program)],
        cwd=directory,
        env=child_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    errors = read_jsonl(out / "error.jsonl") if (out / "error.jsonl").exists() else []
    metrics = read_jsonl(out / "metric.jsonl") if (out / "metric.jsonl").exists() else []
    for kind, records in (("error", errors), ("metric", metrics)):
        for record in records:
            assert_valid(record, kind)
    return Outcome(done.returncode, done.stdout, done.stderr, errors, metrics)


def without_dxtrack_lines(stderr: str) -> str:
    """The host's stderr without the lines dxtrack's own logger wrote."""
    return "\n".join(line for line in stderr.splitlines() if not line.startswith("dxtrack"))
