"""The public functions: ``configure()``, and the bound methods of the process's one client."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar, cast

from dxtrack import process_hooks
from dxtrack.client import Client

if TYPE_CHECKING:
    from dxtrack.wiring import SinkFactory

_client = Client()
F = TypeVar("F", bound=Callable[..., Any])
_sink_override: Sequence[SinkFactory] | None = None  # set by dxtrack.testing


def configure(
    context: str | None = None,
    stage: str | None = None,
    run_id: str | None = None,
    default_metadata: Mapping[str, Any] | None = None,
    profile_name: str | None = None,
    aws_access_key_id: str | None = None,
    aws_secret_access_key: str | None = None,
    buffer_metrics: bool | None = None,
    papertrail_hostport: str | None = None,
    use_async_requests: bool | None = None,
    **more: Any,
) -> None:
    """Configure dxtrack once, at the entry point of a job. Calling it again reconfigures.

    Args:
        context: the name of the job or service; accompanies every record.
        stage: ``test`` (local JSONL files), ``dev`` or ``prod`` (Kinesis Firehose).
        run_id: identifies this run; generated when left out.
        default_metadata: merged under the metadata of every record.
        profile_name: AWS profile for Firehose.
        aws_access_key_id: AWS key, preferred over ``profile_name``.
        aws_secret_access_key: AWS secret key, given with ``aws_access_key_id``.
        buffer_metrics: hold metrics until ``flush_metrics_buffer()`` (and at exit).
        papertrail_hostport: also send a live view to Papertrail, ``host:port``.
        use_async_requests: send in the background (default); False waits for delivery.
        **more: ``region_name``, ``error_stream``, ``metric_stream``, ``output_dir``,
            ``spool_dir``, ``max_spool_bytes``, ``max_buffer``, ``flush_interval``,
            ``exit_timeout``, ``retry_budget``, ``handle_sigterm``, ``compression``, and the
            ``papertrail_*``
            options; see the README.

    Raises:
        ValueError: an argument is invalid; the message names it.
    """
    from dxtrack.config import build_config

    config = build_config(
        context,
        stage,
        run_id,
        default_metadata,
        profile_name,
        aws_access_key_id,
        aws_secret_access_key,
        buffer_metrics,
        papertrail_hostport,
        use_async_requests,
        **more,
    )
    _client.configure(config, _sink_override)
    process_hooks.install(_client, config)


error = _client.error_entry
errors = _client.errors
metric = _client.metric_entry
flush_metrics_buffer = _client.flush_metrics_buffer
flush = _client.flush
shutdown = _client.close
stats = _client.stats


def flush_after(handler: F) -> F:
    """Decorate an AWS Lambda handler so that its records are delivered before it returns.

    Lambda freezes the process once the handler returns, and a frozen shipper sends nothing.
    The flush waits at most ``exit_timeout`` seconds, and never past the invocation's deadline
    (less half a second) when the handler gets Lambda's context object.
    """

    @functools.wraps(handler)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return handler(*args, **kwargs)
        finally:
            _client.flush(_lambda_flush_timeout(args))

    return cast(F, wrapper)


def _lambda_flush_timeout(args: Sequence[Any]) -> float | None:
    config = _client.config
    timeout = config.exit_timeout if config is not None else None
    context = args[1] if len(args) > 1 else None
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    if callable(remaining):
        try:
            left = max(float(remaining()) / 1000 - 0.5, 0.0)
        except (TypeError, ValueError):
            return timeout
        return left if timeout is None else min(timeout, left)
    return timeout


def current_client() -> Client:
    """The process's client, whose bound methods the functions above are."""
    return _client
