"""infra/: the CloudFormation template, its Glue tables against the JSON Schema, and the DuckDB
queries over stage-test files and over what landed in S3."""

from __future__ import annotations

import gzip
import logging
import statistics
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import boto3
import duckdb
import pytest

import dxtrack
from dxtrack import sql
from dxtrack.record_schema import load_schema
from tests import infra_template
from tests.conftest import read_jsonl

TABLES = {"error": "ErrorTable", "metric": "MetricTable"}


def test_template_passes_cfn_lint() -> None:
    """cfn-lint finds nothing in infra/dxtrack.yaml."""
    cfn_lint = Path(sys.executable).parent / "cfn-lint"
    result = subprocess.run(
        [str(cfn_lint), str(infra_template.TEMPLATE)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


SCALARS = {
    "glue": {
        "string": "string",
        "number": "double",
        "integer": "bigint",
        "boolean": "boolean",
        "object": "string",
    },
    "duckdb": {
        "string": "VARCHAR",
        "number": "DOUBLE",
        "integer": "BIGINT",
        "boolean": "BOOLEAN",
        "object": "JSON",
    },
}
"""JSON Schema type -> column type; an object without properties (metadata) is JSON text."""


def column_type(spec: dict[str, Any], dialect: str) -> str:
    """The column type a JSON Schema property maps to, in Glue's or DuckDB's dialect."""
    if "enum" in spec:
        return SCALARS[dialect]["string"]
    types = spec["type"] if isinstance(spec["type"], list) else [spec["type"]]
    kind = next(t for t in types if t != "null")
    if kind == "object" and "properties" in spec:
        fields = [(k, column_type(v, dialect)) for k, v in spec["properties"].items()]
        if dialect == "glue":
            return "struct<" + ",".join(f"{k}:{t}" for k, t in fields) + ">"
        return "STRUCT(" + ", ".join(f'"{k}" {t}' for k, t in fields) + ")"
    return SCALARS[dialect][kind]


@pytest.mark.parametrize("kind", ["error", "metric"])
def test_glue_columns_match_the_json_schema(kind: str) -> None:
    """Every schema field is a Glue column of the matching type, and nothing else is."""
    schema = load_schema(kind)
    table = infra_template.load()["Resources"][TABLES[kind]]["Properties"]["TableInput"]
    columns = {c["Name"]: c["Type"] for c in table["StorageDescriptor"]["Columns"]}
    expected = {name: column_type(spec, "glue") for name, spec in schema["properties"].items()}
    assert columns == expected
    assert [k["Name"] for k in table["PartitionKeys"]] == ["dt"]


def connect(error_files: str, metric_files: str) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute(
        sql.query("duckdb", "views")
        .replace("{error_files}", error_files)
        .replace("{metric_files}", metric_files)
    )
    return con


@pytest.mark.parametrize(("kind", "view"), [("error", "errors"), ("metric", "metrics")])
def test_duckdb_views_match_the_json_schema(kind: str, view: str, tmp_path: Path) -> None:
    """The DuckDB views read exactly the schema's fields, with matching types."""
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    con = connect(f"'{empty}'", f"'{empty}'")
    described = {row[0]: row[1] for row in con.sql(f"DESCRIBE {view}").fetchall()}
    properties = load_schema(kind)["properties"]
    expected = {name: column_type(spec, "duckdb") for name, spec in properties.items()}
    normalise = str.maketrans("", "", '" ')
    assert {k: v.translate(normalise) for k, v in described.items()} == {
        k: v.translate(normalise) for k, v in expected.items()
    }


def test_producer_policy_only_puts_records_on_the_two_streams() -> None:
    """The producers' managed policy allows PutRecord(Batch) on the stage's streams only, and
    Firehose's role may write only to the stage's bucket."""
    stack = infra_template.Stack(infra_template.load(), {"Stage": "prod"})
    (statement,) = stack.properties("ProducerPolicy")["PolicyDocument"]["Statement"]
    assert statement["Effect"] == "Allow"
    assert sorted(statement["Action"]) == ["firehose:PutRecord", "firehose:PutRecordBatch"]
    assert sorted(statement["Resource"]) == sorted(
        stack.attrs[(s, "Arn")] for s in ("ErrorStream", "MetricStream")
    )
    assert stack.ids["ErrorStream"] == "dxtrack-error-input-prod"
    role_statements = stack.properties("FirehoseDeliveryRole")["Policies"][0]["PolicyDocument"]
    s3_statement = role_statements["Statement"][0]
    bucket_arn = stack.attrs[("DataBucket", "Arn")]
    assert s3_statement["Resource"] == [bucket_arn, f"{bucket_arn}/*"]
    assert all(action.startswith("s3:") for action in s3_statement["Action"])


def record_jobs() -> None:
    """Known errors and metrics: three error types over four calls and a logged error, two
    metrics."""
    for i in range(3):
        try:
            if i < 2:
                raise ValueError(f"bad row {i}")
            raise KeyError("missing")
        except (ValueError, KeyError):
            dxtrack.error(metadata={"shop": f"s{i}"})
    dxtrack.errors([RuntimeError("never raised")])
    for i in range(250):  # a storm: past error_rate_limit, a summary record counts the rest
        try:
            raise ConnectionError(f"retry {i}")
        except ConnectionError:
            dxtrack.error()
    logging.getLogger("jobs").error("shop %s is down", "s3")  # captured: a log record
    for i in range(1, 101):
        dxtrack.metric("rows.parsed", i, metadata={"shop": "s1"})
    for value in (0.5, 1.5):
        dxtrack.metric("latency.seconds", value)


def check_queries(
    con: duckdb.DuckDBPyConnection, errors: list[dict[str, Any]], metrics: list[dict[str, Any]]
) -> None:
    """The DuckDB queries give what Python computes from the same records."""

    def day(record: dict[str, Any]) -> Any:
        return datetime.fromtimestamp(record["timestamp"], tz=timezone.utc).date()

    def occurrences(key: Callable[[dict[str, Any]], Any]) -> dict[Any, int]:
        """Occurrences by ``key``: a summary record stands for 1 + suppressed."""
        counts: Counter[Any] = Counter()
        for e in errors:
            counts[key(e)] += 1 + e["suppressed"]
        return dict(counts)

    assert any(e["suppressed"] for e in errors), "the storm left a summary record"
    by_type = con.sql(sql.query("duckdb", "errors_per_day_by_type")).fetchall()
    expected_types = occurrences(lambda e: (day(e), e["exception"]["type"]))
    assert expected_types[(day(errors[0]), "ConnectionError")] == 250
    assert {(d, t): n for d, t, n, _runs in by_type} == expected_types

    by_fp = con.sql(sql.query("duckdb", "errors_per_day_by_fingerprint"))
    expected_fp = occurrences(lambda e: (day(e), e["fingerprint"]))
    assert {(d, f): n for d, f, _t, _v, n in by_fp.fetchall()} == expected_fp

    by_mechanism = con.sql(sql.query("duckdb", "unhandled_errors_per_day"))
    expected_mechanisms = occurrences(
        lambda e: (day(e), e["exception"]["handled"], e["exception"]["mechanism"])
    )
    assert {(d, h, m): n for d, h, m, n, _runs in by_mechanism.fetchall()} == expected_mechanisms

    rows = con.sql(sql.query("duckdb", "metric_percentiles")).fetchall()
    by_name: dict[str, list[float]] = {}
    for m in metrics:
        by_name.setdefault(m["metric_name"], []).append(m["value"])
    assert [r[0] for r in rows] == sorted(by_name)
    for name, n, p50, _p90, _p99, low, high in rows:
        values = sorted(by_name[name])
        assert n == len(values) and (low, high) == (values[0], values[-1])
        assert p50 == pytest.approx(statistics.median(values))


def test_duckdb_queries_over_stage_test_files() -> None:
    """The queries run over the stage-test files and agree with Python; duplicates by id count
    once."""
    dxtrack.configure(context="queries", stage="test", error_rate_limit=20)
    record_jobs()
    assert dxtrack.flush(5)  # the storm's summary record
    out = Path(".dxtrack_output")
    duplicate = (out / "error.jsonl").read_text().splitlines()[0] + "\n"
    with open(out / "error.jsonl", "a") as handle:  # at-least-once delivery: a duplicate line
        handle.write(duplicate)
    con = connect(f"'{out / 'error.jsonl'}'", f"'{out / 'metric.jsonl'}'")
    errors = {e["id"]: e for e in read_jsonl(out / "error.jsonl")}
    check_queries(con, list(errors.values()), read_jsonl(out / "metric.jsonl"))


def test_template_deploys_and_sdk_records_land_under_its_prefixes(
    firehose_calls: Any, tmp_path: Path
) -> None:
    """The template's own S3, Firehose and Glue properties, made as boto3 calls against moto:
    the SDK's default stream names reach them, records land under the template's prefixes, and
    the DuckDB queries run over those objects."""
    stack = infra_template.Stack(infra_template.load(), {"Stage": "dev"})
    deployed = infra_template.deploy(stack)
    bucket = deployed["bucket"]

    glue = boto3.client("glue", region_name=infra_template.REGION)
    table = glue.get_table(DatabaseName="dxtrack_dev", Name="error")["Table"]
    assert table["Parameters"]["projection.dt.type"] == "date"
    assert table["Parameters"]["storage.location.template"] == f"s3://{bucket}/error/dt=${{dt}}/"
    firehose = boto3.client("firehose", region_name=infra_template.REGION)
    description = firehose.describe_delivery_stream(DeliveryStreamName="dxtrack-metric-input-dev")
    destination = description["DeliveryStreamDescription"]["Destinations"][0]
    s3_config = destination["ExtendedS3DestinationDescription"]
    assert s3_config["CompressionFormat"] == "GZIP"
    assert s3_config["Prefix"] == "metric/dt=!{timestamp:yyyy-MM-dd}/"

    dxtrack.configure(context="infra", stage="dev", spool_dir=tmp_path / "spool")  # default names
    record_jobs()
    assert dxtrack.flush(timeout=30) is True

    s3 = boto3.client("s3", region_name=infra_template.REGION)
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
    assert keys and all(k.startswith(("error/dt=", "metric/dt=")) for k in keys)
    with pytest.raises(s3.exceptions.ClientError, match=r"Forbidden|AccessDenied"):
        s3.get_object(Bucket=bucket, Key=keys[0])  # the bucket policy refuses plain HTTP
    s3.delete_bucket_policy(Bucket=bucket)  # moto only speaks HTTP: lift it to read back
    lake = tmp_path / "lake"
    for key in keys:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        if body[:2] == b"\x1f\x8b":  # real Firehose gzips; moto does not
            body = gzip.decompress(body)
        target = lake / key.split("/", 1)[0] / f"{len(list(lake.rglob('*')))}.jsonl"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(body)
    errors = [r for f in (lake / "error").glob("*.jsonl") for r in read_jsonl(f)]
    metrics = [r for f in (lake / "metric").glob("*.jsonl") for r in read_jsonl(f)]
    assert sum(1 + e["suppressed"] for e in errors) == 5 + 250 and len(metrics) == 102
    assert len(errors) == 5 + 100 + 1  # the storm: the limit, then its summary
    con = connect(f"'{lake}/error/*.jsonl'", f"'{lake}/metric/*.jsonl'")
    check_queries(con, errors, metrics)
