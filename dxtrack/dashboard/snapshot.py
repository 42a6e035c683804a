"""The data the dashboard and the report draw: one JSON-ready dict from the package's queries."""

from __future__ import annotations

import time
from typing import Any

from dxtrack import sql
from dxtrack.cli.store import Store

MAX_GROUPS = 200
MAX_ROWS = 200
TARGET_BUCKETS = 60
BUCKETS = (1, 10, 60, 300, 900, 3600, 3 * 3600, 6 * 3600, 86400, 7 * 86400)
BUCKET_NAMES = {1: "second", 60: "minute", 3600: "hour", 86400: "day", 7 * 86400: "week"}


def bucket_seconds(first: float | None, last: float | None) -> int:
    """A bucket size that gives at most about ``TARGET_BUCKETS`` buckets over the span."""
    span = (last or 0) - (first or 0)
    for size in BUCKETS:
        if span / size <= TARGET_BUCKETS:
            return size
    return BUCKETS[-1]


def bucket_name(seconds: int) -> str:
    """'per hour', 'per 5 minutes'..."""
    if seconds in BUCKET_NAMES:
        return f"per {BUCKET_NAMES[seconds]}"
    for size, name in sorted(BUCKET_NAMES.items(), reverse=True):
        if seconds % size == 0:
            return f"per {seconds // size} {name}s"
    return f"per {seconds} seconds"


def snapshot(store: Store, *, error_bucket: int | None = None) -> dict[str, Any]:
    """Counts, error groups (with their latest tracebacks), errors over time by fingerprint,
    metric summaries and series, runs and gaps."""
    started = time.perf_counter()
    span = store.rows(sql.query("duckdb", "time_span"))[0]
    every = bucket_seconds(span["first"], span["last"])
    errors_every = error_bucket or every
    groups = store.error_groups()
    gaps = store.gaps()
    data = {
        "source": store.source.spec,
        "generated_at": time.time(),
        "counts": store.counts(),
        "span": span,
        "occurrences": sum(g["occurrences"] for g in groups),
        "groups": groups[:MAX_GROUPS],
        "group_count": len(groups),
        "errors_every": errors_every,
        "errors_every_name": bucket_name(errors_every),
        "errors_timeline": store.rows(
            sql.query("duckdb", "errors_timeline"), {"every": errors_every}
        ),
        "metrics": store.metric_summary(),
        "metrics_every": every,
        "metrics_every_name": bucket_name(every),
        "metric_series": store.rows(sql.query("duckdb", "metric_series"), {"every": every}),
        "runs": store.runs()[:MAX_ROWS],
        "gaps": gaps[:MAX_ROWS],
        "lost": sum(g["missing"] for g in gaps),
    }
    data["seconds"] = round(time.perf_counter() - started, 3)
    return data
