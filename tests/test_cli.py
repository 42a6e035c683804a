"""The dxtrack command over generated records whose answers the tests compute in Python."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

import dxtrack
from dxtrack.cli.app import cli
from tests.cli_data import DAY, START, Dataset, error, metric, write_jsonl


def run(*args: str, ok: bool = True) -> Result:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    if ok:
        assert result.exit_code == 0, result.output
    return result


def as_json(*args: str) -> Any:
    return json.loads(run(*args, "--json").stdout)


@pytest.fixture
def dataset() -> Dataset:
    data = Dataset.generate()
    # at-least-once delivery: a copy of some records, in a file of its own
    data.errors += data.errors[:5]
    return data


@pytest.mark.parametrize("codec", ["none", "gzip", "zstd"])
def test_errors_grouped_by_fingerprint(dataset: Dataset, tmp_path: Path, codec: str) -> None:
    """Counts (copies once, suppressed and sample_rate weighed), first and last seen, contexts,
    runs, and the latest message and traceback, as Python computes them."""
    source = dataset.write(tmp_path / "out", codec)
    groups = as_json("errors", "--source", str(source))
    expected = dataset.groups()
    assert [g["fingerprint"] for g in groups] == sorted(
        expected, key=lambda fp: (-expected[fp]["occurrences"], -expected[fp]["last_seen"])
    )
    for group in groups:
        want = expected[group["fingerprint"]]
        assert group["occurrences"] == want["occurrences"]
        assert group["first_seen"] == want["first_seen"]
        assert group["last_seen"] == want["last_seen"]
        assert group["contexts"] == want["contexts"]
        assert group["runs"] == want["runs"]
        assert group["message"] == want["message"]
        assert group["traceback"] == want["traceback"]
    assert expected["fp-timeout"]["occurrences"] > sum(
        1 for r in dataset.unique(dataset.errors) if r["fingerprint"] == "fp-timeout"
    ), "the data has summaries, so the weighing is tested"


def test_errors_of_one_fingerprint(dataset: Dataset, tmp_path: Path) -> None:
    """--fingerprint takes a prefix and lists that group's records once each, newest first."""
    source = dataset.write(tmp_path / "out")
    rows = as_json("errors", "--source", str(source), "--fingerprint", "fp-pr", "--limit", "500")
    want = sorted(
        (r for r in dataset.unique(dataset.errors) if r["fingerprint"] == "fp-price"),
        key=lambda r: -r["timestamp"],
    )
    assert [row["id"] for row in rows] == [r["id"] for r in want]
    assert rows[0]["metadata"] == want[0]["metadata"]
    ambiguous = run("errors", "--source", str(source), "--fingerprint", "fp-", ok=False)
    assert ambiguous.exit_code == 1 and "fingerprints start with 'fp-'" in ambiguous.output


def test_errors_table_for_people(dataset: Dataset, tmp_path: Path) -> None:
    """The table names each group with its count, and shows the top group's latest traceback."""
    source = dataset.write(tmp_path / "out")
    output = run("errors", "--source", str(source)).stdout
    expected = dataset.groups()
    for fingerprint, group in expected.items():
        assert fingerprint in output
        assert str(group["occurrences"]) in output
    top = max(expected, key=lambda fp: expected[fp]["occurrences"])
    assert expected[top]["traceback"].splitlines()[-1] in output


def close(row: dict[str, Any], want: dict[str, float]) -> None:
    for key, value in want.items():
        assert row[key] == pytest.approx(value, rel=1e-9), key


def test_metrics_per_name_by_key_and_by_time(dataset: Dataset, tmp_path: Path) -> None:
    """count, min, p50, p95, max and last per metric name; split by a metadata key; and by
    hour-long buckets."""
    source = str(dataset.write(tmp_path / "out"))
    rows = as_json("metrics", "--source", source)
    expected = dataset.metric_stats()
    assert {(r["metric_name"], r["split"]) for r in rows} == set(expected)
    for row in rows:
        close(row, expected[(row["metric_name"], None)])

    rows = as_json("metrics", "--source", source, "--by", "shop")
    expected = dataset.metric_stats(lambda r: r["metadata"]["shop"])
    assert {(r["metric_name"], r["split"]) for r in rows} == set(expected)
    for row in rows:
        close(row, expected[(row["metric_name"], row["split"])])

    rows = as_json("metrics", "--source", source, "--every", "6h")
    from datetime import datetime, timezone

    def bucket(record: dict[str, Any]) -> str:
        start = record["timestamp"] // 21600 * 21600
        return datetime.fromtimestamp(start, timezone.utc).isoformat().replace("+00:00", "Z")

    expected = dataset.metric_stats(bucket)
    assert len(expected) > 8
    assert {(r["metric_name"], r["split"]) for r in rows} == set(expected)
    for row in rows:
        close(row, expected[(row["metric_name"], row["split"])])
    bad = run("metrics", "--source", source, "--every", "soon", ok=False)
    assert bad.exit_code == 2 and "--every" in bad.output


def test_gaps_are_the_deleted_lines(dataset: Dataset, tmp_path: Path) -> None:
    """Delete known records: gaps lists exactly those holes (with a hole at a producer's start)
    and exits 1; runs counts them as lost per run."""
    producers = sorted({r["producer_id"] for r in dataset.metrics})
    dataset.drop(
        {
            (producers[0], 1),
            (producers[0], 2),
            (producers[1], 30),
            (producers[2], 17),
            (producers[2], 18),
            (producers[2], 19),
        }
    )
    source = str(dataset.write(tmp_path / "out"))
    result = run("gaps", "--source", source, "--json", ok=False)
    assert result.exit_code == 1
    rows = json.loads(result.stdout)
    found = sorted((r["producer_id"], r["first_missing"], r["last_missing"]) for r in rows)
    assert found == dataset.holes()
    assert found == [(producers[0], 1, 2), (producers[1], 30, 30), (producers[2], 17, 19)]
    assert sum(r["missing"] for r in rows) == 6

    runs = {r["run_id"]: r for r in as_json("runs", "--source", source)}
    by_producer = {r["producer_id"]: r["run_id"] for r in dataset.metrics}
    assert runs[by_producer[producers[0]]]["lost"] == 2
    assert runs[by_producer[producers[2]]]["lost"] == 3
    assert sum(r["lost"] for r in runs.values()) == 6


def test_runs(dataset: Dataset, tmp_path: Path) -> None:
    """Per run: start and end over both kinds, errors (weighed), metrics, producers."""
    source = str(dataset.write(tmp_path / "out"))
    runs = {r["run_id"]: r for r in as_json("runs", "--source", source)}
    errors = dataset.unique(dataset.errors)
    for run_id, row in runs.items():
        mine = [r for r in errors + dataset.metrics if r["run_id"] == run_id]
        assert row["started"] == min(r["timestamp"] for r in mine)
        assert row["ended"] == max(r["timestamp"] for r in mine)
        weighed = sum(
            (1 + r["suppressed"]) / r.get("sample_rate", 1) for r in errors if r["run_id"] == run_id
        )
        assert row["errors"] == round(weighed)
        assert row["metrics"] == sum(1 for r in dataset.metrics if r["run_id"] == run_id)
        assert row["producers"] == 1 and row["lost"] == 0
    assert len(runs) == 4
    assert run("gaps", "--source", source).exit_code == 0


def test_query_over_the_views(dataset: Dataset, tmp_path: Path) -> None:
    """DuckDB SQL over `errors` and `metrics`; a bad query is a clear error, not a traceback."""
    source = str(dataset.write(tmp_path / "out"))
    rows = as_json(
        "query",
        "--source",
        source,
        "SELECT metadata->>'shop' AS shop, count(*) AS n FROM metrics GROUP BY 1 ORDER BY 1",
    )
    counts: dict[str, int] = {}
    for record in dataset.metrics:
        counts[record["metadata"]["shop"]] = counts.get(record["metadata"]["shop"], 0) + 1
    assert {r["shop"]: r["n"] for r in rows} == counts
    bad = run("query", "--source", source, "SELECT nope FROM errors", ok=False)
    assert bad.exit_code == 1 and "nope" in bad.output and "Traceback" not in bad.output


def test_sources_files_globs_and_odd_names(dataset: Dataset, tmp_path: Path) -> None:
    """Files named anything: kind from the first record, codec from the first bytes (a gzip
    object without an extension, as Firehose writes them); a glob; a missing path."""
    half = len(dataset.errors) // 2
    write_jsonl(tmp_path / "lake" / "a" / "part-0001", dataset.errors[:half], "gzip")
    write_jsonl(tmp_path / "lake" / "b" / "x.jsonl", dataset.errors[half:])
    write_jsonl(tmp_path / "lake" / "b" / "y.gz", dataset.metrics, "zstd")  # misnamed
    (tmp_path / "lake" / "notes.txt").write_text("not records")
    expected = dataset.groups()
    for spec in (str(tmp_path / "lake"), str(tmp_path / "lake" / "*" / "*")):
        groups = as_json("errors", "--source", spec)
        assert {g["fingerprint"]: g["occurrences"] for g in groups} == {
            fp: g["occurrences"] for fp, g in expected.items()
        }
        assert sum(r["records"] for r in as_json("metrics", "--source", spec)) == len(
            dataset.metrics
        )
    missing = run("errors", "--source", str(tmp_path / "nowhere"), ok=False)
    assert missing.exit_code == 1 and "no such file or directory" in missing.output


def test_empty_source(tmp_path: Path) -> None:
    """A directory with no records yet answers with empty tables, not an error."""
    (tmp_path / "out").mkdir()
    assert as_json("errors", "--source", str(tmp_path / "out")) == []
    assert as_json("metrics", "--source", str(tmp_path / "out")) == []
    assert "No gaps" in run("gaps", "--source", str(tmp_path / "out")).stdout


def test_the_default_source_is_what_stage_test_writes(tmp_path: Path) -> None:
    """Real records from dxtrack in stage test, read from ./.dxtrack_output by default."""
    dxtrack.configure(context="cli-test", stage="test")
    raised = 0
    for i in range(25):
        try:
            {}["missing"] if i % 5 else int("x")
        except (KeyError, ValueError):
            dxtrack.error(metadata={"i": i})
            raised += 1
        dxtrack.metric("items", i)
    assert dxtrack.flush(10)
    groups = as_json("errors")
    assert sorted(g["occurrences"] for g in groups) == [5, 20]
    assert {g["type"] for g in groups} == {"KeyError", "ValueError"}
    assert sum(g["occurrences"] for g in groups) == raised
    [items] = as_json("metrics")
    assert (items["records"], items["min"], items["max"], items["last"]) == (25, 0, 24, 24)
    assert run("gaps").exit_code == 0


def test_tail_then_follow(tmp_path: Path) -> None:
    """tail shows the last N records oldest first; -f shows each record appended later."""
    from dxtrack.cli.sources import Source
    from dxtrack.cli.tail import tail

    out = tmp_path / "out"
    records = [
        metric(name="m", value=i, timestamp=START + i, run_id="r", producer_id="p", seq=i + 1)
        for i in range(10)
    ]
    write_jsonl(out / "metric.jsonl", records)
    shown: list[dict[str, Any]] = []
    first = threading.Event()
    arrived = threading.Event()
    stop = threading.Event()

    def show(record: dict[str, Any]) -> None:
        shown.append(record)
        if len(shown) == 3:
            first.set()
        if record.get("value") == 99:
            arrived.set()

    thread = threading.Thread(
        target=tail,
        args=(Source(str(out)), show),
        kwargs={"lines": 3, "follow": True, "interval": 0.05, "stop": stop},
    )
    thread.start()
    try:
        assert first.wait(10)
        late = error(
            fingerprint="f",
            type="E",
            value="late",
            timestamp=START + 50,
            run_id="r",
            producer_id="p",
            seq=11,
        )
        last = metric(name="m", value=99, timestamp=START + 60, run_id="r", producer_id="p", seq=12)
        with (out / "error.jsonl").open("ab") as f:  # a new file appears
            f.write(json.dumps(late).encode() + b"\n")
        with (out / "metric.jsonl").open("ab") as f:  # written in two pieces
            line = json.dumps(last).encode() + b"\n"
            f.write(line[:20])
            f.flush()
            f.write(line[20:])
        assert arrived.wait(10)
    finally:
        stop.set()
        thread.join(10)
    assert [r.get("value") for r in shown[:3]] == [7, 8, 9]
    assert [r["id"] for r in shown[3:]] == [late["id"], last["id"]]

    text = run("tail", "--source", str(out), "-n", "2").stdout
    assert "ERROR E: late" in text and "Traceback (most recent call last)" in text
    assert "m = 99" in text and "m = 9\n" not in text


def test_report_is_one_offline_file(dataset: Dataset, tmp_path: Path) -> None:
    """The report holds its data, style and script; nothing is fetched; a message that tries
    to close the script element stays data."""
    hostile = "</script><script>document.title='owned'</script>"
    dataset.errors.append(
        error(
            fingerprint="fp-html",
            type="ValueError",
            value=hostile,
            timestamp=START + 3 * DAY,
            run_id="run00" + "0" * 27,
            producer_id="00" + "a" * 30,
            seq=999,
        )
    )
    source = str(dataset.write(tmp_path / "out"))
    out = tmp_path / "r" / "report.html"
    run("report", "--source", source, "--out", str(out))
    page = out.read_text()
    assert hostile not in page
    assert (
        "src=" not in page
        and 'href="/static' not in page
        and "http://" not in page.replace("http://www.w3.org/2000/svg", "")
    )
    start = page.index('<script type="application/json" id="dxtrack-snapshot">')
    end = page.index("</script>", start)
    data = json.loads(page[page.index(">", start) + 1 : end])
    by_fp = {g["fingerprint"]: g for g in data["groups"]}
    assert by_fp["fp-html"]["message"] == hostile
    expected = dataset.groups()
    assert {fp: g["occurrences"] for fp, g in by_fp.items()} == {
        fp: g["occurrences"] for fp, g in expected.items()
    }
    assert data["errors_every"] == DAY
    per_day = sum(row["errors"] for row in data["errors_timeline"])
    assert per_day == pytest.approx(sum(g["occurrences"] for g in expected.values()), abs=4)


def test_python_dash_m_and_help() -> None:
    """`python -m dxtrack` is the command; --help lists every subcommand."""
    result = subprocess.run(
        [sys.executable, "-m", "dxtrack", "--help"], capture_output=True, text=True, check=True
    )
    for name in (
        "tail",
        "errors",
        "metrics",
        "runs",
        "gaps",
        "query",
        "report",
        "ui",
        "spool",
        "doctor",
    ):
        assert f"  {name}" in result.stdout
    script = Path(sys.executable).parent / "dxtrack"  # the console script, beside python
    version = subprocess.run([str(script), "--version"], capture_output=True, text=True, check=True)
    assert "dxtrack" in version.stdout
