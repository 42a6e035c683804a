"""One frozen configuration object, built from arguments, then environment variables, then defaults.

``build_config`` is the one place where settings are validated and may raise ``ValueError``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from dxtrack import environment_variables as env

STAGES = ("test", "dev", "prod")
DEFAULT_REGION = "eu-west-1"
DEFAULT_PAPERTRAIL_URL = "https://logs.collector.solarwinds.com/v1/logs"
PAPERTRAIL_TRANSPORTS = ("tls", "tcp", "udp")

T = TypeVar("T")


@dataclass(frozen=True)
class Config:
    """Validated settings of one ``configure()`` call."""

    context: str
    stage: str
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

    @property
    def ships_to_papertrail(self) -> bool:
        """Whether records also go to Papertrail (syslog ``host:port``, or an HTTPS token)."""
        return bool(self.papertrail_hostport or self.papertrail_token)


def _env_str(name: str) -> str | None:
    value = os.environ.get(name)
    return value if value else None


def _parse_bool(name: str, raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{name} must be a boolean (true/false), got {raw!r}")


def _pick(arg: T | None, var: str, parse: Callable[[str, str], T], default: T) -> T:
    if arg is not None:
        return arg
    raw = _env_str(var)
    return parse(var, raw) if raw is not None else default


def _require_str(name: str, value: object, *, optional: bool = False) -> None:
    if value is None and optional:
        return
    if not isinstance(value, str):
        raise ValueError(f"{name} must be a string, got {type(value).__name__}: {value!r}")
    if not optional and not value:
        raise ValueError(f"{name} must not be empty")


def _require_bool(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be True or False, got {value!r}")
    return value


def _number(
    name: str, arg: float | None, variable: str, default: float, *, whole: bool = False
) -> float:
    """A positive number: the argument, else the environment variable, else the default."""
    value = _pick(arg, variable, _parse_number, default)
    kind = "whole number" if whole else "number"
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a positive {kind}, got {value!r}") from None
    if isinstance(value, bool) or not number > 0 or (whole and not number.is_integer()):
        raise ValueError(f"{name} must be a positive {kind}, got {value!r}")
    return number


def _parse_number(name: str, raw: str) -> float:
    try:
        return float(raw)
    except ValueError:
        raise ValueError(f"{name} must be a number, got {raw!r}") from None


def _parse_metadata(name: str, raw: str) -> dict[str, Any]:
    import json

    try:
        parsed = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{name} must be a JSON object: {exc}") from None
    if not isinstance(parsed, dict):
        raise ValueError(f"{name} must be a JSON object, got {raw!r}")
    return parsed


class Unset:
    """The default of an option for which None means something (off)."""

    def __repr__(self) -> str:
        return "UNSET"


UNSET = Unset()


def log_level(name: str, value: object) -> int | None:
    """A logging level from a name (``"ERROR"``) or a number; None (or ``"none"``/``"off"``
    in an environment variable) for off."""
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        if text.lower() in ("none", "off"):
            return None
        if text.isdigit():
            value = int(text)
        else:
            number = logging.getLevelName(text.upper())
            if not isinstance(number, int):
                raise ValueError(
                    f"{name} must be a logging level name (ERROR, WARNING...), a number or "
                    f"None; got {value!r}"
                )
            return number
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(
            f"{name} must be a logging level name, a positive number or None; got {value!r}"
        )
    return value


def _parse_hostport(name: str, value: str) -> str:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{name} must look like 'host:port', got {value!r}")
    return value


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
) -> Config:
    """Validate the arguments of ``configure()`` and fill in the rest from the environment."""
    context = context if context is not None else _env_str(env.DXTRACK_CONTEXT)
    _require_str("context", context)
    assert isinstance(context, str)

    stage = stage if stage is not None else (_env_str(env.DXTRACK_STAGE) or "test")
    if stage not in STAGES:
        raise ValueError(f"stage must be one of {', '.join(STAGES)}; got {stage!r}")

    run_id = run_id if run_id is not None else _env_str(env.DXTRACK_RUN_ID)
    if run_id is None:
        run_id = os.urandom(16).hex()
    _require_str("run_id", run_id)

    if default_metadata is None:
        raw = _env_str(env.DXTRACK_DEFAULT_METADATA)
        default_metadata = _parse_metadata(env.DXTRACK_DEFAULT_METADATA, raw) if raw else {}
    if not isinstance(default_metadata, dict):
        raise ValueError(f"default_metadata must be a dict, got {type(default_metadata).__name__}")

    profile_name = profile_name if profile_name is not None else _env_str(env.DXTRACK_PROFILE_NAME)
    _require_str("profile_name", profile_name, optional=True)
    key_id = aws_access_key_id or _env_str(env.DXTRACK_AWS_ACCESS_KEY_ID)
    secret = aws_secret_access_key or _env_str(env.DXTRACK_AWS_SECRET_ACCESS_KEY)
    _require_str("aws_access_key_id", key_id, optional=True)
    _require_str("aws_secret_access_key", secret, optional=True)
    if (key_id is None) != (secret is None):
        raise ValueError("aws_access_key_id and aws_secret_access_key must be given together")
    region = region_name if region_name is not None else _env_str(env.DXTRACK_REGION_NAME)
    _require_str("region_name", region, optional=True)

    hostport = (
        papertrail_hostport
        if papertrail_hostport is not None
        else _env_str(env.DXTRACK_PAPERTRAIL_HOSTPORT)
    )
    _require_str("papertrail_hostport", hostport, optional=True)
    if hostport is not None:
        _parse_hostport("papertrail_hostport", hostport)

    transport = papertrail_transport or _env_str(env.DXTRACK_PAPERTRAIL_TRANSPORT) or "tls"
    if transport not in PAPERTRAIL_TRANSPORTS:
        raise ValueError(
            f"papertrail_transport must be one of {', '.join(PAPERTRAIL_TRANSPORTS)}; "
            f"got {transport!r}"
        )
    ca_file = papertrail_ca_file or _env_str(env.DXTRACK_PAPERTRAIL_CA_FILE)
    if ca_file is not None and not os.path.isfile(ca_file):
        raise ValueError(f"papertrail_ca_file must be an existing file, got {ca_file!r}")
    token = papertrail_token or _env_str(env.DXTRACK_PAPERTRAIL_TOKEN)
    _require_str("papertrail_token", token, optional=True)
    url = papertrail_url or _env_str(env.DXTRACK_PAPERTRAIL_URL) or DEFAULT_PAPERTRAIL_URL
    if not isinstance(url, str) or not url.startswith(("https://", "http://")):
        raise ValueError(f"papertrail_url must be an http(s) URL, got {url!r}")
    if papertrail_format is not None and not callable(papertrail_format):
        raise ValueError("papertrail_format must be a callable taking a record dict")

    buffer = _require_bool(
        "buffer_metrics", _pick(buffer_metrics, env.DXTRACK_BUFFER_METRICS, _parse_bool, False)
    )
    use_async = _require_bool(
        "use_async_requests",
        _pick(use_async_requests, env.DXTRACK_USE_ASYNC_REQUESTS, _parse_bool, True),
    )

    sigterm = _require_bool(
        "handle_sigterm", _pick(handle_sigterm, env.DXTRACK_HANDLE_SIGTERM, _parse_bool, True)
    )

    codec = compression if compression is not None else _env_str(env.DXTRACK_COMPRESSION)
    codec = "none" if codec is None else codec
    from dxtrack.delivery.compression import codec as find_codec

    if not isinstance(codec, str):
        raise ValueError(f"compression must be a string, got {type(codec).__name__}")
    find_codec(codec)  # ValueError: unknown, or zstd without the zstandard package

    unhandled = _require_bool(
        "capture_unhandled",
        _pick(capture_unhandled, env.DXTRACK_CAPTURE_UNHANDLED, _parse_bool, True),
    )
    if isinstance(capture_log_level, Unset):
        raw_level = _env_str(env.DXTRACK_CAPTURE_LOG_LEVEL)
        name = env.DXTRACK_CAPTURE_LOG_LEVEL
        level = log_level(name, raw_level) if raw_level is not None else logging.ERROR
    else:
        level = log_level("capture_log_level", capture_log_level)

    error_stream = error_stream or _env_str(env.DXTRACK_ERROR_STREAM)
    metric_stream = metric_stream or _env_str(env.DXTRACK_METRIC_STREAM)
    _require_str("error_stream", error_stream, optional=True)
    _require_str("metric_stream", metric_stream, optional=True)

    out = output_dir if output_dir is not None else _env_str(env.DXTRACK_OUTPUT_DIR)
    spool = spool_dir if spool_dir is not None else _env_str(env.DXTRACK_SPOOL_DIR)

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
            _number("max_buffer", max_buffer, env.DXTRACK_MAX_BUFFER, 100_000, whole=True)
        ),
        flush_interval=_number("flush_interval", flush_interval, env.DXTRACK_FLUSH_INTERVAL, 0.5),
        exit_timeout=_number("exit_timeout", exit_timeout, env.DXTRACK_EXIT_TIMEOUT, 5.0),
        retry_budget=_number("retry_budget", retry_budget, env.DXTRACK_RETRY_BUDGET, 30.0),
        max_spool_bytes=int(
            _number(
                "max_spool_bytes",
                max_spool_bytes,
                env.DXTRACK_MAX_SPOOL_BYTES,
                1 << 30,
                whole=True,
            )
        ),
    )
