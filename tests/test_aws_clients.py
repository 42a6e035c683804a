"""Sinks with the same AWS settings share one boto3 session and Firehose client while any of them
is open; a changed setting, the last close, or a fork gives a new one."""

from __future__ import annotations

import os
import threading
from collections import Counter
from typing import Any

import pytest

import dxtrack
from dxtrack.api import current_client
from dxtrack.config import build_config
from dxtrack.sinks import aws_clients
from dxtrack.sinks.firehose import FirehoseSink
from tests.aws import REGION, Hooks, Streams


def firehose_sinks() -> list[FirehoseSink]:
    shipper = current_client().shipper
    assert shipper is not None
    return [r.sink for r in shipper._routes if isinstance(r.sink, FirehoseSink)]


def test_a_new_configuration_sends_over_the_previous_ones_client(
    streams: Streams, firehose_calls: Hooks
) -> None:
    """configure() again: the new sinks use the client the previous ones made (no new session
    or client on the shipper's threads), and every record of both configurations lands once."""
    dxtrack.configure(**streams.settings(run_id="first"))
    dxtrack.metric("before", 1)
    assert dxtrack.flush(10)
    first = firehose_sinks()
    clients = {id(sink._get_client()[0]) for sink in first}
    assert len(clients) == 1, "the error and metric sinks have one client between them"

    dxtrack.configure(**streams.settings(run_id="second"))
    dxtrack.metric("after", 2)
    assert dxtrack.flush(10)
    second = firehose_sinks()
    assert {id(sink._get_client()[0]) for sink in second} == clients
    assert all(sink._shared is None for sink in first), "the replaced sinks were closed"

    landed = Counter(r["run_id"] for r in streams.records("metric"))
    assert landed == {"first": 1, "second": 1}


def test_the_last_sink_to_close_closes_the_client(moto_server: str) -> None:
    config = build_config(context="c", stage="prod")
    one, two = FirehoseSink("a", "metric", config), FirehoseSink("b", "error", config)
    one.start()
    shared = one._shared
    assert shared is not None and two._shared is shared and shared.users == 2
    client = shared.client()
    one.close()
    assert shared.started and shared.client() is client
    two.close()
    assert not shared.started
    assert aws_clients.settings_key(config) not in aws_clients._shared
    three = FirehoseSink("a", "metric", config)
    assert three._shared is not shared, "a sink after the last close reads the settings afresh"
    three.close()


def test_changed_aws_settings_get_a_client_of_their_own(
    moto_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A changed environment variable, credential or region is a different client, and the
    region and credentials it signs with are the new ones."""
    config = build_config(context="c", stage="prod")
    base = FirehoseSink("s", "metric", config)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "ap-south-1")
    moved = FirehoseSink("s", "metric", config)
    keyed = FirehoseSink(
        "s",
        "metric",
        build_config(
            context="c", stage="prod", aws_access_key_id="AKIAOTHER", aws_secret_access_key="x"
        ),
    )
    regional = FirehoseSink(
        "s", "metric", build_config(context="c", stage="prod", region_name="sa-east-1")
    )
    sinks = [base, moved, keyed, regional]
    try:
        assert len({id(s._shared) for s in sinks}) == 4
        assert [s._region for s in sinks] == [REGION, "ap-south-1", "ap-south-1", "sa-east-1"]
        credentials = keyed._get_client()[0]._request_signer._credentials
        assert credentials.access_key == "AKIAOTHER"
    finally:
        for sink in sinks:
            sink.close()


def test_threads_starting_at_once_make_one_client(moto_server: str) -> None:
    config = build_config(context="c", stage="prod")
    sinks = [FirehoseSink("s", "metric", config) for _ in range(8)]
    barrier = threading.Barrier(len(sinks))
    made: list[Any] = []

    def start(sink: FirehoseSink) -> None:
        barrier.wait()
        made.append(sink._get_client()[0])

    threads = [threading.Thread(target=start, args=(sink,)) for sink in sinks]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(made) == 8 and len({id(client) for client in made}) == 1
    for sink in sinks:
        sink.close()


def test_a_forked_child_shares_nothing_with_its_parent(moto_server: str) -> None:
    config = build_config(context="c", stage="prod")
    parent = FirehoseSink("s", "metric", config)
    parent.start()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report, then leave without running the parent's cleanup
        try:
            child = FirehoseSink("s", "metric", config)
            fresh = child._shared is not parent._shared and child._shared is not None
            fresh = fresh and child._shared.users == 1 and not child._shared.started
            os.write(write, b"fresh" if fresh else b"shared")
        finally:
            os._exit(0)
    os.close(write)
    answer = os.read(read, 16)
    os.close(read)
    os.waitpid(pid, 0)
    assert answer == b"fresh"
    assert parent._shared is not None and parent._shared.users == 1
    parent.close()


def credentials_in(path: Any, key: str, secret: str) -> None:
    path.write_text(f"[default]\naws_access_key_id = {key}\naws_secret_access_key = {secret}\n")


def signing_keys(*sinks: FirehoseSink) -> list[str]:
    """The access key each sink's client signs with (the sinks are closed after)."""
    try:
        return [s._get_client()[0]._request_signer._credentials.access_key for s in sinks]
    finally:
        for sink in sinks:
            sink.close()


FORK_FIRST = """
import os, select, sys, threading
assert "dxtrack.sinks.aws_clients" not in sys.modules
from dxtrack.config import build_config
config = build_config(context="c", stage="prod")
made = {}

def early_child_handler():  # registered before aws_clients' own, so it runs first in a child
    from dxtrack.sinks.firehose import FirehoseSink
    made["child"] = FirehoseSink("s", "metric", config)

os.register_at_fork(after_in_child=early_child_handler)
from dxtrack.sinks import aws_clients
from dxtrack.sinks.firehose import FirehoseSink
parent = FirehoseSink("s", "metric", config)
parent.start()
read, write = os.pipe()
aws_clients._lock.acquire()  # as if another thread were making a sink at the fork
pid = os.fork()
if pid == 0:
    child = made["child"]
    later = FirehoseSink("s", "metric", config)
    fresh = child._shared is not parent._shared and not child._shared.started
    fresh = fresh and later._shared is child._shared and child._shared.users == 2
    os.write(write, b"fresh" if fresh else b"shared")
    os._exit(0)
aws_clients._lock.release()
ready, _, _ = select.select([read], [], [], 60)
print(os.read(read, 16).decode() if ready else "hung")
os.kill(pid, 9) if not ready else os.waitpid(pid, 0)
"""


def test_a_child_whose_fork_handlers_make_sinks_first_gets_a_fresh_client(
    moto_server: str,
) -> None:
    """dxtrack's own child handler remakes its sinks before this module's handler runs when
    the first configure() had no Firehose: the child must neither share its parent's client
    (and its sockets) nor wait for a lock another thread held at the fork."""
    import subprocess
    import sys

    run = subprocess.run(
        [sys.executable, "-c", FORK_FIRST], capture_output=True, text=True, timeout=120
    )
    assert run.stdout.strip() == "fresh", run.stderr


def test_rotated_credentials_in_the_shared_file_are_read_by_the_next_sink(
    moto_server: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    """While a sink keeps the shared client open, a key rotated in the credentials file is a
    different setting: the next configuration signs with the new key."""
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    credentials = tmp_path / "credentials"
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    config = build_config(context="c", stage="prod")
    credentials_in(credentials, "AKIAOLD", "x")
    old = FirehoseSink("s", "metric", config)
    old.start()
    credentials_in(credentials, "AKIANEW", "yy")
    new = FirehoseSink("s", "metric", config)
    assert signing_keys(old, new) == ["AKIAOLD", "AKIANEW"]


def test_the_settings_key_survives_another_thread_changing_the_environment(
    moto_server: str,
) -> None:
    import sys

    config = build_config(context="c", stage="prod")
    stop = threading.Event()

    def churn() -> None:
        while not stop.is_set():
            os.environ["DXTRACK_TEST_CHURN"] = "1"
            os.environ.pop("DXTRACK_TEST_CHURN", None)

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    thread = threading.Thread(target=churn)
    thread.start()
    raised: list[Exception] = []
    try:
        for _ in range(20_000):
            try:
                aws_clients.settings_key(config)
            except Exception as exc:
                raised.append(exc)
    finally:
        stop.set()
        thread.join()
        sys.setswitchinterval(interval)
    assert raised == []


def test_a_sink_collected_without_close_gives_back_its_client(moto_server: str) -> None:
    """A configure() that fails after making some sinks never closes them: collecting them
    must release the shared client, else it stays shared, stale settings and all."""
    import gc

    config = build_config(context="c", stage="prod")
    key = aws_clients.settings_key(config)
    sink = FirehoseSink("s", "metric", config)
    shared = sink._shared
    assert shared is not None and aws_clients._shared[key] is shared
    del sink
    gc.collect()
    assert key not in aws_clients._shared and shared.users == 0


def test_a_closed_client_is_never_made_again(moto_server: str) -> None:
    """A sender that read the shared client before the last close must not make a client
    nobody would ever close: the send is retried (and spooled) instead."""
    from dxtrack.sinks.base import RetryableSendError

    config = build_config(context="c", stage="prod")
    sink = FirehoseSink("s", "metric", config)
    shared = sink._shared
    assert shared is not None
    shared.client()
    sink.close()
    sink.close()  # twice: released once
    assert shared.users == 0 and not shared.started
    with pytest.raises(aws_clients.ClientClosed):
        shared.client()
    assert not shared.started
    with pytest.raises(RetryableSendError, match="closed"):
        sink.send([b"{}\n"])


def test_a_rotation_in_place_is_seen_through_a_variable_in_the_path(
    moto_server: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    """A rotation that keeps the file's size and modification time (``cp -p``, ``rsync -a``,
    coarse timestamps), in a file named through ``$VAR`` as botocore expands it."""
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    monkeypatch.setenv("DXTRACK_TEST_CREDENTIALS_DIR", str(tmp_path))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "$DXTRACK_TEST_CREDENTIALS_DIR/credentials")
    credentials = tmp_path / "credentials"
    config = build_config(context="c", stage="prod")
    credentials_in(credentials, "AKIAOLD1", "x")
    old = FirehoseSink("s", "metric", config)
    old.start()
    before = credentials.stat()
    credentials_in(credentials, "AKIANEW1", "y")
    os.utime(credentials, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert credentials.stat().st_size == before.st_size
    new = FirehoseSink("s", "metric", config)
    assert signing_keys(old, new) == ["AKIAOLD1", "AKIANEW1"]


def test_a_sink_collected_while_the_client_is_made_does_not_hang_its_thread(
    moto_server: str,
) -> None:
    """A collection while the client is made may run an unclosed sink's finalizer on the same
    thread, and its release closes the client being made: no deadlock, and the client made
    meanwhile is closed, not kept."""
    config = build_config(context="c", stage="prod")
    sink = FirehoseSink("s", "metric", config)
    shared = sink._shared
    assert shared is not None
    make = shared._make_client
    closed: list[Any] = []

    def make_while_the_last_user_goes() -> Any:
        sink.close()  # as the finalizer of the last unclosed sink would, on this thread
        client = make()
        client.close = lambda: closed.append(client)
        return client

    shared._make_client = make_while_the_last_user_goes  # type: ignore[method-assign]
    outcome: list[BaseException | None] = []

    def start() -> None:
        try:
            shared.client()
            outcome.append(None)
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=start, daemon=True)
    thread.start()
    thread.join(30)
    assert not thread.is_alive(), "the thread that made the client hung"
    assert len(outcome) == 1 and isinstance(outcome[0], aws_clients.ClientClosed)
    assert len(closed) == 1 and not shared.started, "the client made meanwhile was closed"


EXIT_AFTER_TEST_STAGE = """
import atexit, os, sys, tempfile
def after():  # registered first: runs after every other exit hook
    from dxtrack.sinks import aws_clients
    print(sorted(shared.users for shared in aws_clients._shared.values()), flush=True)
atexit.register(after)
import dxtrack
dxtrack.configure(context="c", stage="test", output_dir=tempfile.mkdtemp())
dxtrack.configure(context="c", stage="prod", spool_dir=tempfile.mkdtemp())
dxtrack.metric("m", 1)
"""


def test_exit_gives_back_the_client_of_a_configuration_made_after_one_without_firehose(
    moto_server: str,
) -> None:
    """weakref's exit hook, registered after dxtrack's when the first configuration had no
    Firehose, runs first and stops finalizers: close() must release the client anyway."""
    import subprocess
    import sys

    run = subprocess.run(
        [sys.executable, "-c", EXIT_AFTER_TEST_STAGE], capture_output=True, text=True, timeout=120
    )
    assert run.stdout.strip().splitlines()[-1:] == ["[]"], run.stdout + run.stderr


class KeepAliveFirehose:
    """A Firehose endpoint over HTTP/1.1 that keeps connections open, as AWS does (moto's
    server closes each one), and holds every answer until ``in_flight`` calls have arrived."""

    def __init__(self, in_flight: int) -> None:
        import json
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.barrier = threading.Barrier(in_flight)
        self.connections: set[int] = set()
        self.calls = 0
        lock = threading.Lock()
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                records = json.loads(body)["Records"]
                with lock:
                    endpoint.connections.add(self.client_address[1])
                    endpoint.calls += 1
                endpoint.barrier.wait(30)
                answer = json.dumps(
                    {"FailedPutCount": 0, "RequestResponses": [{"RecordId": "r"}] * len(records)}
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-amz-json-1.1")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_three_configurations_sending_at_once_keep_their_connections(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Three configurations (a new one, and two it replaced still delivering), each with two
    calls in flight on each of its two streams: twelve calls at once over one shared client.
    Every connection is kept for the next calls (no new connection, no "pool is full")."""
    endpoint = KeepAliveFirehose(in_flight=12)
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint.url)
    for name, value in (("AWS_ACCESS_KEY_ID", "k"), ("AWS_SECRET_ACCESS_KEY", "s")):
        monkeypatch.setenv(name, value)
    sinks = []
    for run in range(3):
        config = build_config(context="c", stage="prod", run_id=f"run-{run}")
        sinks += [FirehoseSink(f"{kind}-{run}", kind, config) for kind in ("metric", "error")]
    failed: list[object] = []

    def send(sink: FirehoseSink) -> None:
        failed.append(sink.send([b'{"n":1}\n']))

    try:
        for _ in range(2):
            threads = [threading.Thread(target=send, args=(s,)) for s in sinks for _ in range(2)]
            with caplog.at_level("WARNING", logger="urllib3"):
                for thread in threads:
                    thread.start()
                for thread in threads:
                    thread.join(60)
        assert failed == [()] * 24 and endpoint.calls == 24
        assert len(endpoint.connections) == 12, "the second round reuses the first's connections"
        assert not [r for r in caplog.records if "pool is full" in r.getMessage()]
    finally:
        for sink in sinks:
            sink.close()
        endpoint.close()
