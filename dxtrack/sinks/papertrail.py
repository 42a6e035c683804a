"""Papertrail: a live view of every record, over syslog (TLS, TCP or UDP) or HTTPS.

The host's loggers are never touched: these sinks write to their own socket or HTTP session.
Papertrail is a live view, not the system of record, so these sinks are not durable: what they
can't deliver within the retry budget is dropped and counted, and the other sinks don't notice.
"""

from __future__ import annotations

import contextlib
import select
import socket
import ssl
from collections.abc import Callable, Sequence
from typing import Any

import orjson

from dxtrack.config import Config
from dxtrack.events import KINDS
from dxtrack.interrupts import keep_or_raise
from dxtrack.papertrail_format import Formatter, default_format, escape_newlines, syslog_line
from dxtrack.sinks.base import Limits, PermanentSendError, RetryableSendError, Sink

UDP_MAX_BYTES = 1_024
TCP_MAX_BYTES = 100_000
CONNECT_TIMEOUT = 5.0


def _record(item: bytes) -> tuple[str, dict[str, Any]]:
    record = orjson.loads(item)
    return ("error" if "exception" in record else "metric"), record


def _text(format_record: Formatter, record: dict[str, Any]) -> str:
    try:
        return str(format_record(record))
    except BaseException as exc:  # a user's formatter must not stop the live view
        keep_or_raise(exc)  # a Ctrl-C goes on up (see ``interrupts``)
        return f"{default_format(record)} [papertrail_format failed: {type(exc).__name__}]"


class SyslogSink:
    """RFC 5424 over TLS (verified), TCP or UDP, with newline framing."""

    durable = False
    kinds = frozenset(KINDS)

    def __init__(
        self,
        host: str,
        port: int,
        *,
        transport: str = "tls",
        ca_file: str | None = None,
        format_record: Formatter | None = None,
    ) -> None:
        self.host, self.port, self.transport = host, port, transport
        self.name = self.destination = f"papertrail:{transport}:{host}:{port}"
        self._ca_file = ca_file
        self._format = format_record or default_format
        self._max_line = UDP_MAX_BYTES if transport == "udp" else TCP_MAX_BYTES
        self.limits = Limits(
            max_item_bytes=1 << 62,
            max_items_per_call=500,
            max_call_bytes=1 << 20,
            pack_lines=False,
        )
        self._sock: socket.socket | None = None

    def _connect(self) -> socket.socket:
        if self.transport == "udp":
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.connect((self.host, self.port))
            return sock
        raw = socket.create_connection((self.host, self.port), timeout=CONNECT_TIMEOUT)
        if self.transport == "tcp":
            return raw
        context = ssl.create_default_context(cafile=self._ca_file)
        try:
            return context.wrap_socket(raw, server_hostname=self.host)
        except ssl.SSLCertVerificationError as exc:
            raw.close()
            raise PermanentSendError(
                f"Papertrail {self.host}:{self.port}: the server's TLS certificate was refused "
                f"({exc.verify_message}); check papertrail_hostport, or papertrail_ca_file for a "
                "private CA. Papertrail records are dropped (and counted) until this is fixed."
            ) from exc
        except BaseException:
            raw.close()
            raise

    def start(self) -> None:
        """Connect (a failure here is retried by ``send``)."""
        if self._sock is None:
            self._sock = self._connect()

    def format(self, item: bytes) -> bytes:
        """The syslog line of one JSON record."""
        kind, record = _record(item)
        return syslog_line(record, kind, _text(self._format, record), self._max_line)

    def send(self, items: Sequence[bytes]) -> Sequence[int]:
        """Send every item as one syslog line; on a broken connection, all are sent again."""
        lines = [self.format(item) for item in items]
        try:
            if self._sock is not None and not self._still_connected(self._sock):
                self.close()
            if self._sock is None:
                self._sock = self._connect()
            if self.transport == "udp":
                for line in lines:
                    self._sock.send(line)
            else:
                self._sock.sendall(b"".join(lines))
        except PermanentSendError:
            raise
        except OSError as exc:
            self.close()
            raise RetryableSendError(f"{self.name}: {exc}") from exc
        return ()

    def _still_connected(self, sock: socket.socket) -> bool:
        """A syslog server never sends: a readable socket means it closed the connection.

        Checked before each send, so that a batch is not written into a connection whose
        receiver died (TCP would accept the first write and lose it). TLS 1.3 servers do send
        session tickets; those are read and dropped here.
        """
        if self.transport == "udp":
            return True
        try:
            readable, _, _ = select.select([sock], [], [], 0)
            if not readable:
                return True
            sock.setblocking(False)
            try:
                while True:
                    if not sock.recv(4096):
                        return False
            except (ssl.SSLWantReadError, BlockingIOError):
                return True
            finally:
                sock.settimeout(CONNECT_TIMEOUT)
        except (OSError, ValueError):
            return False

    def close(self) -> None:
        """Close the connection; the next send reconnects."""
        sock, self._sock = self._sock, None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.close()


class PapertrailHttpsSink:
    """The HTTPS form of newer Papertrail (SolarWinds) destinations: a token, and a bulk
    endpoint that takes one event per line."""

    durable = False
    kinds = frozenset(KINDS)
    limits = Limits(
        max_item_bytes=1 << 62, max_items_per_call=1_000, max_call_bytes=1 << 20, pack_lines=False
    )

    def __init__(
        self,
        url: str,
        token: str,
        *,
        ca_file: str | None = None,
        format_record: Formatter | None = None,
    ) -> None:
        self.url, self._token, self._ca_file = url, token, ca_file
        self.name = self.destination = f"papertrail:https:{url}"
        self._format = format_record or default_format
        self._session: Any = None

    def start(self) -> None:
        """Import requests and open the session."""
        import requests

        if self._session is None:
            self._session = requests.Session()

    def send(self, items: Sequence[bytes]) -> Sequence[int]:
        """POST the items, one event a line."""
        import requests

        lines = []
        for item in items:
            _, record = _record(item)
            text = escape_newlines(_text(self._format, record)).encode("utf-8", "replace")
            lines.append(text[:TCP_MAX_BYTES])
        if self._session is None:
            self._session = requests.Session()
        try:
            response = self._session.post(
                self.url,
                data=b"\n".join(lines) + b"\n",
                auth=("", self._token),
                headers={"Content-Type": "application/octet-stream"},
                timeout=(CONNECT_TIMEOUT, 15),
                verify=self._ca_file or True,
            )
        except requests.exceptions.SSLError as exc:
            raise PermanentSendError(
                f"Papertrail {self.url}: the server's TLS certificate was refused ({exc})"
            ) from exc
        except requests.RequestException as exc:
            raise RetryableSendError(f"{self.name}: {exc}") from exc
        if response.status_code in (401, 403):
            raise PermanentSendError(
                f"Papertrail {self.url} refused the token (HTTP {response.status_code}); "
                "check papertrail_token"
            )
        if response.status_code >= 400:
            raise RetryableSendError(f"{self.name}: HTTP {response.status_code}")
        return ()

    def close(self) -> None:
        """Close the HTTP session."""
        session, self._session = self._session, None
        if session is not None:
            session.close()


def papertrail_sink_factory(config: Config) -> Callable[[], Sink]:
    """How to make the Papertrail sink ``config`` asks for."""
    if config.papertrail_token:
        token = config.papertrail_token
        return lambda: PapertrailHttpsSink(
            config.papertrail_url,
            token,
            ca_file=config.papertrail_ca_file,
            format_record=config.papertrail_format,
        )
    assert config.papertrail_hostport is not None
    host, _, port = config.papertrail_hostport.rpartition(":")
    return lambda: SyslogSink(
        host,
        int(port),
        transport=config.papertrail_transport,
        ca_file=config.papertrail_ca_file,
        format_record=config.papertrail_format,
    )
