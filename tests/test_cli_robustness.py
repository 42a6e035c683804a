"""The dxtrack command against what real files and real records contain: text that looks like
markup, a torn last line, junk, files that can't be decoded, quotes in paths."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from click.testing import CliRunner, Result

import dxtrack
from dxtrack.cli.app import cli
from tests.cli_data import START, Dataset, metric, write_jsonl


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


HOSTILE = "closing [/bold] tag, [link=http://x]click[/link], \x1b[31mred\x1b[0m and [/]"


def test_text_that_looks_like_markup_is_shown_as_it_is(tmp_path: Path) -> None:
    """Rich markup in messages, contexts, metric names and metadata neither breaks a table nor
    styles it; terminal escape sequences are not passed through."""
    dxtrack.configure(context="[bold]ctx[/bold] [/]", stage="test", output_dir=tmp_path / "out")
    try:
        raise ValueError(HOSTILE)
    except ValueError:
        dxtrack.error(metadata={"k": "[/]"})
    dxtrack.metric("m[/]", 1, metadata={"shop": "[/x]"})
    assert dxtrack.flush(10)
    source = str(tmp_path / "out")
    for args in (["errors"], ["metrics", "--by", "shop"], ["runs"], ["tail"]):
        result = run(*args, "--source", source)
        assert result.exit_code == 0, result.output
        assert "\x1b" not in result.stdout
    assert "[/bold] tag, [link=http://x]click[/link]" in run("errors", "--source", source).stdout
    assert "m[/]" in run("metrics", "--source", source).stdout
    assert "[/x]" in run("metrics", "--source", source, "--by", "shop").stdout


def test_a_torn_line_and_junk_are_skipped_not_counted(tmp_path: Path) -> None:
    """A file still being written ends in half a line; junk lines and JSON that is not a record
    are skipped: the counts are those of the whole records, with no phantom row."""
    data = Dataset.generate(seed=2)
    out = data.write(tmp_path / "out")
    with (out / "metric.jsonl").open("ab") as f:
        f.write(b'{"context": "x", "metric_name": "torn", "val')
    with (out / "error.jsonl").open("ab") as f:
        f.write(b'garbage\n{"not": "a record"}\n')
    rows = json.loads(run("metrics", "--source", str(out), "--json").stdout)
    assert sum(r["records"] for r in rows) == len(data.metrics)
    assert all(r["metric_name"] for r in rows)
    groups = json.loads(run("errors", "--source", str(out), "--json").stdout)
    assert {g["fingerprint"]: g["occurrences"] for g in groups} == {
        fp: g["occurrences"] for fp, g in data.groups().items()
    }
    assert run("gaps", "--source", str(out)).exit_code == 0


def test_files_that_cant_be_read_are_named(tmp_path: Path) -> None:
    """A file that can't be decoded is skipped with a warning naming it; a gzip object whose
    second member is corrupt is a clear error (exit 1), not a traceback."""
    data = Dataset.generate(seed=3)
    out = data.write(tmp_path / "out")
    (out / "broken.gz").write_bytes(b"\x1f\x8b\x08\x00garbage")
    (out / "empty.jsonl").write_bytes(b"")
    result = run("errors", "--source", str(out), "--json")
    assert result.exit_code == 0
    assert "skipped 1 file(s)" in result.stderr and "broken.gz" in result.stderr
    assert len(json.loads(result.stdout)) == len(data.groups())

    good = gzip.compress(b"".join(json.dumps(r).encode() + b"\n" for r in data.metrics[:5]))
    (out / "late.gz").write_bytes(good + b"\x1f\x8b\x08\x00" + b"\x00" * 40)
    result = run("metrics", "--source", str(out))
    assert result.exit_code == 1
    assert "cannot read the records" in result.output and "Traceback" not in result.output


def test_quotes_and_spaces_in_paths(tmp_path: Path) -> None:
    """File paths go into DuckDB's SQL quoted: a quote in a directory's name is a name."""
    weird = tmp_path / "it's a dir; DROP VIEW errors --"
    records = [
        metric(name="m", value=i, timestamp=START + i, run_id="r", producer_id="p", seq=i + 1)
        for i in range(4)
    ]
    write_jsonl(weird / "metric.jsonl", records)
    [row] = json.loads(run("metrics", "--source", str(weird), "--json").stdout)
    assert (row["records"], row["max"]) == (4, 3)
    quoted = json.loads(run("metrics", "--source", str(weird), "--by", "it's", "--json").stdout)
    assert [r["split"] for r in quoted] == [None]


def test_tail_of_a_large_file_reads_its_end(tmp_path: Path) -> None:
    """tail -n of a file of many megabytes shows its last records (read from its end), and
    --json gives one record per line."""
    records = [
        metric(name="m", value=i, timestamp=START + i, run_id="r", producer_id="p", seq=i + 1)
        for i in range(30_000)
    ]
    path = write_jsonl(tmp_path / "out" / "metric.jsonl", records)
    assert path.stat().st_size > 4 << 20
    lines = run("tail", "--source", str(path), "-n", "3", "--json").stdout.splitlines()
    assert [json.loads(line)["value"] for line in lines] == [29_997, 29_998, 29_999]


def test_parquet_objects_beside_json_lines(tmp_path: Path) -> None:
    """Objects of the template's OutputFormat parquet (columns as the Glue tables), named as
    Firehose names them, read beside JSON Lines: the same answers as all JSON."""
    import duckdb

    from dxtrack import sql

    data = Dataset.generate(seed=4)
    half_e, half_m = len(data.errors) // 2, len(data.metrics) // 2
    lake = tmp_path / "lake"
    write_jsonl(lake / "error" / "a.json", data.errors[:half_e])
    write_jsonl(lake / "metric" / "a.json", data.metrics[:half_m])
    staging = tmp_path / "staging"
    write_jsonl(staging / "e.jsonl", data.errors[half_e:])
    write_jsonl(staging / "m.jsonl", data.metrics[half_m:])
    con = duckdb.connect()
    con.execute(sql.duckdb_views([str(staging / "e.jsonl")], [str(staging / "m.jsonl")]))
    for view, kind in (("errors", "error"), ("metrics", "metric")):
        target = lake / kind / "dxtrack-1-2026-09-21-part.parquet"
        con.execute(
            f"COPY (SELECT * REPLACE (CAST(metadata AS VARCHAR) AS metadata) FROM {view}) "
            f"TO '{target}' (FORMAT parquet, COMPRESSION snappy)"
        )
    groups = json.loads(run("errors", "--source", str(lake), "--json").stdout)
    assert {g["fingerprint"]: (g["occurrences"], g["runs"]) for g in groups} == {
        fp: (g["occurrences"], g["runs"]) for fp, g in data.groups().items()
    }
    rows = json.loads(run("metrics", "--source", str(lake), "--by", "shop", "--json").stdout)
    expected = data.metric_stats(lambda r: r["metadata"]["shop"])
    assert {(r["metric_name"], r["split"]): r["records"] for r in rows} == {
        key: stats["records"] for key, stats in expected.items()
    }
    assert run("gaps", "--source", str(lake)).exit_code == 0
