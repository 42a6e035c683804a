"""The dxtrack command against AWS's side, through moto servers over HTTP: S3 sources, the spool
commands after a real outage, and doctor."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from click.testing import CliRunner, Result

from dxtrack.cli.app import cli
from dxtrack.cli.sources import Source
from tests.aws import REGION, Streams
from tests.cli_data import Dataset, write_jsonl
from tests.lifecycle import free_port


def run(*args: str, ok: bool = True, input: str | None = None) -> Result:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False, input=input)
    if ok:
        assert result.exit_code == 0, result.output
    return result


def put(bucket: str, key: str, path: Path) -> None:
    boto3.client("s3", region_name=REGION).put_object(
        Bucket=bucket, Key=key, Body=path.read_bytes()
    )


def test_s3_source_plain_and_gzip_objects(
    streams: Streams, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Objects as Firehose writes them (gzip without a telling name, plain), under the
    template's prefixes; delivery-errors/ is not records. Downloaded once, then from the cache."""
    monkeypatch.setenv("DXTRACK_CLI_CACHE", str(tmp_path / "cache"))
    data = Dataset.generate(seed=3)
    half = len(data.errors) // 2
    files = tmp_path / "objects"
    put(
        streams.bucket,
        "error/dt=2026-09-21/a",
        write_jsonl(files / "a", data.errors[:half], "gzip"),
    )
    put(streams.bucket, "error/dt=2026-09-22/b.json", write_jsonl(files / "b", data.errors[half:]))
    put(streams.bucket, "metric/dt=2026-09-21/m.gz", write_jsonl(files / "m", data.metrics, "gzip"))
    bogus = files / "bogus"
    bogus.write_text('{"attemptsMade": 4, "errorCode": "S3.AccessDenied"}\n')
    put(streams.bucket, "delivery-errors/error/x", bogus)

    spec = f"s3://{streams.bucket}/"
    groups = json.loads(run("errors", "--source", spec, "--json").stdout)
    assert {g["fingerprint"]: g["occurrences"] for g in groups} == {
        fp: g["occurrences"] for fp, g in data.groups().items()
    }
    metrics = json.loads(run("metrics", "--source", spec, "--json").stdout)
    assert sum(m["records"] for m in metrics) == len(data.metrics)

    seen: list[tuple[int, int]] = []
    source = Source(spec, progress=lambda done, total: seen.append((done, total)))
    assert len(source.files().error) == 2
    assert seen == [], "every object was in the cache"
    only = Source(f"s3://{streams.bucket}/metric/", progress=lambda d, t: seen.append((d, t)))
    assert [p.name for p in only.files().metric] == ["m.gz"] and not only.files().error

    missing = run("errors", "--source", "s3://no-such-bucket-dxtrack/", ok=False)
    assert missing.exit_code == 1 and "cannot list s3://no-such-bucket-dxtrack/" in missing.output


def test_s3_source_reads_what_dxtrack_delivered(
    streams: Streams, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A job ships with gzip compression through Firehose to S3; the command finds each record."""
    monkeypatch.setenv("DXTRACK_CLI_CACHE", str(tmp_path / "cache"))
    program = (
        "import dxtrack\n"
        "dxtrack.configure()\n"
        "for i in range(40):\n"
        "    try:\n"
        "        raise KeyError(i % 4)\n"
        "    except KeyError:\n"
        "        dxtrack.error()\n"
        "    dxtrack.metric('n', i)\n"
    )
    env = {
        **os.environ,
        **streams.env(),
        "DXTRACK_COMPRESSION": "gzip",
        "DXTRACK_SPOOL_DIR": str(tmp_path / "spool"),
    }
    subprocess.run([sys.executable, "-c", program], env=env, check=True, timeout=60)
    landed = streams.records("error")
    assert len(landed) == 40
    spec = f"s3://{streams.bucket}/"
    groups = json.loads(run("errors", "--source", spec, "--json").stdout)
    assert [g["occurrences"] for g in groups] == [40]
    [metric] = json.loads(run("metrics", "--source", spec, "--json").stdout)
    assert (metric["records"], metric["max"]) == (40, 39)
    assert run("gaps", "--source", spec).exit_code == 0


@pytest.fixture
def outage_port() -> Iterator[int]:
    """A port where AWS is down now and comes up later (a moto server started by the test)."""
    yield free_port()


def test_spool_status_replay_and_purge(tmp_path: Path, outage_port: int) -> None:
    """A job during an outage spools its records at exit; `spool status` counts them per
    destination; `spool replay` delivers each exactly once when AWS is back; `purge` asks."""
    from moto.server import ThreadedMotoServer

    spool = tmp_path / "spool"
    endpoint = f"http://127.0.0.1:{outage_port}"
    aws = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ENDPOINT_URL": endpoint,
    }
    job = {
        **os.environ,
        **aws,
        "DXTRACK_STAGE": "prod",
        "DXTRACK_CONTEXT": "outage",
        "DXTRACK_SPOOL_DIR": str(spool),
        "DXTRACK_EXIT_TIMEOUT": "1",
        "DXTRACK_RETRY_BUDGET": "1",
    }
    program = (
        "import dxtrack\ndxtrack.configure()\nfor i in range(60): dxtrack.metric('m', i % 30)\n"
    )
    subprocess.run([sys.executable, "-c", program], env=job, check=True, timeout=60)

    status = json.loads(run("spool", "status", "--spool-dir", str(spool), "--json").stdout)
    [waiting] = [d for d in status["destinations"] if d["lines"]]
    assert waiting["lines"] == 60 and "metric" in waiting["destination"]
    assert "60 records waiting" in run("spool", "status", "--spool-dir", str(spool)).stdout

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=outage_port, verbose=False)
    server.start()
    try:
        saved = {k: os.environ.get(k) for k in aws}
        os.environ.update(aws)
        try:
            streams = Streams.create()
            replay_env = {**job, **streams.env(), "DXTRACK_SPOOL_DIR": str(spool)}
            result = subprocess.run(
                [sys.executable, "-m", "dxtrack", "spool", "replay", "--timeout", "60"],
                env=replay_env,
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert result.returncode == 0, result.stdout + result.stderr
            assert "sent 60; 0 still waiting" in result.stdout
            landed = streams.records("metric")
            assert sorted(r["value"] for r in landed) == sorted(list(range(30)) * 2)
            assert len({r["id"] for r in landed}) == 60
        finally:
            for key, value in saved.items():
                os.environ.pop(key, None) if value is None else os.environ.__setitem__(key, value)
    finally:
        server.stop()
    status = json.loads(run("spool", "status", "--spool-dir", str(spool), "--json").stdout)
    assert sum(d["lines"] for d in status["destinations"]) == 0

    subprocess.run([sys.executable, "-c", program], env=job, check=True, timeout=60)
    refused = run("spool", "purge", "--spool-dir", str(spool), input="n\n", ok=False)
    assert refused.exit_code == 1 and "Remove these 60 records for good?" in refused.output
    assert "Aborted" in refused.output
    status = json.loads(run("spool", "status", "--spool-dir", str(spool), "--json").stdout)
    assert sum(d["lines"] for d in status["destinations"]) == 60
    purged = run("spool", "purge", "--spool-dir", str(spool), "--yes")
    assert "removed 60 records" in purged.stdout
    status = json.loads(run("spool", "status", "--spool-dir", str(spool), "--json").stdout)
    assert sum(d["lines"] for d in status["destinations"]) == 0


def doctor(env: dict[str, str]) -> tuple[int, list[dict[str, Any]], str]:
    result = subprocess.run(
        [sys.executable, "-m", "dxtrack", "doctor", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    text = subprocess.run(
        [sys.executable, "-m", "dxtrack", "doctor"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    return result.returncode, json.loads(result.stdout), text


def clean_env(**more: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("DXTRACK_")}
    return {**base, **more}


def test_doctor_in_stage_test(tmp_path: Path) -> None:
    """Stage test: the configuration and the output directory; a missing stage is named."""
    code, checks, text = doctor(clean_env(DXTRACK_STAGE="test", DXTRACK_OUTPUT_DIR=str(tmp_path)))
    assert code == 0 and [c["name"] for c in checks] == ["configuration", "output directory"]
    assert all(c["ok"] for c in checks) and "ok" in text
    code, checks, text = doctor(clean_env())
    assert code == 1 and not checks[0]["ok"] and "DXTRACK_STAGE" in checks[0]["detail"]
    assert "FAIL" in text and "fix:" in text
    blocked = tmp_path / "file"
    blocked.write_text("")
    code, checks, _ = doctor(clean_env(DXTRACK_STAGE="test", DXTRACK_OUTPUT_DIR=str(blocked)))
    assert code == 1 and checks[1]["name"] == "output directory" and not checks[1]["ok"]


def test_doctor_against_aws(streams: Streams, tmp_path: Path) -> None:
    """Stage prod through moto: credentials, both streams, the spool; a missing stream and an
    unreachable Papertrail fail with a fix."""
    env = clean_env(**streams.env(), DXTRACK_SPOOL_DIR=str(tmp_path / "spool"))
    code, checks, _ = doctor(env)
    assert code == 0, checks
    names = [c["name"] for c in checks]
    assert names == [
        "configuration",
        "AWS credentials",
        f"stream {streams.error_stream}",
        f"stream {streams.metric_stream}",
        "spool directory",
    ]
    env["DXTRACK_METRIC_STREAM"] = "no-such-stream"
    env["DXTRACK_PAPERTRAIL_HOSTPORT"] = f"127.0.0.1:{free_port()}"
    env["DXTRACK_PAPERTRAIL_TRANSPORT"] = "tcp"
    code, checks, text = doctor(env)
    failed = {c["name"]: c for c in checks if not c["ok"]}
    assert code == 1 and set(failed) == {"stream no-such-stream", "Papertrail"}
    assert "deploy infra/dxtrack.yaml" in failed["stream no-such-stream"]["fix"]
    assert "Connection refused" in failed["Papertrail"]["detail"]
    assert text.count("FAIL") == 2
