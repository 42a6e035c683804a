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
