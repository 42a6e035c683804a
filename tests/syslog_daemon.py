"""A real rsyslog daemon on loopback, for the Papertrail tests: TLS (certificates from trustme),
plain TCP or UDP, writing what it receives to a file the tests parse back."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

RSYSLOGD = shutil.which("rsyslogd") or "/usr/sbin/rsyslogd"
FIELDS = ("pri", "timestamp", "hostname", "app", "msgid", "msg")


@dataclass
class Received:
    """One message as rsyslog parsed it."""

    pri: int
    timestamp: str
    hostname: str
    app: str
    msgid: str
    msg: str

    @property
    def severity(self) -> int:
        return self.pri % 8


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Rsyslog:
    """``rsyslogd -n`` with a configuration of its own; ``start``, ``kill``, ``messages``."""

    def __init__(
        self,
        directory: Path,
        transport: str,
        *,
        cert_file: Path | None = None,
        key_file: Path | None = None,
        ca_file: Path | None = None,
    ) -> None:
        if not os.path.exists(RSYSLOGD):
            raise RuntimeError(
                "rsyslogd is not installed: run `make system-deps` (Debian package rsyslog)"
            )
        self.directory = directory
        self.transport = transport
        self.port = free_port(socket.SOCK_DGRAM if transport == "udp" else socket.SOCK_STREAM)
        self.output = directory / "received.log"
        self.config = directory / "rsyslog.conf"
        self.pidfile = directory / "rsyslogd.pid"
        self.process: subprocess.Popen[bytes] | None = None
        (directory / "work").mkdir(parents=True, exist_ok=True)
        tls = ""
        if transport == "tls":
            tls = (
                f'global(DefaultNetstreamDriverCAFile="{ca_file}" '
                f'DefaultNetstreamDriverCertFile="{cert_file}" '
                f'DefaultNetstreamDriverKeyFile="{key_file}")\n'
            )
        if transport == "udp":
            listener = (
                'module(load="imudp")\n'
                f'input(type="imudp" address="127.0.0.1" port="{self.port}")\n'
            )
        elif transport == "tcp":
            listener = (
                'module(load="imtcp")\n'
                f'input(type="imtcp" address="127.0.0.1" port="{self.port}")\n'
            )
        else:
            listener = (
                'module(load="imtcp" StreamDriver.Name="ossl" StreamDriver.Mode="1" '
                'StreamDriver.AuthMode="anon")\n'
                f'input(type="imtcp" address="127.0.0.1" port="{self.port}")\n'
            )
        self.config.write_text(
            f'global(workDirectory="{directory / "work"}" maxMessageSize="128k")\n'
            + tls
            + listener
            + 'template(name="fields" type="list") {\n'
            '  property(name="pri") constant(value="|")\n'
            '  property(name="timestamp" dateFormat="rfc3339") constant(value="|")\n'
            '  property(name="hostname") constant(value="|")\n'
            '  property(name="app-name") constant(value="|")\n'
            '  property(name="msgid") constant(value="|")\n'
            '  property(name="msg") constant(value="\\n")\n'
            "}\n"
            f'action(type="omfile" file="{self.output}" template="fields")\n'
        )

    def start(self) -> None:
        """Start the daemon and wait until its port takes connections (TCP) or it is running."""
        self.pidfile.unlink(missing_ok=True)
        self.process = subprocess.Popen(
            [RSYSLOGD, "-n", "-f", str(self.config), "-i", str(self.pidfile)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"rsyslogd exited: {self.process.stderr.read()!r}")  # type: ignore[union-attr]
            if self._ready():
                return
            time.sleep(0.02)
        raise RuntimeError("rsyslogd did not become ready")

    def _ready(self) -> bool:
        if self.transport == "udp":
            return self.pidfile.exists()
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
        except OSError:
            return False
        return True

    def kill(self) -> None:
        """SIGKILL: the receiver dies mid-stream, as a crashed server would."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)

    def messages(self) -> list[Received]:
        if not self.output.exists():
            return []
        out = []
        for line in self.output.read_text(errors="replace").splitlines():
            pri, timestamp, hostname, app, msgid, msg = line.split("|", 5)
            out.append(Received(int(pri), timestamp, hostname, app, msgid, msg))
        return out

    def wait_for(self, count: int, timeout: float = 30.0) -> list[Received]:
        """Wait until at least ``count`` messages were written, and return them."""
        deadline = time.monotonic() + timeout
        while True:
            messages = self.messages()
            if len(messages) >= count or time.monotonic() > deadline:
                return messages
            time.sleep(0.02)
