"""The demo: the example job end to end, with no AWS account.

1. Stage ``test``: the job writes ``error.jsonl`` and ``metric.jsonl``; the demo prints them.
2. Stage ``prod``: the same job ships to Kinesis Firehose, here a local moto server that delivers
   to S3. The job exits without calling ``flush()``; dxtrack delivers at exit. The demo then
   lists what landed in the bucket.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
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
    out = workdir / "out"
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
    server = ThreadedMotoServer(port=0, verbose=False)
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
        return records
    finally:
        server.stop()


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="dxtrack-demo-") as tmp:
        workdir = Path(tmp)
        local = stage_test(workdir)
        landed = stage_prod_through_moto(workdir)
    kinds = {"error": 0, "metric": 0}
    for record in landed:
        kinds["error" if "exception" in record else "metric"] += 1
    print(
        f"\nSummary: stage test wrote {len(local)} records; {len(landed)} landed in S3 "
        f"({kinds['error']} errors, {kinds['metric']} metrics), each once: "
        f"{len({r['id'] for r in landed}) == len(landed)}"
    )
    if len(landed) != len(local):
        sys.exit("demo failed: the prod run did not deliver every record")


if __name__ == "__main__":
    main()
