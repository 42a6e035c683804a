"""One frozen configuration object, built from arguments, then environment variables, then defaults.

``build_config`` is the one place where settings are validated and may raise ``ValueError``.
"""

from __future__ import annotations

import difflib
import inspect
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

from dxtrack import environment_variables as env
from dxtrack.config_values import (
    UNSET,
    Unset,
    env_str,
    limit,
    log_level,
    number,
    parse_bool,
    parse_hostport,
    parse_limit,
    parse_metadata,
    pick,
    rate,
    require_bool,
    require_str,
    shown,
    string_list,
)

Stage = Literal["test", "dev", "prod"]
STAGES: tuple[Stage, ...] = ("test", "dev", "prod")
DEFAULT_REGION = "eu-west-1"
DEFAULT_PAPERTRAIL_URL = "https://logs.collector.solarwinds.com/v1/logs"
PAPERTRAIL_TRANSPORTS = ("tls", "tcp", "udp")
DEFAULT_ERROR_RATE_LIMIT = 100
"""Error records per fingerprint per minute; further occurrences are counted in a summary."""
SECRET_FIELDS = ("aws_access_key_id", "aws_secret_access_key", "papertrail_token")
BeforeSend = Callable[[dict[str, Any]], "dict[str, Any] | None"]


@dataclass(frozen=True)
class Config:
    """Validated settings of one ``configure()`` call."""

    context: str
    stage: Stage
    run_id: str
    default_metadata: Mapping[str, Any] = field(default_factory=dict)
    profile_name: str | None = None
    aws_access_key_id: str | None = None
    aws_secret_access_key: str | None = None
    region_name: str | None = None
    buffer_metrics: bool = False
    papertrail_hostport: str | None = None
    use_async_requests: bool = True
    papertrail_transport: str = "tls"
    papertrail_ca_file: str | None = None
    papertrail_token: str | None = None
    papertrail_url: str = DEFAULT_PAPERTRAIL_URL
    papertrail_format: Callable[[Mapping[str, Any]], str] | None = None
    error_stream: str = ""
    metric_stream: str = ""
    output_dir: Path = Path(".dxtrack_output")
    spool_dir: Path | None = None
    max_buffer: int = 100_000
    flush_interval: float = 0.5
    exit_timeout: float = 5.0
    retry_budget: float = 30.0
    max_spool_bytes: int = 1 << 30
    handle_sigterm: bool = True
    compression: str = "none"
    capture_unhandled: bool = True
    capture_log_level: int | None = logging.ERROR
    scrub: bool = True
    scrub_keys: tuple[str, ...] = ()
    before_send: BeforeSend | None = None
    metric_sample_rate: float = 1.0
    error_sample_rate: float = 1.0
    error_rate_limit: int | None = DEFAULT_ERROR_RATE_LIMIT

    def __repr__(self) -> str:
        """The settings, with the AWS keys, the Papertrail token, credentials in the Papertrail
        URL and secret metadata values masked."""
        from dxtrack.scrubbing import FILTERED, Scrubber, url_credentials_filtered

        shown_fields = []
        for item in fields(self):
            value = getattr(self, item.name)
            if item.name in SECRET_FIELDS and value is not None:
                value = FILTERED
            elif item.name == "papertrail_url":
                value = url_credentials_filtered(value)
            elif item.name == "default_metadata":
                value = Scrubber(self.scrub_keys).metadata(dict(value))
            shown_fields.append(f"{item.name}={value!r}")
        return f"Config({', '.join(shown_fields)})"

    @property
    def ships_to_papertrail(self) -> bool:
        """Whether records also go to Papertrail (syslog ``host:port``, or an HTTPS token)."""
        return bool(self.papertrail_hostport or self.papertrail_token)


def check_known(options: Mapping[str, object]) -> None:
    """Raise the ``ValueError`` that names an unknown option, and the closest known one."""
    known = tuple(inspect.signature(build_config).parameters)
    for name in options:
        if name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ValueError(f"configure() got an unknown option {name!r}{hint}")


def build_config(
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
    *,
    region_name: str | None = None,
    papertrail_transport: str | None = None,
    papertrail_ca_file: str | os.PathLike[str] | None = None,
    papertrail_token: str | None = None,
    papertrail_url: str | None = None,
    papertrail_format: Callable[[Mapping[str, Any]], str] | None = None,
    error_stream: str | None = None,
    metric_stream: str | None = None,
    output_dir: str | os.PathLike[str] | None = None,
    spool_dir: str | os.PathLike[str] | None = None,
    max_buffer: float | None = None,
    flush_interval: float | None = None,
    exit_timeout: float | None = None,
    retry_budget: float | None = None,
    max_spool_bytes: int | None = None,
    handle_sigterm: bool | None = None,
    compression: str | None = None,
    capture_unhandled: bool | None = None,
    capture_log_level: int | str | Unset | None = UNSET,
    scrub: bool | None = None,
    scrub_keys: Sequence[str] | None = None,
    before_send: BeforeSend | None = None,
    metric_sample_rate: float | None = None,
    error_sample_rate: float | None = None,
    error_rate_limit: int | Unset | None = UNSET,
) -> Config:
    """Validate the arguments of ``configure()`` and fill in the rest from the environment."""
    context = context if context is not None else env_str(env.DXTRACK_CONTEXT)
    if context is None:
        raise ValueError(f"context is required: pass context= or set {env.DXTRACK_CONTEXT}")
    require_str("context", context)

    stage = stage if stage else env_str(env.DXTRACK_STAGE)
    if stage is None:
        raise ValueError(
            f"stage is required: pass stage= ('test', 'dev' or 'prod') or set {env.DXTRACK_STAGE}"
        )
    if stage not in STAGES:
        raise ValueError(f"stage must be one of {', '.join(STAGES)}; got {stage!r}")

    run_id = run_id if run_id is not None else env_str(env.DXTRACK_RUN_ID)
    if run_id is None:
        run_id = os.urandom(16).hex()
    require_str("run_id", run_id)

    if default_metadata is None:
        raw = env_str(env.DXTRACK_DEFAULT_METADATA)
        default_metadata = parse_metadata(env.DXTRACK_DEFAULT_METADATA, raw) if raw else {}
    if not isinstance(default_metadata, dict):
        raise ValueError(f"default_metadata must be a dict, got {type(default_metadata).__name__}")

    profile_name = profile_name if profile_name is not None else env_str(env.DXTRACK_PROFILE_NAME)
    require_str("profile_name", profile_name, optional=True)
    key_id = aws_access_key_id or env_str(env.DXTRACK_AWS_ACCESS_KEY_ID)
    secret = aws_secret_access_key or env_str(env.DXTRACK_AWS_SECRET_ACCESS_KEY)
    require_str("aws_access_key_id", key_id, optional=True, secret=True)
    require_str("aws_secret_access_key", secret, optional=True, secret=True)
    if (key_id is None) != (secret is None):
        raise ValueError("aws_access_key_id and aws_secret_access_key must be given together")
    region = region_name if region_name is not None else env_str(env.DXTRACK_REGION_NAME)
    require_str("region_name", region, optional=True)

    hostport = (
        papertrail_hostport
        if papertrail_hostport is not None
        else env_str(env.DXTRACK_PAPERTRAIL_HOSTPORT)
    )
    require_str("papertrail_hostport", hostport, optional=True)
    if hostport is not None:
        parse_hostport("papertrail_hostport", hostport)

    transport = papertrail_transport or env_str(env.DXTRACK_PAPERTRAIL_TRANSPORT) or "tls"
    if transport not in PAPERTRAIL_TRANSPORTS:
        raise ValueError(
            f"papertrail_transport must be one of {', '.join(PAPERTRAIL_TRANSPORTS)}; "
            f"got {transport!r}"
        )
    ca_file = papertrail_ca_file or env_str(env.DXTRACK_PAPERTRAIL_CA_FILE)
    if ca_file is not None and not os.path.isfile(ca_file):
        raise ValueError(f"papertrail_ca_file must be an existing file, got {ca_file!r}")
    token = papertrail_token or env_str(env.DXTRACK_PAPERTRAIL_TOKEN)
    require_str("papertrail_token", token, optional=True, secret=True)
    url = papertrail_url or env_str(env.DXTRACK_PAPERTRAIL_URL) or DEFAULT_PAPERTRAIL_URL
    _check_papertrail_url(url, token)
    if papertrail_format is not None and not callable(papertrail_format):
        raise ValueError("papertrail_format must be a callable taking a record dict")

    buffer = require_bool(
        "buffer_metrics", pick(buffer_metrics, env.DXTRACK_BUFFER_METRICS, parse_bool, False)
    )
    use_async = require_bool(
        "use_async_requests",
        pick(use_async_requests, env.DXTRACK_USE_ASYNC_REQUESTS, parse_bool, True),
    )
    sigterm = require_bool(
        "handle_sigterm", pick(handle_sigterm, env.DXTRACK_HANDLE_SIGTERM, parse_bool, True)
    )

    codec = compression if compression is not None else env_str(env.DXTRACK_COMPRESSION)
    codec = "none" if codec is None else codec
    from dxtrack.delivery.compression import codec as find_codec

    if not isinstance(codec, str):
        raise ValueError(f"compression must be a string, got {type(codec).__name__}")
    find_codec(codec)  # ValueError: unknown, or zstd without the zstandard package

    unhandled = require_bool(
        "capture_unhandled",
        pick(capture_unhandled, env.DXTRACK_CAPTURE_UNHANDLED, parse_bool, True),
    )
    if isinstance(capture_log_level, Unset):
        raw_level = env_str(env.DXTRACK_CAPTURE_LOG_LEVEL)
        name = env.DXTRACK_CAPTURE_LOG_LEVEL
        level = log_level(name, raw_level) if raw_level is not None else logging.ERROR
    else:
        level = log_level("capture_log_level", capture_log_level)

    scrubbing = require_bool("scrub", pick(scrub, env.DXTRACK_SCRUB, parse_bool, True))
    raw_keys = scrub_keys if scrub_keys is not None else env_str(env.DXTRACK_SCRUB_KEYS)
    keys = string_list("scrub_keys", raw_keys) if raw_keys is not None else ()
    if before_send is not None and not callable(before_send):
        raise ValueError("before_send must be a callable taking a record dict")
    if isinstance(error_rate_limit, Unset):
        raw_limit = env_str(env.DXTRACK_ERROR_RATE_LIMIT)
        rate_limit = (
            DEFAULT_ERROR_RATE_LIMIT
            if raw_limit is None
            else parse_limit(env.DXTRACK_ERROR_RATE_LIMIT, raw_limit)
        )
    else:
        rate_limit = limit("error_rate_limit", error_rate_limit)

    error_stream = error_stream or env_str(env.DXTRACK_ERROR_STREAM)
    metric_stream = metric_stream or env_str(env.DXTRACK_METRIC_STREAM)
    require_str("error_stream", error_stream, optional=True)
    require_str("metric_stream", metric_stream, optional=True)

    out = output_dir if output_dir is not None else env_str(env.DXTRACK_OUTPUT_DIR)
    spool = spool_dir if spool_dir is not None else env_str(env.DXTRACK_SPOOL_DIR)

    return Config(
        context=context,
        stage=stage,
        run_id=run_id,
        default_metadata=dict(default_metadata),
        profile_name=profile_name,
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
        region_name=region,
        buffer_metrics=buffer,
        papertrail_hostport=hostport,
        use_async_requests=use_async,
        handle_sigterm=sigterm,
        compression=codec,
        capture_unhandled=unhandled,
        capture_log_level=level,
        scrub=scrubbing,
        scrub_keys=keys,
        before_send=before_send,
        metric_sample_rate=rate(
            "metric_sample_rate", metric_sample_rate, env.DXTRACK_METRIC_SAMPLE_RATE
        ),
        error_sample_rate=rate(
            "error_sample_rate", error_sample_rate, env.DXTRACK_ERROR_SAMPLE_RATE
        ),
        error_rate_limit=rate_limit,
        papertrail_transport=transport,
        papertrail_ca_file=os.fspath(ca_file) if ca_file is not None else None,
        papertrail_token=token,
        papertrail_url=url,
        papertrail_format=papertrail_format,
        error_stream=error_stream or f"dxtrack-error-input-{stage}",
        metric_stream=metric_stream or f"dxtrack-metric-input-{stage}",
        output_dir=Path(out if out is not None else ".dxtrack_output").absolute(),
        spool_dir=Path(spool).absolute() if spool is not None else None,
        max_buffer=int(
            number("max_buffer", max_buffer, env.DXTRACK_MAX_BUFFER, 100_000, whole=True)
        ),
        flush_interval=number("flush_interval", flush_interval, env.DXTRACK_FLUSH_INTERVAL, 0.5),
        exit_timeout=number("exit_timeout", exit_timeout, env.DXTRACK_EXIT_TIMEOUT, 5.0),
        retry_budget=number("retry_budget", retry_budget, env.DXTRACK_RETRY_BUDGET, 30.0),
        max_spool_bytes=int(
            number(
                "max_spool_bytes",
                max_spool_bytes,
                env.DXTRACK_MAX_SPOOL_BYTES,
                1 << 30,
                whole=True,
            )
        ),
    )


def _check_papertrail_url(url: object, token: str | None) -> None:
    """An https URL; plain http only without a token (a token must never travel in clear)."""
    from dxtrack.scrubbing import url_credentials_filtered

    if not isinstance(url, str) or not url.startswith(("https://", "http://")):
        text = url_credentials_filtered(url) if isinstance(url, str) else shown(url, True)
        raise ValueError(f"papertrail_url must be an https URL, got {text!r}")
    if token is not None and not url.startswith("https://"):
        raise ValueError(
            "papertrail_url must be https:// when papertrail_token is set: the token would "
            "travel in clear text"
        )
