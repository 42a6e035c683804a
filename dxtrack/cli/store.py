"""The records of a source in DuckDB: the views ``errors`` and ``metrics`` over its files, and
the package's queries (``dxtrack.sql``) with their answers as plain rows."""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

import duckdb

from dxtrack import sql
from dxtrack.cli.sources import Files, Kind, Source

Row = dict[str, Any]
KINDS: tuple[Kind, ...] = ("error", "metric")

_EVERY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_every(text: str) -> float:
    """``'15m'``, ``'1h'``, ``'1d'``... in seconds; ValueError names ``--every``."""
    match = _EVERY.match(text)
    if not match or float(match.group(1)) <= 0:
        raise ValueError(f"--every must be a duration such as 30s, 15m, 1h or 1d, not {text!r}")
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def iso(timestamp: float | None) -> str | None:
    """Unix seconds as ISO 8601 in UTC, to the second."""
    if timestamp is None or (isinstance(timestamp, float) and math.isnan(timestamp)):
        return None
    moment = datetime.fromtimestamp(timestamp, tz=timezone.utc)
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


class Store:
    """A DuckDB connection whose views read the source's files as they are now; ``refresh()``
    points them at the files again (new files, new objects). Safe to share between threads."""

    def __init__(self, source: Source) -> None:
        self.source = source
        self.files = Files()
        self._con = duckdb.connect()
        self._lock = threading.Lock()
        self.refresh()

    def refresh(self) -> Files:
        """Look for files again and recreate the views over them: JSON Lines, and Parquet (the
        template's OutputFormat parquet) beside them when there is any."""
        files = self.source.files()
        empty = str(self.source.empty_file())
        json_files = {k: [str(p) for p in files.of(k) if p not in files.parquet] for k in KINDS}
        parquet = {k: [str(p) for p in files.of(k) if p in files.parquet] for k in KINDS}
        statements = sql.duckdb_views(
            json_files["error"] or [empty], json_files["metric"] or [empty], skip_malformed=True
        )
        if files.parquet:
            statements = _renamed(statements, "json") + _renamed(
                sql.duckdb_views(parquet["error"], parquet["metric"], parquet=True),
                "parquet",
            )
            for kind in KINDS:
                view = f"{kind}s"
                parts = [f"SELECT * FROM {view}_json"]
                if parquet[kind]:
                    parts.append(f"SELECT * FROM {view}_parquet")
                statements += (
                    f"CREATE OR REPLACE VIEW {view} AS {' UNION ALL BY NAME '.join(parts)};"
                )
        with self._lock:
            self._con.execute(statements)
            self.files = files
        return files

    def rows(self, text: str, params: dict[str, Any] | None = None) -> list[Row]:
        """The rows of a query, as dicts."""
        with self._lock:
            cursor = self._con.execute(text, params or {})
            columns = [d[0] for d in cursor.description or ()]
            return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]

    def query(self, text: str) -> tuple[list[str], list[tuple[Any, ...]]]:
        """A user's SQL: its column names and rows."""
        with self._lock:
            cursor = self._con.execute(text)
            columns = [d[0] for d in cursor.description or ()]
            return columns, cursor.fetchall()

    # ---- the package's queries ----------------------------------------------------------------

    def error_groups(self) -> list[Row]:
        """Errors by fingerprint, most occurrences first, each record id counted once."""
        groups = self.rows(sql.query("duckdb", "error_groups"))
        copied = [g["fingerprint"] for g in groups if g["records"] != g["distinct_records"]]
        if copied:
            counts = self.rows(
                sql.query("duckdb", "error_occurrence_counts"), {"fingerprints": copied}
            )
            once = {row["fingerprint"]: row["occurrences"] for row in counts}
            for group in groups:
                if group["fingerprint"] in once:
                    group["occurrences"] = once[group["fingerprint"]]
            groups.sort(key=lambda g: (-g["occurrences"], -(g["last_seen"] or 0)))
        for group in groups:
            group["occurrences"] = round(group["occurrences"] or 0)
            del group["distinct_records"]
        return groups

    def occurrences(self, fingerprint: str, limit: int = 50) -> list[Row]:
        """The records of one fingerprint, newest first."""
        rows = self.rows(
            sql.query("duckdb", "error_occurrences"), {"fingerprint": fingerprint, "limit": limit}
        )
        for row in rows:
            row["metadata"] = _json(row["metadata"])
        return rows

    def metric_summary(self, by: str | None = None, every: float | None = None) -> list[Row]:
        """Per metric name (and metadata value or time bucket): count, min, p50, p95, max and
        the latest value."""
        params: dict[str, Any] = {}
        if by is not None and every is not None:
            raise ValueError("--by and --every can't be used together")
        if by is not None:
            split, params["key"] = "metadata->>$key", by
        elif every is not None:
            split, params["every"] = 'floor("timestamp" / $every) * $every', every
        else:
            split = "NULL"
        rows = self.rows(sql.query("duckdb", "metric_summary").replace("{split}", split), params)
        if every is not None:
            for row in rows:
                row["split"] = iso(row["split"])
        return rows

    def runs(self) -> list[Row]:
        """Per run id: start, end, errors, metrics, producers and records lost."""
        return self.rows(sql.query("duckdb", "runs"))

    def gaps(self) -> list[Row]:
        """The holes in seq per producer."""
        return self.rows(sql.query("duckdb", "gaps"))

    def counts(self) -> Row:
        """How many error and metric records (each id once) the source holds."""
        row = self.rows(
            "SELECT (SELECT count(DISTINCT id) FROM errors) AS errors,"
            " (SELECT count(DISTINCT id) FROM metrics) AS metrics"
        )
        return row[0]


def _renamed(statements: str, suffix: str) -> str:
    """The CREATE VIEW statements of ``statements`` creating ``errors_<suffix>`` and
    ``metrics_<suffix>`` instead; one over ``read_parquet([])`` (no such files) is left out."""
    out = []
    for match in re.finditer(r"CREATE OR REPLACE VIEW (errors|metrics) AS.*?;", statements, re.S):
        statement = match.group(0)
        if "read_parquet([]" not in statement:
            view = match.group(1)
            out.append(statement.replace(f"VIEW {view} AS", f"VIEW {view}_{suffix} AS", 1))
    return "\n".join(out) + "\n"


def _json(value: Any) -> Any:
    import orjson

    if isinstance(value, str):
        try:
            return orjson.loads(value)
        except orjson.JSONDecodeError:
            return value
    return value


def fingerprints_like(store: Store, prefix: str) -> Sequence[str]:
    """The fingerprints that start with ``prefix`` (a short form, as the table shows)."""
    rows = store.rows(
        "SELECT DISTINCT fingerprint FROM errors WHERE starts_with(fingerprint, $prefix)",
        {"prefix": prefix},
    )
    return [row["fingerprint"] for row in rows]
