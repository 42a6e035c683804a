"""Environment variables that configure dxtrack.

Each ``configure()`` argument can come from the variable named here. An explicit argument always
wins over the variable, and the variable wins over the default.
"""

from __future__ import annotations

import os

DXTRACK_CONTEXT = "DXTRACK_CONTEXT"
"""``context``: the name of the job or service."""

DXTRACK_STAGE = "DXTRACK_STAGE"
"""``stage``: ``test``, ``dev`` or ``prod``."""

DXTRACK_RUN_ID = "DXTRACK_RUN_ID"
"""``run_id``: identifies one run of the context. Generated when neither is given."""

DXTRACK_DEFAULT_METADATA = "DXTRACK_DEFAULT_METADATA"
"""``default_metadata``: a JSON object."""

DXTRACK_PROFILE_NAME = "DXTRACK_PROFILE_NAME"
"""``profile_name``: the AWS profile in the shared credentials file."""

DXTRACK_AWS_ACCESS_KEY_ID = "DXTRACK_AWS_ACCESS_KEY_ID"
"""``aws_access_key_id``: preferred over the profile when given with the secret key."""

DXTRACK_AWS_SECRET_ACCESS_KEY = "DXTRACK_AWS_SECRET_ACCESS_KEY"
"""``aws_secret_access_key``."""

DXTRACK_REGION_NAME = "DXTRACK_REGION_NAME"
"""``region_name``: the Firehose region; else boto3's configuration, else ``eu-west-1``."""

DXTRACK_BUFFER_METRICS = "DXTRACK_BUFFER_METRICS"
"""``buffer_metrics``: ``1``/``true``/``yes``/``on`` or ``0``/``false``/``no``/``off``."""

DXTRACK_USE_ASYNC_REQUESTS = "DXTRACK_USE_ASYNC_REQUESTS"
"""``use_async_requests``: a boolean, as for ``DXTRACK_BUFFER_METRICS``."""

DXTRACK_PAPERTRAIL_HOSTPORT = "DXTRACK_PAPERTRAIL_HOSTPORT"
"""``papertrail_hostport``: ``host:port`` of a Papertrail (or any RFC 5424) syslog endpoint."""

DXTRACK_PAPERTRAIL_TRANSPORT = "DXTRACK_PAPERTRAIL_TRANSPORT"
"""``papertrail_transport``: ``tls`` (default, verified), ``tcp`` or ``udp``."""

DXTRACK_PAPERTRAIL_CA_FILE = "DXTRACK_PAPERTRAIL_CA_FILE"
"""``papertrail_ca_file``: a PEM file of CAs to verify the syslog (or HTTPS) server with,
instead of the system's."""

DXTRACK_PAPERTRAIL_TOKEN = "DXTRACK_PAPERTRAIL_TOKEN"
"""``papertrail_token``: a Papertrail (SolarWinds) HTTPS token; sends over HTTPS instead of
syslog."""

DXTRACK_PAPERTRAIL_URL = "DXTRACK_PAPERTRAIL_URL"
"""``papertrail_url``: the HTTPS bulk endpoint used with the token."""

DXTRACK_ERROR_STREAM = "DXTRACK_ERROR_STREAM"
"""``error_stream``: Firehose stream for errors. Default ``dxtrack-error-input-{stage}``."""

DXTRACK_METRIC_STREAM = "DXTRACK_METRIC_STREAM"
"""``metric_stream``: Firehose stream for metrics. Default ``dxtrack-metric-input-{stage}``."""

DXTRACK_OUTPUT_DIR = "DXTRACK_OUTPUT_DIR"
"""``output_dir``: where stage ``test`` writes ``error.jsonl`` and ``metric.jsonl``."""

DXTRACK_SPOOL_DIR = "DXTRACK_SPOOL_DIR"
"""``spool_dir``: the disk spool. Default: a per-user cache directory."""

DXTRACK_MAX_SPOOL_BYTES = "DXTRACK_MAX_SPOOL_BYTES"
"""``max_spool_bytes``: the spool's size on disk, per destination, past which records are dropped
and counted (so that a long outage can't fill the disk). Default 1 GiB."""

DXTRACK_MAX_BUFFER = "DXTRACK_MAX_BUFFER"
"""``max_buffer``: records held in memory before new ones go to the disk spool."""

DXTRACK_FLUSH_INTERVAL = "DXTRACK_FLUSH_INTERVAL"
"""``flush_interval``: seconds between background sends."""

DXTRACK_EXIT_TIMEOUT = "DXTRACK_EXIT_TIMEOUT"
"""``exit_timeout``: seconds to deliver at exit before the rest is spooled."""

DXTRACK_RETRY_BUDGET = "DXTRACK_RETRY_BUDGET"
"""``retry_budget``: seconds a batch is retried before it is spooled."""

DXTRACK_HANDLE_SIGTERM = "DXTRACK_HANDLE_SIGTERM"
"""``handle_sigterm``: a boolean. When SIGTERM has its default disposition (or a handler of the
application's) as ``configure()`` runs in the main thread, dxtrack delivers within
``exit_timeout``, spools the rest, then lets the process die of SIGTERM (or calls that handler).
Default true."""

DXTRACK_COMPRESSION = "DXTRACK_COMPRESSION"
"""``compression``: ``none`` (default), ``gzip`` or ``zstd`` (with ``dxtrack[zstd]``). Each
Firehose record is then one gzip member or zstd frame of whole JSON lines."""

DXTRACK_CAPTURE_UNHANDLED = "DXTRACK_CAPTURE_UNHANDLED"
"""``capture_unhandled``: a boolean. Records unhandled exceptions (``sys.excepthook``,
``threading.excepthook``, asyncio, multiprocessing workers). Default true."""

DXTRACK_CAPTURE_LOG_LEVEL = "DXTRACK_CAPTURE_LOG_LEVEL"
"""``capture_log_level``: log records at or above this level become error records. A level name
(``ERROR``, ``WARNING``...) or number; ``none`` or ``off`` turns it off. Default ``ERROR``."""

DXTRACK_PURE_PYTHON = "DXTRACK_PURE_PYTHON"
"""Set to ``1`` (before ``import dxtrack``) to leave the compiled fast path of ``metric()`` and
``error()`` unused. Not a ``configure()`` option: for comparing and debugging the two paths."""


def compiled_allowed() -> bool:
    """Whether the compiled modules may be used (``DXTRACK_PURE_PYTHON`` is unset or ``0``)."""
    return os.environ.get(DXTRACK_PURE_PYTHON, "") in ("", "0")


DXTRACK_SCRUB = "DXTRACK_SCRUB"
"""``scrub``: a boolean. Replaces the values of metadata keys that name secrets (passwords,
tokens, keys, cookies...) with ``"[Filtered]"``, and credentials in URLs in exception text and
tracebacks. Default true."""

DXTRACK_SCRUB_KEYS = "DXTRACK_SCRUB_KEYS"
"""``scrub_keys``: more key names to scrub, comma-separated."""

DXTRACK_METRIC_SAMPLE_RATE = "DXTRACK_METRIC_SAMPLE_RATE"
"""``metric_sample_rate``: the share of metric records kept, from 0 to 1. Default 1."""

DXTRACK_ERROR_SAMPLE_RATE = "DXTRACK_ERROR_SAMPLE_RATE"
"""``error_sample_rate``: the share of error records kept, from 0 to 1. Default 1."""

DXTRACK_ERROR_RATE_LIMIT = "DXTRACK_ERROR_RATE_LIMIT"
"""``error_rate_limit``: error records per fingerprint per minute; further occurrences are
counted in one summary record. ``0`` or ``off``: no limit. Default 100."""
