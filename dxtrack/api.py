"""The public functions. Each one hands its call to the current client."""

from __future__ import annotations

import atexit
import os
import sys
import threading
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from dxtrack.client import Client, NoopClient, SinkFactory
from dxtrack.config import build_config

_client: Client | NoopClient = NoopClient()
_configure_lock = threading.Lock()
_sink_override: Sequence[SinkFactory] | None = None
_process_hooks_installed = False


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
            ``spool_dir``, ``max_buffer``, ``flush_interval``, ``exit_timeout``,
            ``retry_budget``; see the README.

    Raises:
        ValueError: an argument is invalid; the message names it.
    """
    global _client
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
    with _configure_lock:
        _install_process_hooks()
        _client.close()
        _client = Client(config, sinks=_sink_override)


def error(metadata: Mapping[str, Any] | None = None) -> None:
    """Record the exception being handled; call it inside an ``except`` block.

    Raises:
        ValueError: ``metadata`` is not a dict.
    """
    _client.error(metadata)


def errors(
    list_of_exceptions: Iterable[BaseException], metadata: Mapping[str, Any] | None = None
) -> None:
    """Record several caught exceptions at once, with their tracebacks where they have one.

    Raises:
        ValueError: ``metadata`` is not a dict, or ``list_of_exceptions`` is not iterable.
    """
    _client.errors(list_of_exceptions, metadata)


def metric(
    metric_name: str,
    value: float,
    metadata: Mapping[str, Any] | None = None,
    timestamp: datetime | None = None,
) -> None:
    """Record a number under a dotted ``metric_name``.

    Args:
        metric_name: e.g. ``products.downloaded``.
        value: anything ``float()`` accepts.
        metadata: merged over ``default_metadata``.
        timestamp: when it happened (default: now); a naive datetime is taken as UTC.

    Raises:
        ValueError: ``value`` can't be a float, ``timestamp`` is not a datetime, or ``metadata``
            is not a dict.
    """
    _client.metric(metric_name, value, metadata, timestamp)


def flush_metrics_buffer() -> None:
    """Hand every metric held by ``buffer_metrics=True`` on for delivery."""
    _client.flush_metrics_buffer()


def flush(timeout: float | None = None) -> bool:
    """Wait until everything tracked so far was delivered, or ``timeout`` seconds passed.

    Returns:
        True when everything was delivered; False when something is still waiting, or was
        spooled to disk or dropped.
    """
    return _client.flush(timeout)


def shutdown(timeout: float | None = None) -> bool:
    """Deliver within ``timeout`` (default ``exit_timeout``), spool the rest, stop shipping.

    Runs by itself at exit; call it to end tracking earlier.
    """
    global _client
    with _configure_lock:
        client, _client = _client, NoopClient()
    return client.close(timeout)


def stats() -> dict[str, int]:
    """Counts of records delivered, retried, spooled, replayed and dropped (by reason)."""
    return _client.stats()


def current_client() -> Client | NoopClient:
    """The client the functions above hand their calls to."""
    return _client


def _at_exit() -> None:
    _client.close()


def _after_fork_in_child() -> None:
    global _configure_lock
    _configure_lock = threading.Lock()
    try:
        _client.reset_after_fork()
    except Exception:  # a child must start even if tracking can't
        return
    mp = sys.modules.get("multiprocessing.util")
    if mp is not None:  # multiprocessing's children leave with os._exit(): no atexit
        mp.Finalize(None, _at_exit, exitpriority=100)  # type: ignore[attr-defined]


def _install_process_hooks() -> None:
    global _process_hooks_installed
    if not _process_hooks_installed:
        _process_hooks_installed = True
        atexit.register(_at_exit)
        os.register_at_fork(after_in_child=_after_fork_in_child)
