"""``dxtrack report``: one HTML file that opens offline and needs nothing else."""

from __future__ import annotations

import os
from pathlib import Path

from dxtrack.cli.store import Store
from dxtrack.dashboard.page import standalone
from dxtrack.dashboard.snapshot import snapshot

REPORT_ERROR_BUCKET = 86400
"""The report charts errors per day."""


def write_report(store: Store, out: Path) -> None:
    """Write the report of ``store``'s records to ``out`` (atomically: a reader never sees half)."""
    html = standalone(snapshot(store, error_bucket=REPORT_ERROR_BUCKET))
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(f".{out.name}.{os.getpid()}.part")
    partial.write_text(html, encoding="utf-8")
    partial.replace(out)
