"""The template's choices (ProducerCompression, OutputFormat, alarms), every Athena statement
parsed, the Athena queries run (transpiled) beside the DuckDB ones, and the completeness checks."""

from __future__ import annotations

import datetime
import gzip
import time
from pathlib import Path
from typing import Any

import boto3
import duckdb
import pytest
import requests
import sqlglot
from sqlglot import exp

import dxtrack
from dxtrack import sql
from dxtrack.record_schema import load_schema
from tests import infra_template
from tests.cli_data import DAY, Dataset, write_jsonl
from tests.test_infra import column_type, record_jobs

REGION = infra_template.REGION
EPOCH = datetime.date(1970, 1, 1)


# ---- Athena statements ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", sorted(p.stem for p in (Path(sql.__file__).parent / "athena").glob("*.sql"))
)
def test_every_athena_statement_parses(name: str) -> None:
    """With sqlglot's Athena dialect, as real statements (never the opaque Command fallback)."""
    statements = [s for s in sqlglot.parse(sql.query("athena", name), read="athena") if s]
    assert statements
    for statement in statements:
        assert not isinstance(statement, exp.Command), statement.sql()[:80]
        assert isinstance(statement, (exp.Select, exp.Create, exp.Union))


@pytest.mark.parametrize("fmt", ["json", "parquet"])
def test_athena_ddl_matches_the_json_schema(fmt: str) -> None:
    """The CREATE EXTERNAL TABLE columns are the schema's properties, typed as Glue's are."""
    creates = [
        s
        for s in sqlglot.parse(sql.query("athena", f"tables_{fmt}"), read="athena")
        if isinstance(s, exp.Create) and s.kind == "TABLE"
    ]
    assert [c.this.this.name for c in creates] == ["error", "metric"]
    for create, kind in zip(creates, ["error", "metric"], strict=True):
        columns = {
            col.name: col.args["kind"].sql("hive").lower().replace(" ", "")
            for col in create.this.expressions
        }
        expected = {
            name: column_type(spec, "glue").replace(" ", "")
            for name, spec in load_schema(kind)["properties"].items()
        }
        assert columns == expected
        stored = create.sql("athena").upper()
        assert ("STORED AS PARQUET" in stored) == (fmt == "parquet")


# ---- the queries in both dialects, on the same records --------------------------------------


def recent_dataset() -> Dataset:
    """Records of the last two weeks (the Athena queries read the last 30 days)."""
    today = time.time() // DAY * DAY
    return Dataset.generate(seed=21, runs=4, per_run=80, start=today - 14 * DAY)


def athena_tables(data: Dataset, tmp_path: Path) -> duckdb.DuckDBPyConnection:
    """DuckDB with the views over the records, and the Glue tables as dxtrack_prod.error and
    .metric (metadata as JSON text, a dt partition column), for the transpiled Athena queries."""
    write_jsonl(tmp_path / "error.jsonl", data.errors)
    write_jsonl(tmp_path / "metric.jsonl", data.metrics)
    con = duckdb.connect()
    con.execute(sql.duckdb_views([str(tmp_path / "error.jsonl")], [str(tmp_path / "metric.jsonl")]))
    con.execute("CREATE SCHEMA dxtrack_prod")
    for table, view in (("error", "errors"), ("metric", "metrics")):
        con.execute(
            f'CREATE TABLE dxtrack_prod."{table}" AS SELECT * REPLACE (CAST(metadata AS VARCHAR) '
            f"AS metadata), strftime(to_timestamp(\"timestamp\"), '%Y-%m-%d') AS dt FROM {view}"
        )
    return con


def plain(value: Any) -> Any:
    """Floats to 6 places; a midnight timestamp as its date (sqlglot turns Trino's sequence() of
    dates into DuckDB's generate_series, which gives timestamps)."""
    if isinstance(value, float):
        return round(value, 6)
    if isinstance(value, datetime.datetime) and value.time() == datetime.time():
        return value.date()
    return value


def rows(con: duckdb.DuckDBPyConnection, text: str) -> list[tuple[Any, ...]]:
    return [tuple(plain(v) for v in row) for row in con.sql(text).fetchall()]


EXACT = [
    "errors_per_day_by_fingerprint",
    "errors_per_day_by_type",
    "unhandled_errors_per_day",
    "runs_with_errors",
    "missing_daily_metric",
    "seq_gaps_per_day",
]


@pytest.mark.parametrize("name", EXACT)
def test_athena_queries_give_the_duckdb_answers(name: str, tmp_path: Path) -> None:
    """Each Athena query, transpiled to DuckDB by sqlglot, over tables shaped as Glue's, gives
    what the DuckDB form gives over the views (copies of records included)."""
    data = recent_dataset()
    data.errors += data.errors[:3]
    producers = sorted({r["producer_id"] for r in data.metrics})
    data.drop({(producers[1], 40), (producers[1], 41), (producers[3], 70)})
    data.metrics = [
        r for r in data.metrics if not (r["metadata"]["shop"] == "b" and r["seq"] % 3 == 0)
    ]
    con = athena_tables(data, tmp_path)
    athena = sqlglot.transpile(sql.query("athena", name), read="athena", write="duckdb")[0]
    native = rows(con, sql.query("duckdb", name))
    assert native, "the data gives this query something to find"
    assert rows(con, athena) == native


def test_metric_percentiles_in_both_dialects(tmp_path: Path) -> None:
    """Athena's approx_percentile against DuckDB's exact quantile_cont: same groups and counts,
    and percentiles within the approximation's reach."""
    con = athena_tables(recent_dataset(), tmp_path)
    athena = sqlglot.transpile(
        sql.query("athena", "metric_percentiles"), read="athena", write="duckdb"
    )[0]
    native = con.sql(sql.query("duckdb", "metric_percentiles")).fetchall()
    approx = con.sql(athena).fetchall()
    assert [r[:3] for r in approx] == [r[:3] for r in native]


# ---- completeness checks, against Python --------------------------------------------------------


def test_completeness_queries(tmp_path: Path) -> None:
    """Holes per producer and day, the runs with errors, and the days a shop's daily metric did
    not arrive: each as Python computes it from the records."""
    data = Dataset.generate(seed=5, runs=3, per_run=200)
    producers = sorted({r["producer_id"] for r in data.metrics})
    lost = {(producers[0], 1), (producers[0], 2), (producers[2], 150)}
    data.drop(lost)
    day_of = {
        (r["producer_id"], r["seq"]): int(r["timestamp"] // DAY) for r in data.errors + data.metrics
    }
    shop_days = sorted({int(r["timestamp"] // DAY) for r in data.metrics})
    gone = shop_days[2]
    data.metrics = [
        r
        for r in data.metrics
        if not (r["metadata"]["shop"] == "c" and int(r["timestamp"] // DAY) == gone)
    ]
    for record in data.metrics:
        if record["metric_name"] == "sync.seconds":
            record["metric_name"] = "products.downloaded"
    con = duckdb.connect()
    write_jsonl(tmp_path / "e.jsonl", data.errors)
    write_jsonl(tmp_path / "m.jsonl", data.metrics)
    con.execute(sql.duckdb_views([str(tmp_path / "e.jsonl")], [str(tmp_path / "m.jsonl")]))

    holes = con.sql(sql.query("duckdb", "seq_gaps_per_day")).fetchall()
    expected_holes: dict[tuple[str, int], int] = {}
    for producer, first, last in data.holes():
        key = (producer, day_of[(producer, last + 1)])
        expected_holes[key] = expected_holes.get(key, 0) + last - first + 1
    assert {(r[2], (r[0] - EPOCH).days): r[4] for r in holes} == expected_holes
    assert expected_holes[(producers[0], day_of[(producers[0], 3)])] >= 2
    assert expected_holes[(producers[2], day_of[(producers[2], 151)])] >= 1

    runs = {r[0]: r for r in con.sql(sql.query("duckdb", "runs_with_errors")).fetchall()}
    by_run: dict[str, float] = {}
    for record in data.unique(data.errors):
        weight = (1 + record["suppressed"]) / record.get("sample_rate", 1.0)
        by_run[record["run_id"]] = by_run.get(record["run_id"], 0) + weight
    assert {run: row[4] for run, row in runs.items()} == {k: round(v) for k, v in by_run.items()}

    missing = con.sql(sql.query("duckdb", "missing_daily_metric")).fetchall()
    seen: dict[str, set[int]] = {}
    for record in data.metrics:
        seen.setdefault(record["metadata"]["shop"], set()).add(int(record["timestamp"] // DAY))
    last = max(max(days) for days in seen.values())
    want = sorted(
        (day, shop)
        for shop, days in seen.items()
        for day in range(min(days), last + 1)
        if day not in days
    )
    assert (gone, "c") in want
    assert [((r[0] - EPOCH).days, r[1]) for r in missing] == want


# ---- the template's parameters, deployed on moto ------------------------------------------


@pytest.fixture
def fresh_moto(moto_server: str, firehose_calls: Any) -> str:
    """moto emptied: each deployment makes the template's resources anew."""
    requests.post(f"{moto_server}/moto-api/reset", timeout=10).raise_for_status()
    return moto_server


def test_parquet_with_a_compressing_producer_is_refused() -> None:
    """The template's rule: Firehose converts only plain JSON to Parquet."""
    for compression in ("gzip", "zstd"):
        with pytest.raises(infra_template.RuleFailed, match="only plain JSON"):
            infra_template.Stack(
                infra_template.load(),
                {"Stage": "dev", "OutputFormat": "parquet", "ProducerCompression": compression},
            )


def unzstd(data: bytes) -> bytes:
    import zstandard

    return zstandard.ZstdDecompressor().stream_reader(data, read_across_frames=True).read()


DECODE = {".json.gz": gzip.decompress, ".json.zst": unzstd}


@pytest.mark.parametrize("compression", ["none", "gzip", "zstd"])
def test_producer_compression_through_the_template(
    fresh_moto: str, compression: str, tmp_path: Path
) -> None:
    """Each ProducerCompression: the stream's own compression and the objects' extension as
    the template says; records sent with the SDK's matching option land under the template's
    prefixes, decode whole, and DuckDB's views find each record once."""
    stack = infra_template.Stack(
        infra_template.load(), {"Stage": "dev", "ProducerCompression": compression}
    )
    deployed = infra_template.deploy(stack)
    firehose = boto3.client("firehose", region_name=REGION)
    described = firehose.describe_delivery_stream(DeliveryStreamName="dxtrack-error-input-dev")
    config = described["DeliveryStreamDescription"]["Destinations"][0][
        "ExtendedS3DestinationDescription"
    ]
    extension = stack.properties("ErrorStream")["ExtendedS3DestinationConfiguration"][
        "FileExtension"
    ]
    assert config["CompressionFormat"] == ("GZIP" if compression == "none" else "UNCOMPRESSED")
    assert extension == {"none": ".json.gz", "gzip": ".json.gz", "zstd": ".json.zst"}[compression]
    table = boto3.client("glue", region_name=REGION).get_table(
        DatabaseName="dxtrack_dev", Name="error"
    )
    assert table["Table"]["Parameters"]["compressionType"] == (
        "zstd" if compression == "zstd" else "gzip"
    )

    dxtrack.configure(
        context="infra", stage="dev", compression=compression, spool_dir=tmp_path / "spool"
    )
    record_jobs()
    assert dxtrack.flush(timeout=30) is True
    s3 = boto3.client("s3", region_name=REGION)
    s3.delete_bucket_policy(Bucket=deployed["bucket"])  # moto only speaks HTTP
    lake = tmp_path / "lake"
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=deployed["bucket"])["Contents"]]
    for number, key in enumerate(keys):
        kind = key.split("/", 1)[0]
        body = s3.get_object(Bucket=deployed["bucket"], Key=key)["Body"].read()
        if compression != "none":  # what the producer sent is stored as it is: whole members
            assert body[:4] in (b"\x1f\x8b\x08\x00", b"(\xb5/\xfd") and DECODE[extension](
                body
            ).endswith(b"\n")
            name = f"{number}{extension}"  # the name Firehose gives it, from FileExtension
        else:
            name = f"{number}.json"  # real Firehose gzips these; moto stores them plain
        (lake / kind).mkdir(parents=True, exist_ok=True)
        (lake / kind / name).write_bytes(body)
    con = duckdb.connect()
    con.execute(sql.duckdb_views([str(lake / "error" / "*")], [str(lake / "metric" / "*")]))
    errors = con.execute(
        "SELECT sum(1 + suppressed), count(DISTINCT id), count(*) FROM errors"
    ).fetchone()
    assert errors is not None and errors[0] == 5 + 250 and errors[1] == errors[2]
    assert con.execute("SELECT count(DISTINCT id) FROM metrics").fetchone() == (102,)


def test_parquet_output(fresh_moto: str, tmp_path: Path) -> None:
    """OutputFormat parquet: the stream converts with the Glue table's schema to snappy Parquet
    and stores it uncompressed otherwise; the tables read Parquet. moto stores the JSON as sent,
    so the conversion is done here with the Glue columns' types, and the DuckDB Parquet views
    give the same answers as the JSON ones."""
    stack = infra_template.Stack(
        infra_template.load(), {"Stage": "prod", "OutputFormat": "parquet"}
    )
    infra_template.deploy(stack)
    firehose = boto3.client("firehose", region_name=REGION)
    for kind in ("error", "metric"):
        described = firehose.describe_delivery_stream(
            DeliveryStreamName=f"dxtrack-{kind}-input-prod"
        )
        config = described["DeliveryStreamDescription"]["Destinations"][0][
            "ExtendedS3DestinationDescription"
        ]
        conversion = config["DataFormatConversionConfiguration"]
        assert conversion["Enabled"] is True and config["CompressionFormat"] == "UNCOMPRESSED"
        assert conversion["SchemaConfiguration"]["TableName"] == kind
        assert conversion["SchemaConfiguration"]["DatabaseName"] == "dxtrack_prod"
        assert (
            conversion["OutputFormatConfiguration"]["Serializer"]["ParquetSerDe"]["Compression"]
            == "SNAPPY"
        )
        table = boto3.client("glue", region_name=REGION).get_table(
            DatabaseName="dxtrack_prod", Name=kind
        )
        serde = table["Table"]["StorageDescriptor"]["SerdeInfo"]["SerializationLibrary"]
        assert serde.endswith("ParquetHiveSerDe")
    role = boto3.client("iam").get_role_policy(
        RoleName="dxtrack-firehose-prod", PolicyName="write-to-the-dxtrack-bucket"
    )
    actions = {
        a
        for s in role["PolicyDocument"]["Statement"]
        for a in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])
    }
    assert {"glue:GetTable", "glue:GetTableVersions"} <= actions

    data = Dataset.generate(seed=9)
    write_jsonl(tmp_path / "error.jsonl", data.errors)
    write_jsonl(tmp_path / "metric.jsonl", data.metrics)
    con = duckdb.connect()
    con.execute(sql.duckdb_views([str(tmp_path / "error.jsonl")], [str(tmp_path / "metric.jsonl")]))
    json_answers = {
        n: con.sql(sql.query("duckdb", n)).fetchall()
        for n in ("error_groups", "metric_percentiles", "runs", "gaps")
    }
    for view, kind in (("errors", "error"), ("metrics", "metric")):
        con.execute(
            f"COPY (SELECT * REPLACE (CAST(metadata AS VARCHAR) AS metadata) FROM {view}) "
            f"TO '{tmp_path / kind}.parquet' (FORMAT parquet, COMPRESSION snappy)"
        )
    parquet = duckdb.connect()
    parquet.execute(
        sql.duckdb_views(
            [str(tmp_path / "error.parquet")], [str(tmp_path / "metric.parquet")], parquet=True
        )
    )
    for name, answer in json_answers.items():
        assert parquet.sql(sql.query("duckdb", name)).fetchall() == answer, name


def test_alarms_and_their_topic(fresh_moto: str) -> None:
    """Delivery failing, records throttled and data freshness, per stream, sent to an SNS topic
    with the endpoint given; no subscription without one."""
    stack = infra_template.Stack(
        infra_template.load(),
        {"Stage": "prod", "AlarmEndpoint": "oncall@example.com", "FreshnessLimitSeconds": "900"},
    )
    deployed = infra_template.deploy(stack)
    cloudwatch = boto3.client("cloudwatch", region_name=REGION)
    alarms = cloudwatch.describe_alarms()["MetricAlarms"]
    found = {
        (
            a["Dimensions"][0]["Value"],
            a["MetricName"],
            a["Statistic"],
            a["ComparisonOperator"],
            a["Threshold"],
        )
        for a in alarms
    }
    expected = set()
    for kind in ("error", "metric"):
        stream = f"dxtrack-{kind}-input-prod"
        expected |= {
            (stream, "DeliveryToS3.Success", "Minimum", "LessThanThreshold", 1.0),
            (stream, "ThrottledRecords", "Sum", "GreaterThanThreshold", 0.0),
            (stream, "DeliveryToS3.DataFreshness", "Maximum", "GreaterThanThreshold", 900.0),
        }
    assert found == expected
    assert all(a["AlarmActions"] == [deployed["topic_arn"]] == a["OKActions"] for a in alarms)
    assert all(
        a["Namespace"] == "AWS/Firehose" and a["TreatMissingData"] == "notBreaching" for a in alarms
    )
    sns = boto3.client("sns", region_name=REGION)
    [subscription] = sns.list_subscriptions_by_topic(TopicArn=deployed["topic_arn"])[
        "Subscriptions"
    ]
    assert (subscription["Protocol"], subscription["Endpoint"]) == ("email", "oncall@example.com")

    requests.post(f"{fresh_moto}/moto-api/reset", timeout=10).raise_for_status()
    quiet = infra_template.Stack(infra_template.load(), {"Stage": "prod"})
    assert "AlarmSubscription" not in quiet.resources
    deployed = infra_template.deploy(quiet)
    assert sns.list_subscriptions_by_topic(TopicArn=deployed["topic_arn"])["Subscriptions"] == []
