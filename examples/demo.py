"""The demo: the example job end to end, with no AWS account.

1. Stage ``test``: the job writes ``error.jsonl`` and ``metric.jsonl`` under ``demo-output/``;
   the demo prints them.
2. Stage ``prod``: the same job ships to Kinesis Firehose, here a local moto server (on
   127.0.0.1) that delivers to S3. The job exits without calling ``flush()``; dxtrack delivers
   at exit. The demo then lists what landed in the bucket.
3. The ``dxtrack`` command reads the bucket: ``dxtrack errors`` prints the errors grouped by
   fingerprint, and ``dxtrack report`` writes ``demo-output/report.html``.

Everything it writes stays in ``demo-output/`` (set ``DEMO_OUTPUT`` to move it).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
OUTPUT = Path(os.environ.get("DEMO_OUTPUT", "demo-output")).absolute()
BUCKET = "dxtrack-demo-bucket"
REGION = "eu-west-1"


def run_job(env: dict[str, str]) -> None:
    """Run examples/job.py as its own process, as a real job would run."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DXTRACK_", "AWS_"))}
    subprocess.run([sys.executable, str(HERE / "job.py")], env={**base, **env}, check=True)


def describe(record: dict[str, Any]) -> str:
    if "exception" in record:
        exc = record["exception"]
        has_tb = "traceback" if exc["traceback"] else "no traceback"
        return f"error  {exc['type']}: {exc['value']}  ({has_tb})  metadata={record['metadata']}"
    return f"metric {record['metric_name']} = {record['value']}  metadata={record['metadata']}"


def show(title: str, records: list[dict[str, Any]], limit: int = 12) -> None:
    print(f"\n== {title}: {len(records)} records")
    for record in records[:limit]:
        print("  " + describe(record))
    if len(records) > limit:
        print(f"  ... and {len(records) - limit} more")


def stage_test(workdir: Path) -> list[dict[str, Any]]:
    out = workdir / "stage-test"
    run_job(
        {"DXTRACK_STAGE": "test", "DXTRACK_CONTEXT": "example-job", "DXTRACK_OUTPUT_DIR": str(out)}
    )
    records = []
    for name in ("error.jsonl", "metric.jsonl"):
        records += [json.loads(line) for line in (out / name).read_text().splitlines()]
    show(f"stage test: {out}/error.jsonl and metric.jsonl", records)
    return records


def stage_prod_through_moto(workdir: Path) -> list[dict[str, Any]]:
    import boto3
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    aws = {
        "AWS_ACCESS_KEY_ID": "demo",
        "AWS_SECRET_ACCESS_KEY": "demo",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ENDPOINT_URL": f"http://{host}:{port}",
    }
    os.environ.update(aws)
    try:
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        firehose = boto3.client("firehose", region_name=REGION)
        for kind in ("error", "metric"):
            firehose.create_delivery_stream(
                DeliveryStreamName=f"dxtrack-{kind}-input-prod",
                DeliveryStreamType="DirectPut",
                ExtendedS3DestinationConfiguration={
                    "RoleARN": "arn:aws:iam::123456789012:role/dxtrack-demo",
                    "BucketARN": f"arn:aws:s3:::{BUCKET}",
                    "Prefix": f"{kind}/",
                },
            )
        run_job(
            {
                **aws,
                "DXTRACK_STAGE": "prod",
                "DXTRACK_CONTEXT": "example-job",
                "DXTRACK_SPOOL_DIR": str(workdir / "spool"),
            }
        )
        records = []
        print(f"\n== stage prod: objects in s3://{BUCKET} (Firehose -> S3 on a local moto server)")
        for obj in s3.list_objects_v2(Bucket=BUCKET).get("Contents", []):
            body = s3.get_object(Bucket=BUCKET, Key=obj["Key"])["Body"].read()
            lines = body.splitlines()
            print(f"  {obj['Key']}  ({len(lines)} lines, {len(body)} bytes)")
            records += [json.loads(line) for line in lines]
        show("stage prod: records read back from S3", records, limit=4)
        look_with_the_command(workdir)
        return records
    finally:
        server.stop()


def look_with_the_command(workdir: Path) -> None:
    """What a user runs next: the dxtrack command over the bucket."""
    source = f"s3://{BUCKET}/"
    env = {**os.environ, "DXTRACK_CLI_CACHE": str(workdir / "cache"), "COLUMNS": "100"}
    command = [sys.executable, "-m", "dxtrack"]
    print(f"\n== dxtrack errors --source {source}")
    subprocess.run([*command, "errors", "--source", source], env=env, check=True)
    report = workdir / "report.html"
    print(f"\n== dxtrack report --source {source} --out {report}")
    subprocess.run(
        [*command, "report", "--source", source, "--out", str(report)], env=env, check=True
    )


def main() -> None:
    shutil.rmtree(OUTPUT, ignore_errors=True)  # the last demo's output
    OUTPUT.mkdir(parents=True)
    local = stage_test(OUTPUT)
    landed = stage_prod_through_moto(OUTPUT)
    kinds = {"error": 0, "metric": 0}
    for record in landed:
        kinds["error" if "exception" in record else "metric"] += 1
    print(
        f"\nSummary: stage test wrote {len(local)} records; {len(landed)} landed in S3 "
        f"({kinds['error']} errors, {kinds['metric']} metrics), each once: "
        f"{len({r['id'] for r in landed}) == len(landed)}"
    )
    print(f"Open {OUTPUT / 'report.html'} in a browser.")
    command = Path(sys.executable).parent / "dxtrack"  # the demo's venv is not activated
    print(f"For a live view: {command} ui --source {OUTPUT / 'stage-test'}")
    if len(landed) != len(local):
        sys.exit("demo failed: the prod run did not deliver every record")


if __name__ == "__main__":
    main()
