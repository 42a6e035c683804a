"""How a configuration becomes a shipper: which sinks, inline or in the background, with
which spools. Imported by ``configure()``, not by ``import dxtrack``."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path

from dxtrack.config import Config
from dxtrack.counters import Counters
from dxtrack.delivery.buffers import Orphan
from dxtrack.delivery.compression import codec
from dxtrack.delivery.route import Route
from dxtrack.delivery.shipper import Shipper
from dxtrack.delivery.spool import Spool
from dxtrack.events import ERROR, METRIC
from dxtrack.log import LogOnce
from dxtrack.records import RecordBuilder
from dxtrack.shaping import Shaping
from dxtrack.sinks.base import Sink

MAX_LINGER_SECONDS = 0.5
"""A record waits at most this long for more to fill a call, whatever ``flush_interval`` says:
what a ``kill -9`` can take stays within a couple of seconds of records."""
MAX_PENDING_BYTES = 32 * 1024 * 1024
"""Bytes of packed records per sink held in memory while they wait for delivery; past this the
oldest go to the disk spool (or, for a sink without one, are dropped and counted)."""

SinkFactory = tuple[Callable[[], Sink], bool]
"""How to make one sink, and whether it is delivered on the caller's thread (inline)."""


def default_spool_dir() -> str:
    """The per-user cache directory for the spool; on AWS Lambda, whose home is read-only,
    ``/tmp/dxtrack/spool``."""
    if os.environ.get("AWS_LAMBDA_FUNCTION_NAME"):
        return "/tmp/dxtrack/spool"
    import platformdirs

    return str(platformdirs.user_cache_path("dxtrack") / "spool")


def sink_factories(config: Config) -> list[SinkFactory]:
    """The sinks ``config`` asks for: local files in stage test, else Firehose (inline when
    ``use_async_requests`` is off); and Papertrail, in the background, when configured."""
    factories: list[SinkFactory]
    if config.stage == "test":
        from dxtrack.sinks.jsonl_file import JsonlFileSink

        factories = [
            (partial(JsonlFileSink, config.output_dir, kind), True) for kind in (ERROR, METRIC)
        ]
    else:
        from dxtrack.sinks.firehose import FirehoseSink

        streams = ((ERROR, config.error_stream), (METRIC, config.metric_stream))
        factories = [
            (partial(FirehoseSink, stream, kind, config), not config.use_async_requests)
            for kind, stream in streams
        ]
    if config.ships_to_papertrail:
        from dxtrack.sinks.papertrail import papertrail_sink_factory

        factories.append((papertrail_sink_factory(config), False))
    return factories


def spool_path(root: str | os.PathLike[str], destination: str) -> Path:
    """The spool directory of one destination, made safe for a file name."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in destination)
    return Path(root) / safe


def routes(
    config: Config, sinks: Sequence[SinkFactory] | None, counters: Counters, log_once: LogOnce
) -> list[Route]:
    """One route per sink, each durable sink with its spool directory."""
    root = config.spool_dir if config.spool_dir is not None else default_spool_dir()

    def make_spool(destination: str) -> Spool:
        directory = spool_path(root, destination)
        compressed = codec(config.compression)
        return Spool(directory, counters, log_once, config.max_spool_bytes, compressed)

    return [
        Route(
            make_sink,
            inline=inline,
            make_spool=make_spool,
            max_pending_bytes=MAX_PENDING_BYTES,
            retry_budget=config.retry_budget,
            linger=min(config.flush_interval, MAX_LINGER_SECONDS),
            stats=counters,
            log_once=log_once,
        )
        for make_sink, inline in (sinks if sinks is not None else sink_factories(config))
    ]


def new_builder(config: Config) -> RecordBuilder:
    """A record builder with a fresh producer id (per configuration, and per forked child)."""
    return RecordBuilder(
        context=config.context,
        stage=config.stage,
        run_id=config.run_id,
        default_metadata=config.default_metadata,
        producer_id=os.urandom(16).hex(),
        host=socket.gethostname(),
        shaping=Shaping(
            scrub=config.scrub,
            scrub_keys=config.scrub_keys,
            metric_sample_rate=config.metric_sample_rate,
            error_sample_rate=config.error_sample_rate,
            error_rate_limit=config.error_rate_limit,
            before_send=config.before_send,
        ),
    )


def shipper(
    config: Config,
    sinks: Sequence[SinkFactory] | None,
    counters: Counters,
    log_once: LogOnce,
    orphans: Sequence[Orphan],
) -> Shipper:
    """The shipper for ``config``."""
    return Shipper(
        new_builder(config),
        routes(config, sinks, counters, log_once),
        max_buffer=config.max_buffer,
        flush_interval=config.flush_interval,
        stats=counters,
        log_once=log_once,
        orphans=orphans,
    )
