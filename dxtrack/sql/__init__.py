"""The SQL over dxtrack's records, in one place: the DuckDB views and queries that the ``dxtrack``
command, the HTML report and the dashboard run, and the same queries in Athena's dialect for the
Glue tables that ``infra/dxtrack.yaml`` creates."""

from __future__ import annotations

from collections.abc import Sequence
from importlib.resources import files
from typing import Literal

Dialect = Literal["duckdb", "athena"]


def query(dialect: Dialect, name: str) -> str:
    """The text of ``<dialect>/<name>.sql``."""
    return (
        files("dxtrack.sql").joinpath(dialect).joinpath(f"{name}.sql").read_text(encoding="utf-8")
    )


def names(dialect: Dialect) -> list[str]:
    """The queries of a dialect, sorted (without the views and tables they read)."""
    found = files("dxtrack.sql").joinpath(dialect).iterdir()
    return sorted(
        p.name[:-4]
        for p in found
        if p.name.endswith(".sql") and not p.name.startswith(("views", "tables"))
    )


def file_list(paths: Sequence[str]) -> str:
    """A DuckDB list literal of file paths or globs: ``['a.jsonl', 'b/**']``."""
    return "[" + ", ".join("'" + p.replace("'", "''") + "'" for p in paths) + "]"


def duckdb_views(
    error_files: Sequence[str],
    metric_files: Sequence[str],
    *,
    parquet: bool = False,
    skip_malformed: bool = False,
) -> str:
    """The statements that create the views ``errors`` and ``metrics`` over the given JSON
    Lines (or Parquet) files; each list must name at least one file or glob that matches.
    ``skip_malformed`` reads past lines that are not JSON (the torn last line of a file still
    being written, say) instead of failing."""
    text = query("duckdb", "views_parquet" if parquet else "views")
    if skip_malformed:  # DuckDB then gives such a line as a row of nulls: left out by its id
        text = text.replace(
            "compression = 'auto_detect',",
            "compression = 'auto_detect',\n    ignore_errors = true,",
        ).replace("\n);", "\n)\nWHERE id IS NOT NULL;")
    return text.replace("{error_files}", file_list(error_files)).replace(
        "{metric_files}", file_list(metric_files)
    )
