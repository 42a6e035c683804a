"""How a record reads on Papertrail's search page, and RFC 5424 syslog framing.

The default text of a record (change it with ``configure(papertrail_format=callable)``):

- error: ``ValueError: bad row | shop=a run_id=r1 id=3f2c… | Traceback (most recent call
  last):\\n…``
- metric: ``products.downloaded=42.0 | shop=a run_id=r1 id=9a1b…``

Newlines inside a message are written as the two characters ``\\n`` (and a backslash as
``\\\\``), so that one record is always one line.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import Any

import orjson

SEVERITY_ERR = 3
SEVERITY_INFO = 6
FACILITY_USER = 1
TRUNCATED = " ...[dxtrack: truncated]"

Formatter = Callable[[Mapping[str, Any]], str]


def _metadata_text(record: Mapping[str, Any]) -> str:
    parts = []
    metadata = record.get("metadata") or {}
    if isinstance(metadata, Mapping):
        for key, value in metadata.items():
            text = value if isinstance(value, str) else orjson.dumps(value).decode()
            parts.append(f"{key}={text}")
    parts.append(f"run_id={record.get('run_id')}")
    parts.append(f"id={record.get('id')}")
    return " ".join(parts)


def default_format(record: Mapping[str, Any]) -> str:
    """The text of one record: type, value, metadata and traceback, or ``name=value``."""
    exception = record.get("exception")
    if isinstance(exception, Mapping):
        log = record.get("log")
        if isinstance(log, Mapping) and exception.get("type") is None:
            head = f"{log.get('logger')} {log.get('level')}: {log.get('message')}"
        else:
            head = f"{exception.get('type')}: {exception.get('value')}"
        head = f"{head} | {_metadata_text(record)}"
        traceback = exception.get("traceback")
        return f"{head} | {traceback.rstrip()}" if traceback else head
    return f"{record.get('metric_name')}={record.get('value')} | {_metadata_text(record)}"


def escape_newlines(text: str) -> str:
    """Keep a message on one line: ``\\`` becomes ``\\\\``, newline ``\\n``, CR ``\\r``."""
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r")


def unescape_newlines(text: str) -> str:
    """The inverse of ``escape_newlines`` (for readers of the log)."""
    out, i = [], 0
    while i < len(text):
        char = text[i]
        if char == "\\" and i + 1 < len(text):
            nxt = text[i + 1]
            out.append({"n": "\n", "r": "\r", "\\": "\\"}.get(nxt, "\\" + nxt))
            i += 2
            continue
        out.append(char)
        i += 1
    return "".join(out)


def _header_token(text: str, max_len: int) -> str:
    """RFC 5424 header fields are printable US-ASCII without spaces."""
    cleaned = "".join(c if 33 <= ord(c) <= 126 else "_" for c in text)[:max_len]
    return cleaned or "-"


def syslog_line(record: Mapping[str, Any], kind: str, text: str, max_bytes: int) -> bytes:
    """One RFC 5424 message, newline-terminated, cut to ``max_bytes`` with a marker."""
    severity = SEVERITY_ERR if kind == "error" else SEVERITY_INFO
    timestamp = record.get("timestamp")
    try:
        when = datetime.fromtimestamp(float(timestamp), tz=timezone.utc)  # type: ignore[arg-type]
        stamp = when.isoformat(timespec="microseconds").replace("+00:00", "Z")
    except (TypeError, ValueError, OverflowError):
        stamp = "-"
    header = (
        f"<{FACILITY_USER * 8 + severity}>1 {stamp} "
        f"{_header_token(str(record.get('host') or '-'), 255)} "
        f"{_header_token(str(record.get('context') or '-'), 48)} - {kind} - "
    ).encode()
    body = escape_newlines(text).encode("utf-8", "replace")
    room = max_bytes - len(header) - 1
    if len(body) > room:
        marker = TRUNCATED.encode()
        body = body[: max(room - len(marker), 0)]
        body = body.decode("utf-8", "ignore").encode() + marker
    return header + body + b"\n"
