"""Stages ``dev`` and ``prod``: Kinesis Data Firehose, through boto3's PutRecordBatch.

boto3 is imported by ``configure()`` (never at ``import dxtrack``); the client is made on the
sender thread, and shared by the sinks with the same AWS settings (``aws_clients``). The
endpoint comes from boto3's own configuration (``AWS_ENDPOINT_URL``), so a moto server
or moto's in-process ``mock_aws`` need no test-only code here.
"""

from __future__ import annotations

import dataclasses
import weakref
from collections.abc import Sequence
from typing import Any

import orjson
import pybase64
import xxhash

from dxtrack.config import Config
from dxtrack.delivery.compression import codec
from dxtrack.sinks import aws_clients
from dxtrack.sinks.aws_clients import SharedClient
from dxtrack.sinks.base import Limits, PermanentSendError, RetryableSendError

FIREHOSE_LIMITS = Limits(
    max_item_bytes=1_000 * 1024,
    max_items_per_call=500,
    max_call_bytes=4 * 1024 * 1024,
    pack_lines=True,
    max_in_flight=2,
)
"""Firehose's quotas: 1,000 KiB a record, 500 records and 4 MiB a PutRecordBatch."""

_PERMANENT = {
    "ResourceNotFoundException": "the stream does not exist: deploy infra/ or set {option}",
    "AccessDeniedException": "access denied: grant firehose:PutRecordBatch on the stream "
    "(infra/ has a producer policy)",
    "UnrecognizedClientException": "the AWS credentials are not valid: check profile_name or "
    "aws_access_key_id/aws_secret_access_key",
    "InvalidSignatureException": "the AWS secret key is wrong: check aws_secret_access_key",
    "InvalidArgumentException": "Firehose refused the request as invalid",
    "ValidationException": "Firehose refused the request as invalid",
    "InvalidKMSResourceException": "the stream's KMS key can't be used: check its key policy",
}


def destination(stage: str, kind: str, region: str, endpoint: str) -> str:
    """The spool key of a stream: stage, kind, region and endpoint, not the stream's name, so
    that records spooled under a misspelt name are delivered once it is fixed, and records made
    against a local endpoint or moto never reach AWS."""
    digest = xxhash.xxh3_64_hexdigest(endpoint.encode())[:12]
    return f"firehose-{stage}-{kind}-{region}-{digest}"


def request_body(stream: str, items: Sequence[bytes]) -> bytes:
    """The JSON body of a PutRecordBatch of ``items``, as botocore would serialise it.

    Written out here because botocore's serialiser (``json.dumps`` over megabytes of base64)
    costs the shipper more than building the records does; pybase64 encodes with SIMD, about
    15 times faster than the standard library.
    """
    records: list[bytes] = []
    encode = pybase64.b64encode
    for data in items:
        records += (b'{"Data":"', encode(data), b'"},')
    if records:
        records[-1] = b'"}'  # no comma after the last
    head = b'{"DeliveryStreamName":%s,"Records":[' % orjson.dumps(stream)
    return b"".join([head, *records, b"]}"])


class FirehoseSink:
    """Sends packed JSON lines to one delivery stream."""

    durable = True

    def __init__(self, stream: str, kind: str, config: Config) -> None:
        self.stream = stream
        self.name = f"firehose:{stream}"
        self.kinds = frozenset((kind,))
        self._config = config
        self._option = f"{kind}_stream"
        self.limits = dataclasses.replace(FIREHOSE_LIMITS, codec=codec(config.compression))
        # boto3 is imported here, on the thread that calls configure(), and not first on the
        # shipper: a fork() in the middle of an import leaves the child a half-initialised
        # boto3, and boto3's import registers an atexit hook, which is refused during exit.
        import encodings.idna  # noqa: F401  (urllib3 imports it lazily, on a first connection)

        self._shared: SharedClient | None = aws_clients.acquire(config)
        # released by close(), or when the sink is collected unclosed (a configure() that
        # failed after making it): else the client would stay shared, settings and all, for good
        self._release = weakref.finalize(self, aws_clients.release, self._shared)
        self._release.atexit = False
        self._region = self._shared.region
        self.destination = destination(config.stage, kind, self._region, self._shared.endpoint)

    def start(self) -> None:
        """Create the client (or take the one that sinks with the same settings share)."""
        self._get_client()

    @property
    def region(self) -> str | None:
        """The region the client was made for (None before ``start``)."""
        shared = self._shared
        return self._region if shared is not None and shared.started else None

    def _get_client(self) -> tuple[Any, SharedClient]:
        shared = self._shared
        if shared is None:
            raise RetryableSendError(f"{self.name}: closed")
        try:
            return shared.client(), shared
        except aws_clients.ClientClosed:
            raise RetryableSendError(f"{self.name}: closed") from None
        except LookupError as exc:
            raise PermanentSendError(
                f"{self.name}: AWS profile {self._config.profile_name!r} not found "
                f"({exc}); fix profile_name"
            ) from None

    def send(self, items: Sequence[bytes]) -> Sequence[int]:
        """One PutRecordBatch; returns the indices of entries Firehose did not take."""
        import botocore.exceptions

        client, shared = self._get_client()
        # botocore signs and sends the body made by request_body(): it is handed over through
        # _swap_body, in botocore's documented before-call event, in place of the serialised
        # placeholder record.
        shared.body.data = request_body(self.stream, items)
        try:
            response = client.put_record_batch(
                DeliveryStreamName=self.stream, Records=[{"Data": b""}]
            )
        except botocore.exceptions.ClientError as exc:
            error = exc.response.get("Error", {})
            code = error.get("Code", "")
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
            if code in _PERMANENT and not (isinstance(status, int) and status >= 500):
                fix = _PERMANENT[code].format(option=self._option)
                raise PermanentSendError(
                    f"Firehose stream {self.stream!r} in {self._region}: {code}: {fix}. "
                    "Records are kept in the disk spool and sent once this is fixed."
                ) from exc
            raise RetryableSendError(f"{self.name}: {code or status}: {exc}") from exc
        except botocore.exceptions.NoCredentialsError as exc:
            raise PermanentSendError(
                f"Firehose stream {self.stream!r}: no AWS credentials found; pass profile_name "
                "or aws_access_key_id/aws_secret_access_key, or configure boto3"
            ) from exc
        except botocore.exceptions.BotoCoreError as exc:
            raise RetryableSendError(f"{self.name}: {exc}") from exc
        finally:
            shared.body.data = None
        if not response.get("FailedPutCount"):
            return ()
        answers = response.get("RequestResponses") or []
        failed = [i for i, answer in enumerate(answers) if answer.get("ErrorCode")]
        if len(answers) != len(items):  # can't tell which failed: send them all again
            return range(len(items))
        return failed

    def close(self) -> None:
        """Stop using the shared client (the last sink to stop closes its connections)."""
        self._shared = None
        # detach() and call, rather than call the finalizer: once weakref's own exit hook has
        # run (registered after dxtrack's when the first configuration had no Firehose), a
        # finalizer no longer calls anything
        detached = self._release.detach()  # None once released
        if detached is not None:
            _, release, args, _ = detached
            release(*args)
