"""A moto server over real HTTP, per-test buckets and streams, and botocore hooks that observe
(and, where a test asks, break) every PutRecordBatch the SDK makes.

The hooks go into ``botocore.handlers.BUILTIN_HANDLERS``, which every new botocore session
registers, so the SDK's own clients carry them without any test-only code in dxtrack.
"""

from __future__ import annotations

import base64
import gzip
import io
import json
import os
import threading
import uuid
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import botocore.handlers
from botocore.awsrequest import AWSResponse

from dxtrack.sinks.firehose import destination
from tests.conftest import assert_valid

REGION = "eu-west-1"
MAX_RECORDS_PER_CALL = 500
MAX_CALL_BYTES = 4 * 1024 * 1024
MAX_RECORD_BYTES = 1_000 * 1024


@dataclass
class CallLog:
    """Every PutRecordBatch the SDK made, checked against Firehose's limits."""

    calls: list[list[bytes]] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def observe(self, stream: str, datas: list[bytes]) -> None:
        problems = []
        if len(datas) > MAX_RECORDS_PER_CALL:
            problems.append(f"{len(datas)} records in one call")
        if sum(len(d) for d in datas) > MAX_CALL_BYTES:
            problems.append(f"{sum(len(d) for d in datas)} bytes in one call")
        for record in datas:
            if len(record) > MAX_RECORD_BYTES:
                problems.append(f"a record of {len(record)} bytes")
            data = decoded_record(record)
            if not data.endswith(b"\n"):
                problems.append("a record that does not end in a newline")
            for line in data.splitlines():
                json.loads(line)  # every line is a whole JSON record
        with self.lock:
            self.calls.append(datas)
            self.violations.extend(f"{stream}: {p}" for p in problems)


class Hooks:
    """Installed once per test session; tests set ``before_call``/``after_call`` to interfere.

    They look at the request as it goes out: the JSON body botocore signs and sends, decoded.
    """

    def __init__(self) -> None:
        self.log = CallLog()
        self.before_call: Callable[[dict[str, Any]], tuple[Any, dict[str, Any]] | None] | None = (
            None
        )
        self.rewrite_records: Callable[[list[bytes]], list[bytes] | None] | None = None
        self.after_call: Callable[[Any, dict[str, Any]], None] | None = None

    def reset(self) -> None:
        self.log = CallLog()
        self.before_call = self.rewrite_records = self.after_call = None

    def _on_before_call(self, params: dict[str, Any], **_: Any) -> Any:
        request = json.loads(params["body"])
        records = [base64.b64decode(record["Data"]) for record in request["Records"]]
        self.log.observe(request["DeliveryStreamName"], records)
        if self.rewrite_records is not None:
            rewritten = self.rewrite_records(records)
            if rewritten is not None:
                request["Records"] = [{"Data": base64.b64encode(d).decode()} for d in rewritten]
                params["body"] = json.dumps(request).encode()
        if self.before_call is not None:
            return self.before_call(params)
        return None

    def _on_after_call(self, http_response: Any, parsed: dict[str, Any], **_: Any) -> None:
        if self.after_call is not None:
            self.after_call(http_response, parsed)

    def install(self) -> None:
        handlers = botocore.handlers.BUILTIN_HANDLERS
        handlers.append(("before-call.firehose.PutRecordBatch", self._on_before_call))
        handlers.append(("after-call.firehose.PutRecordBatch", self._on_after_call))


GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


def decoded_record(data: bytes) -> bytes:
    """One Firehose record as JSON lines: plain, or exactly one complete gzip member or zstd
    frame (anything after the first member or frame fails)."""
    if data.startswith(GZIP_MAGIC):
        member = zlib.decompressobj(31)
        plain = member.decompress(data) + member.flush()
        assert member.eof and not member.unused_data, "a record is one whole gzip member"
        return plain
    if data.startswith(ZSTD_MAGIC):
        import zstandard

        frame = zstandard.ZstdDecompressor().decompressobj()
        plain = frame.decompress(data)
        assert frame.eof and not frame.unused_data, "a record is one whole zstd frame"
        return plain
    return data


def decoded_object(body: bytes) -> bytes:
    """An S3 object as a consumer reads it: concatenated gzip members or zstd frames decode as
    one stream."""
    if body.startswith(GZIP_MAGIC):
        return gzip.decompress(body)
    if body.startswith(ZSTD_MAGIC):
        import zstandard

        reader = zstandard.ZstdDecompressor().stream_reader(
            io.BytesIO(body), read_across_frames=True
        )
        return reader.read()
    return body


def error_response(code: str, status: int, message: str = "") -> tuple[AWSResponse, dict[str, Any]]:
    """What a before-call hook returns to make the whole call fail as AWS would."""
    http = AWSResponse("https://firehose.invalid/", status, {}, None)
    parsed = {
        "Error": {"Code": code, "Message": message or code},
        "ResponseMetadata": {"HTTPStatusCode": status},
    }
    return http, parsed


def spool_directory(spool: Path, kind: str, stage: str = "prod") -> Path:
    """Where dxtrack spools the records of ``kind`` for the moto server the tests run."""
    return spool / destination(stage, kind, REGION, os.environ["AWS_ENDPOINT_URL"])


@dataclass
class Streams:
    """A bucket and two DirectPut streams of this test's own, and readers for what landed."""

    bucket: str
    error_stream: str
    metric_stream: str

    @classmethod
    def create(cls) -> Streams:
        suffix = uuid.uuid4().hex[:10]
        streams = cls(f"dxt-{suffix}", f"err-{suffix}", f"met-{suffix}")
        streams.create_bucket()
        firehose = boto3.client("firehose", region_name=REGION)
        for kind, name in (("error", streams.error_stream), ("metric", streams.metric_stream)):
            firehose.create_delivery_stream(
                DeliveryStreamName=name,
                DeliveryStreamType="DirectPut",
                ExtendedS3DestinationConfiguration={
                    "RoleARN": "arn:aws:iam::123456789012:role/firehose",
                    "BucketARN": f"arn:aws:s3:::{streams.bucket}",
                    "Prefix": f"{kind}/",
                },
            )
        return streams

    def create_bucket(self) -> None:
        boto3.client("s3", region_name=REGION).create_bucket(
            Bucket=self.bucket, CreateBucketConfiguration={"LocationConstraint": REGION}
        )

    def delete_bucket(self) -> None:
        s3 = boto3.client("s3", region_name=REGION)
        for obj in s3.list_objects_v2(Bucket=self.bucket).get("Contents", []):
            s3.delete_object(Bucket=self.bucket, Key=obj["Key"])
        s3.delete_bucket(Bucket=self.bucket)

    def settings(self, **more: Any) -> dict[str, Any]:
        """configure() arguments that point dxtrack at these streams."""
        return {
            "context": "aws-test",
            "stage": "prod",
            "error_stream": self.error_stream,
            "metric_stream": self.metric_stream,
            "flush_interval": 0.05,
            **more,
        }

    def env(self) -> dict[str, str]:
        """The same, as DXTRACK_* variables for a child process."""
        return {
            "DXTRACK_CONTEXT": "aws-test",
            "DXTRACK_STAGE": "prod",
            "DXTRACK_ERROR_STREAM": self.error_stream,
            "DXTRACK_METRIC_STREAM": self.metric_stream,
            "DXTRACK_FLUSH_INTERVAL": "0.05",
        }

    def records(self, kind: str) -> list[dict[str, Any]]:
        """Every record of ``kind`` that landed in S3, in object order."""
        s3 = boto3.client("s3", region_name=REGION)
        records: list[dict[str, Any]] = []
        paginator = s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=f"{kind}/"):
            for obj in page.get("Contents", []):
                body = s3.get_object(Bucket=self.bucket, Key=obj["Key"])["Body"].read()
                body = decoded_object(body)
                assert body.endswith(b"\n"), "Firehose records end in a newline"
                records.extend(json.loads(line) for line in body.splitlines())
        for record in records:
            assert_valid(record, kind)
        return records
