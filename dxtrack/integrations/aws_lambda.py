"""AWS Lambda: record what escapes a handler, tag the invocation's records, deliver in time."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar, cast

from dxtrack import capture
from dxtrack.log import logger

if TYPE_CHECKING:
    from dxtrack.client import Client

F = TypeVar("F", bound=Callable[..., Any])
DEADLINE_MARGIN = 0.5
"""Seconds before the invocation's deadline by which delivery stops waiting."""

_cold = True
"""No invocation has started in this process yet."""


def flush_after(client: Client, handler: F) -> F:
    """``handler``, delivering its records before it returns (Lambda freezes the process
    then), within ``exit_timeout`` and the invocation's deadline."""

    @functools.wraps(handler)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return handler(*args, **kwargs)
        finally:
            _flush(client, args)

    return cast(F, wrapper)


def _flush(client: Client, args: Sequence[Any]) -> None:
    try:
        client.flush(flush_timeout(client, args))
    except Exception as exc:  # never raise into the host, nor hide what the handler raised
        logger.error("dxtrack: could not flush after the handler: %r", exc)


def lambda_handler(client: Client, handler: F) -> F:
    """``handler`` as ``flush_after`` makes it, which also records an exception escaping it
    (mechanism ``lambda``) and adds ``aws_request_id``, ``function_name`` and ``cold_start``
    to the metadata of every record tracked while it runs."""

    @functools.wraps(handler)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        global _cold
        cold, _cold = _cold, False
        context = args[1] if len(args) > 1 else kwargs.get("context")
        scope = {
            "aws_request_id": getattr(context, "aws_request_id", None),
            "function_name": getattr(context, "function_name", None),
            "cold_start": cold,
        }
        outer = client.scope
        client.set_scope({**outer, **scope} if outer else scope)
        try:
            return handler(*args, **kwargs)
        except Exception as exc:
            if capture.unrecorded_error(exc):
                client.record(capture.exception_event(exc, capture.LAMBDA, False))
            raise
        finally:
            client.set_scope(outer)
            _flush(client, args)

    return cast(F, wrapper)


def flush_timeout(client: Client, args: Sequence[Any]) -> float | None:
    """``exit_timeout``, or less when the handler's context says the deadline is nearer."""
    config = client.config
    timeout = config.exit_timeout if config is not None else None
    context = args[1] if len(args) > 1 else None
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    if callable(remaining):
        try:
            left = max(float(remaining()) / 1000 - DEADLINE_MARGIN, 0.0)
        except Exception:  # not Lambda's context after all
            return timeout
        return left if timeout is None else min(timeout, left)
    return timeout
