"""Papertrail: RFC 5424 over TLS, TCP and UDP to a real rsyslog on loopback, and HTTPS."""

from __future__ import annotations

import base64
import http.server
import logging
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme

import dxtrack
from dxtrack.papertrail_format import unescape_newlines
from tests.syslog_daemon import Rsyslog


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A CA, a certificate for 127.0.0.1, and one for another name (a mismatch)."""
    directory = tmp_path_factory.mktemp("certs")
    ca = trustme.CA()
    good = ca.issue_cert("127.0.0.1", "localhost")
    wrong = ca.issue_cert("wrong.example")
    paths = {name: directory / f"{name}.pem" for name in ("ca", "cert", "key", "wrong", "wrongkey")}
    ca.cert_pem.write_to_path(str(paths["ca"]))
    good.cert_chain_pems[0].write_to_path(str(paths["cert"]))
    good.private_key_pem.write_to_path(str(paths["key"]))
    wrong.cert_chain_pems[0].write_to_path(str(paths["wrong"]))
    wrong.private_key_pem.write_to_path(str(paths["wrongkey"]))
    return paths


def start_rsyslog(
    tmp_path: Path, transport: str, certs: dict[str, Path], *, wrong: bool = False
) -> Rsyslog:
    daemon = Rsyslog(
        tmp_path / f"rsyslog-{transport}",
        transport,
        cert_file=certs["wrong" if wrong else "cert"],
        key_file=certs["wrongkey" if wrong else "key"],
        ca_file=certs["ca"],
    )
    daemon.start()
    return daemon


@pytest.fixture
def receivers(tmp_path: Path, certs: dict[str, Path]) -> Iterator[list[Rsyslog]]:
    started: list[Rsyslog] = []
    yield started
    dxtrack.shutdown(timeout=2)
    for daemon in started:
        daemon.stop()


def configure_papertrail(daemon: Rsyslog, certs: dict[str, Path], **more: Any) -> None:
    dxtrack.configure(
        context="pt-job",
        stage="test",
        default_metadata={"team": "data"},
        papertrail_hostport=f"127.0.0.1:{daemon.port}",
        papertrail_transport=daemon.transport,
        papertrail_ca_file=str(certs["ca"]),
        flush_interval=0.05,
        **more,
    )


def track_one_of_each() -> None:
    dxtrack.metric("products.downloaded", 42, metadata={"shop": "s1"})

    def parse() -> None:
        raise ValueError("bad price\nsecond line")

    try:
        parse()
    except ValueError:
        dxtrack.error(metadata={"shop": "s1"})


@pytest.mark.parametrize("transport", ["tls", "tcp", "udp"])
def test_records_arrive_intact_over_each_transport(
    transport: str, tmp_path: Path, certs: dict[str, Path], receivers: list[Rsyslog]
) -> None:
    """An error (severity err) and a metric (info) arrive as RFC 5424, one line each, intact."""
    daemon = start_rsyslog(tmp_path, transport, certs)
    receivers.append(daemon)
    configure_papertrail(daemon, certs)
    track_one_of_each()
    assert dxtrack.flush(timeout=30) is True
    metric, error = sorted(daemon.wait_for(2), key=lambda m: m.msgid, reverse=True)
    assert (metric.msgid, error.msgid) == ("metric", "error")
    assert metric.severity == 6 and error.severity == 3
    assert metric.pri // 8 == error.pri // 8 == 1  # facility user
    assert metric.app == error.app == "pt-job"
    assert metric.hostname == socket.gethostname()
    assert metric.msg.startswith("products.downloaded=42.0 | shop=s1 team=data run_id=")
    text = unescape_newlines(error.msg)
    assert text.startswith("ValueError: bad price\nsecond line | shop=s1 team=data run_id=")
    assert "Traceback (most recent call last):" in text and "in parse" in text
    assert "\n" not in error.msg, "one record is one line"
    assert dxtrack.stats()["dropped"] == 0


@pytest.mark.parametrize(("transport", "limit"), [("udp", 1_024), ("tcp", 100_000)])
def test_long_messages_are_cut_with_a_marker(
    transport: str, limit: int, tmp_path: Path, certs: dict[str, Path], receivers: list[Rsyslog]
) -> None:
    """Papertrail's limits: 1,024 bytes per UDP message, 100,000 per TCP line."""
    daemon = start_rsyslog(tmp_path, transport, certs)
    receivers.append(daemon)
    configure_papertrail(daemon, certs)
    dxtrack.metric("big", 1, metadata={"blob": "x" * 300_000})
    dxtrack.metric("small", 2)
    assert dxtrack.flush(timeout=30) is True
    big, small = daemon.wait_for(2)
    assert big.msg.endswith("...[dxtrack: truncated]")
    assert limit - 300 < len(big.msg.encode()) < limit
    assert small.msg.startswith("small=2.0")


def test_receiver_killed_mid_stream_then_restarted(
    tmp_path: Path, certs: dict[str, Path], receivers: list[Rsyslog]
) -> None:
    """The host keeps running while the receiver is down; records flow again after restart."""
    daemon = start_rsyslog(tmp_path, "tls", certs)
    receivers.append(daemon)
    configure_papertrail(daemon, certs, retry_budget=60)
    dxtrack.metric("before", 1)
    assert dxtrack.flush(timeout=30) is True
    assert [m.msg.split(" ")[0] for m in daemon.wait_for(1)] == ["before=1.0"]
    daemon.kill()
    for i in range(20):  # never raises, never blocks
        dxtrack.metric("during", i)
    daemon.start()
    dxtrack.metric("after", 3)
    assert dxtrack.flush(timeout=60) is True
    names = [m.msg.split("=")[0] for m in daemon.wait_for(22)]
    assert names == ["before"] + ["during"] * 20 + ["after"]
    assert Path(".dxtrack_output/metric.jsonl").read_text().count("\n") == 22


def test_certificate_mismatch_is_refused_with_one_log_line(
    tmp_path: Path,
    certs: dict[str, Path],
    receivers: list[Rsyslog],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A server whose certificate names another host is refused: one clear line, no crash."""
    daemon = start_rsyslog(tmp_path, "tls", certs, wrong=True)
    receivers.append(daemon)
    with caplog.at_level(logging.WARNING, logger="dxtrack"):
        configure_papertrail(daemon, certs)
        for i in range(5):
            dxtrack.metric("refused", i)
        assert dxtrack.flush(timeout=30) is False
        dxtrack.metric("refused", 5)
        dxtrack.flush(timeout=5)
    refused = [r for r in caplog.records if "certificate" in r.getMessage()]
    assert len(refused) == 1, [r.getMessage() for r in caplog.records]
    assert "papertrail_ca_file" in refused[0].getMessage()
    assert daemon.messages() == []
    assert dxtrack.stats()["dropped"] >= 5
    assert Path(".dxtrack_output/metric.jsonl").read_text().count("\n") == 6


def test_custom_format(tmp_path: Path, certs: dict[str, Path], receivers: list[Rsyslog]) -> None:
    """papertrail_format replaces the text; a formatter that raises falls back to the default."""
    daemon = start_rsyslog(tmp_path, "tcp", certs)
    receivers.append(daemon)

    def fmt(record: dict[str, Any]) -> str:
        if record.get("value") == 2.0:
            raise RuntimeError("formatter bug")
        return f"custom {record.get('metric_name')} {record.get('value')}"

    configure_papertrail(daemon, certs, papertrail_format=fmt)
    dxtrack.metric("one", 1)
    dxtrack.metric("two", 2)
    assert dxtrack.flush(timeout=30) is True
    first, second = daemon.wait_for(2)
    assert first.msg == "custom one 1.0"
    assert second.msg.startswith("two=2.0") and "papertrail_format failed" in second.msg


def test_host_logging_is_untouched(
    tmp_path: Path, certs: dict[str, Path], receivers: list[Rsyslog]
) -> None:
    """No handler is added to the root logger, its level is unchanged, and what dxtrack logs
    about itself never comes back as records."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    daemon = start_rsyslog(tmp_path, "udp", certs)
    receivers.append(daemon)
    configure_papertrail(daemon, certs)
    track_one_of_each()
    logging.getLogger("dxtrack").warning("a warning of the SDK's own")
    root.warning("a warning of the host's")
    assert dxtrack.flush(timeout=30) is True
    assert root.handlers == handlers and root.level == level
    assert len(daemon.wait_for(2)) == 2
    assert len(daemon.wait_for(3, timeout=0.5)) == 2
    assert dxtrack.stats()["delivered"] == 4  # 2 to the files, 2 to Papertrail


class BulkHandler(http.server.BaseHTTPRequestHandler):
    token = "s3cret"
    received: list[str] = []

    def do_POST(self) -> None:
        expected = "Basic " + base64.b64encode(f":{self.token}".encode()).decode()
        body = self.rfile.read(int(self.headers["Content-Length"])).decode()
        if self.headers.get("Authorization") != expected:
            self.send_response(401)
        elif not body.endswith("\n") or "\n\n" in body:
            self.send_response(400)
        else:
            type(self).received.extend(body.splitlines())
            self.send_response(200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def https_server(certs: dict[str, Path]) -> Iterator[str]:
    BulkHandler.received = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), BulkHandler)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(certs["cert"]), str(certs["key"]))
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{server.server_address[1]}/v1/logs"
    dxtrack.shutdown(timeout=2)
    server.shutdown()


def configure_https(url: str, token: str, certs: dict[str, Path]) -> None:
    dxtrack.configure(
        context="pt-job",
        stage="test",
        papertrail_token=token,
        papertrail_url=url,
        papertrail_ca_file=str(certs["ca"]),
        flush_interval=0.05,
    )


def test_https_bulk_form(https_server: str, certs: dict[str, Path]) -> None:
    """With a token, records go to the HTTPS bulk endpoint, one event per line."""
    configure_https(https_server, "s3cret", certs)
    track_one_of_each()
    assert dxtrack.flush(timeout=30) is True
    assert len(BulkHandler.received) == 2
    # the two kinds are built in batches of each kind: their order between kinds may vary
    (metric,) = [line for line in BulkHandler.received if line.startswith("products.")]
    (error,) = [line for line in BulkHandler.received if line.startswith("ValueError")]
    assert metric.startswith("products.downloaded=42.0 | ")
    assert unescape_newlines(error).startswith("ValueError: bad price\nsecond line | ")


def test_https_wrong_token_is_refused_once(
    https_server: str, certs: dict[str, Path], caplog: pytest.LogCaptureFixture
) -> None:
    """A token the endpoint refuses is reported once and the records are counted as dropped."""
    with caplog.at_level(logging.ERROR, logger="dxtrack"):
        configure_https(https_server, "wrong", certs)
        dxtrack.metric("m", 1)
        assert dxtrack.flush(timeout=30) is False
    assert [r.getMessage() for r in caplog.records if "token" in r.getMessage()]
    assert BulkHandler.received == []
    assert dxtrack.stats()["dropped"] == 1
