"""infra/snowflake/: every statement parses with sqlglot's Snowflake dialect, the tables and the
pipes' COPY follow the JSON Schema, and each example query exists in Snowflake's dialect. No
Snowflake account is reachable from here: nothing is run against one."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import sqlglot
from sqlglot import exp

from dxtrack import sql
from dxtrack.record_schema import load_schema

SNOWFLAKE = Path(__file__).resolve().parents[1] / "infra" / "snowflake"
TYPES = {
    "string": "VARCHAR",
    "number": "DOUBLE",
    "integer": "DECIMAL(38, 0)",
    "boolean": "BOOLEAN",
    "object": "OBJECT",
}
"""JSON Schema type -> the Snowflake type as sqlglot spells it back."""
EXTRA_COLUMNS = {
    "raw": "VARIANT",
    "dt": "DATE",
    "file_name": "VARCHAR",
    "loaded_at": "TIMESTAMPLTZ",
}


def expected_type(spec: dict[str, Any]) -> str:
    if "enum" in spec:
        return TYPES["string"]
    kinds = spec["type"] if isinstance(spec["type"], list) else [spec["type"]]
    return TYPES[next(k for k in kinds if k != "null")]


def statements(path: Path) -> list[exp.Expression]:
    return [s for s in sqlglot.parse(path.read_text(), read="snowflake") if s is not None]


def pipe_copy(command: exp.Command) -> exp.Copy:
    """The COPY INTO of a CREATE PIPE (which sqlglot keeps as an opaque command), parsed."""
    text = str(command.expression)  # what follows CREATE, without the comments before it
    body = re.split(r"\bAS\b", text, maxsplit=1, flags=re.IGNORECASE)[1]
    copy = sqlglot.parse_one(body, read="snowflake")
    assert isinstance(copy, exp.Copy)
    return copy


def test_setup_parses_statement_by_statement() -> None:
    """Every statement is understood, but for the two CREATE PIPEs, whose COPY is parsed on its
    own: a typo anywhere else fails here."""
    parsed = statements(SNOWFLAKE / "setup.sql")
    opaque = [s for s in parsed if isinstance(s, exp.Command)]
    assert len(opaque) == 2
    assert all(
        s.this == "CREATE" and str(s.expression).lstrip().startswith("PIPE ") for s in opaque
    )
    for command in opaque:
        pipe_copy(command)
    kinds = [(s.args.get("kind") or "").upper() for s in parsed if isinstance(s, exp.Create)]
    assert kinds.count("TABLE") == 2 and kinds.count("VIEW") == 2 and kinds.count("STAGE") == 2
    text = (SNOWFLAKE / "setup.sql").read_text()
    assert "CREATE STORAGE INTEGRATION" in text and "COMPRESSION = AUTO" in text
    assert text.count("AUTO_INGEST = TRUE") == 2


@pytest.mark.parametrize("kind", ["error", "metric"])
def test_tables_and_pipes_follow_the_json_schema(kind: str) -> None:
    """{kind}_1 has one typed column per schema property (plus raw, dt, file_name, loaded_at);
    its pipe's COPY fills each column from the record's field of the same name, cast to the
    column's type."""
    parsed = statements(SNOWFLAKE / "setup.sql")
    [table] = [
        s
        for s in parsed
        if isinstance(s, exp.Create)
        and s.args.get("kind") == "TABLE"
        and s.this.this.name == f"{kind}_1"
    ]
    columns = {c.name: c.args["kind"].sql("snowflake") for c in table.this.expressions}
    properties = load_schema(kind)["properties"]
    expected = {name: expected_type(spec) for name, spec in properties.items()}
    assert columns == {**expected, **EXTRA_COLUMNS}

    [copy] = [
        pipe_copy(s)
        for s in parsed
        if isinstance(s, exp.Command) and f"COPY INTO {kind}_1 " in str(s.expression)
    ]
    targets = [c.name for c in copy.this.expressions]
    assert targets == list(columns)
    select = copy.find(exp.Select)
    assert select is not None
    for target, value in zip(targets, select.expressions, strict=True):
        if target in properties:
            assert isinstance(value, exp.Cast), target
            assert value.to.sql("snowflake") == columns[target], target
            assert value.this.sql("snowflake") == f"GET_PATH($1, '{target}')", target


def test_every_example_query_has_a_snowflake_form_that_parses() -> None:
    """The queries of dxtrack/sql/athena/, each in Snowflake's dialect, reading the views that
    keep each id once, weighing occurrences as the other dialects do."""
    queries = SNOWFLAKE / "queries"
    assert sorted(p.stem for p in queries.glob("*.sql")) == sql.names("athena")
    for path in queries.glob("*.sql"):
        [query] = statements(path)
        assert isinstance(query, exp.Select), path.name
        tables = {t.name for t in query.find_all(exp.Table)}
        assert tables & {"errors", "metrics"}, path.name
        assert not tables & {"error_1", "metric_1"}, f"{path.name} reads copies"
        text = path.read_text()
        if "AS errors" in text:
            assert "(1 + COALESCE(suppressed, 0)) / COALESCE(sample_rate, 1.0)" in text
