"""Shared by the benchmarks: a moto server in its own process, streams, and a call counter."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

REGION = "eu-west-1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def moto_server_process() -> Iterator[str]:
    """moto's server in a separate process (as AWS is, for a real producer)."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                raise RuntimeError("moto server did not start") from None
            time.sleep(0.05)
    os.environ.update(
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_DEFAULT_REGION=REGION,
        AWS_ENDPOINT_URL=url,
    )
    try:
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


def create_streams(prefix: str = "bench") -> dict[str, str]:
    """A bucket and two streams; returns configure() arguments that point at them."""
    import boto3

    suffix = uuid.uuid4().hex[:8]
    bucket = f"{prefix}-{suffix}"
    boto3.client("s3", region_name=REGION).create_bucket(
        Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION}
    )
    firehose = boto3.client("firehose", region_name=REGION)
    names = {}
    for kind in ("error", "metric"):
        name = f"{prefix}-{kind}-{suffix}"
        firehose.create_delivery_stream(
            DeliveryStreamName=name,
            ExtendedS3DestinationConfiguration={
                "RoleARN": "arn:aws:iam::123456789012:role/bench",
                "BucketARN": f"arn:aws:s3:::{bucket}",
                "Prefix": f"{kind}/",
            },
        )
        names[f"{kind}_stream"] = name
    return {"bucket": bucket, **names}


def configure_against_new_streams(**settings: Any) -> str:
    """Create a bucket and streams, configure dxtrack (stage prod) to ship to them, with a spool
    of its own; return the bucket's name."""
    import atexit
    import shutil
    import tempfile

    import dxtrack

    streams = create_streams()
    bucket = streams.pop("bucket")
    spool_dir = tempfile.mkdtemp(prefix="dxtrack-bench-")
    # Registered before configure(), so it runs after dxtrack's own exit hook has spooled.
    atexit.register(shutil.rmtree, spool_dir, ignore_errors=True)
    dxtrack.configure(stage="prod", spool_dir=spool_dir, **streams, **settings)
    return bucket


@dataclass
class PutRecordBatchLog:
    """Every PutRecordBatch made by any botocore session created after ``install()``."""

    calls: list[list[bytes]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def install(self) -> None:
        import botocore.handlers

        botocore.handlers.BUILTIN_HANDLERS.append(
            ("before-call.firehose.PutRecordBatch", self._observe)
        )

    def _observe(self, params: dict[str, Any], **_: Any) -> None:
        """Reads the request body as it goes out (base64 records in JSON)."""
        import base64
        import json

        records = json.loads(params["body"])["Records"]
        with self.lock:
            self.calls.append([base64.b64decode(r["Data"]) for r in records])


def billed_bytes(record_sizes: list[int]) -> int:
    """Firehose ingestion is billed per record, rounded up to the next 5 KB."""
    step = 5 * 1024
    return sum(-(-size // step) * step for size in record_sizes)
