"""The public functions: ``configure()``, and the bound methods of the process's one client."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, NoReturn, TypeVar

from dxtrack import process_hooks
from dxtrack.client import Client
from dxtrack.config_values import UNSET, Unset

if TYPE_CHECKING:
    from dxtrack.config import Config, Stage
    from dxtrack.helpers import CaptureErrors, Timer
    from dxtrack.wiring import SinkFactory

_client = Client()
F = TypeVar("F", bound=Callable[..., Any])
_sink_override: Sequence[SinkFactory] | None = None  # set by dxtrack.testing


def configure(
    context: str | None = None,
    stage: Stage | None = None,
    run_id: str | None = None,
    default_metadata: Mapping[str, Any] | None = None,
    profile_name: str | None = None,
    aws_access_key_id: str | None = None,
    aws_secret_access_key: str | None = None,
    buffer_metrics: bool | None = None,
    papertrail_hostport: str | None = None,
    use_async_requests: bool | None = None,
    *,
    region_name: str | None = None,
    error_stream: str | None = None,
    metric_stream: str | None = None,
    output_dir: str | os.PathLike[str] | None = None,
    spool_dir: str | os.PathLike[str] | None = None,
    max_spool_bytes: int | None = None,
    max_buffer: int | None = None,
    flush_interval: float | None = None,
    exit_timeout: float | None = None,
    retry_budget: float | None = None,
    handle_sigterm: bool | None = None,
    compression: Literal["none", "gzip", "zstd"] | None = None,
    capture_unhandled: bool | None = None,
    capture_log_level: int | str | Unset | None = UNSET,
    scrub: bool | None = None,
    scrub_keys: Sequence[str] | None = None,
    before_send: Callable[[dict[str, Any]], dict[str, Any] | None] | None = None,
    metric_sample_rate: float | None = None,
    error_sample_rate: float | None = None,
    error_rate_limit: int | Unset | None = UNSET,
    papertrail_transport: Literal["tls", "tcp", "udp"] | None = None,
    papertrail_ca_file: str | os.PathLike[str] | None = None,
    papertrail_token: str | None = None,
    papertrail_url: str | None = None,
    papertrail_format: Callable[[Mapping[str, Any]], str] | None = None,
    **unknown: NoReturn,
) -> None:
    """Configure dxtrack once, at the entry point of a job. Calling it again reconfigures.

    Each option left out comes from its ``DXTRACK_*`` environment variable, else its default;
    the README lists them all.

    Args:
        context: the name of the job or service; accompanies every record (or
            ``DXTRACK_CONTEXT``). Required.
        stage: ``test`` (local JSONL files), ``dev`` or ``prod`` (Kinesis Firehose), or
            ``DXTRACK_STAGE``. Required.
        run_id: identifies this run; generated when left out.
        default_metadata: merged under the metadata of every record.
        profile_name: AWS profile for Firehose.
        aws_access_key_id: AWS key, preferred over ``profile_name``.
        aws_secret_access_key: AWS secret key, given with ``aws_access_key_id``.
        buffer_metrics: hold metrics until ``flush_metrics_buffer()`` (and at exit).
        papertrail_hostport: also send a live view to Papertrail, ``host:port``.
        use_async_requests: send in the background (default); False waits for delivery.
        scrub: replace secret metadata values and URL credentials (default True).
        scrub_keys: more metadata key names to scrub.
        before_send: called on the shipper with each record; returns it (changed or not), or
            None to drop it.
        metric_sample_rate: the share of metric records kept (default 1).
        error_sample_rate: the share of error records kept (default 1).
        error_rate_limit: error records per fingerprint per minute (default 100; None: no
            limit); further occurrences are counted in a summary record.

    Raises:
        ValueError: an argument is invalid or unknown; the message names it.
    """
    from dxtrack.config import build_config, check_known

    if unknown:
        check_known(unknown)
    options = {name: value for name, value in locals().items() if name not in _NOT_OPTIONS}
    _start(build_config(**options))


_NOT_OPTIONS = frozenset(("unknown", "build_config", "check_known"))


def _start(config: Config) -> None:
    from dxtrack.integrations import installation

    _client.configure(config, _sink_override)
    process_hooks.install(_client, config)
    installation.install(_client, config)


error = _client.error_entry
errors = _client.errors
metric = _client.metric_entry
flush_metrics_buffer = _client.flush_metrics_buffer
flush = _client.flush
stats = _client.stats


def shutdown(timeout: float | None = None) -> bool:
    """Deliver within ``timeout`` (default ``exit_timeout``), spool the rest, stop tracking, and
    remove the integrations (restoring the hooks they replaced).

    Returns:
        True when everything was delivered.
    """
    from dxtrack.integrations import installation

    installation.uninstall()
    return _client.close(timeout)


def capture_errors(metadata: Mapping[str, Any] | None = None) -> CaptureErrors:
    """A decorator and context manager that records an exception escaping it, then re-raises.

    Raises:
        ValueError: ``metadata`` is not a dict.
    """
    from dxtrack.helpers import CaptureErrors

    return CaptureErrors(_client, metadata)


def timer(metric_name: str, metadata: Mapping[str, Any] | None = None) -> Timer:
    """A decorator and context manager that records the seconds it took as ``metric_name``.

    Raises:
        ValueError: ``metric_name`` is not a non-empty string, or ``metadata`` is not a dict.
    """
    from dxtrack.helpers import Timer

    return Timer(_client, metric_name, metadata)


def flush_after(handler: F) -> F:
    """Decorate an AWS Lambda handler so that its records are delivered before it returns.

    Lambda freezes the process once the handler returns, and a frozen shipper sends nothing.
    The flush waits at most ``exit_timeout`` seconds, and never past the invocation's deadline
    (less half a second) when the handler gets Lambda's context object.
    """
    from dxtrack.integrations import aws_lambda

    return aws_lambda.flush_after(_client, handler)


def lambda_handler(handler: F) -> F:
    """Decorate an AWS Lambda handler: as ``flush_after``, and it also records an exception
    escaping the handler (then re-raises) and adds ``aws_request_id``, ``function_name`` and
    ``cold_start`` to the metadata of the records tracked during the invocation."""
    from dxtrack.integrations import aws_lambda

    return aws_lambda.lambda_handler(_client, handler)


def current_client() -> Client:
    """The process's client, whose bound methods the functions above are."""
    return _client


def worker_hooks() -> None:
    """Tell ``integrations.workers`` how a worker of a configured parent configures itself."""
    from dxtrack.integrations import workers

    workers.set_hooks(_start, lambda: _client.config is not None, _client.close)


if "multiprocessing" in sys.modules:  # maybe a worker of a configured parent
    worker_hooks()
