"""Calls with equal metadata share one captured copy (dxtrack/_hotpath.c), and the builders
reuse its JSON by identity: every record must still carry the metadata as it was at its call,
through every kind of change to the caller's dict between calls."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dxtrack import _hotpath as hotpath  # built at install: a missing build fails here
from dxtrack import jsonsafe
from dxtrack.client import Client
from dxtrack.config import build_config
from dxtrack.events import ERROR, METRIC, pop_events
from dxtrack.sinks.memory import MemorySink

# Values that compare equal across types or differ only in bits: a shared copy must never stand
# for a dict whose JSON would differ (1 / 1.0 / true, 0.0 / -0.0, "1" / 1).
TRICKY = [1, 1.0, True, 0, 0.0, -0.0, False, "1", "", None, math.nan, 2**70, "é", [1], {"n": 1}]


def typed(metadata: dict[str, Any] | None) -> Any:
    """What a record would say of ``metadata``: its JSON, in order, types and bits included."""
    if metadata is None:
        return None
    return [(key, type(value).__name__, repr(value)) for key, value in metadata.items()]


def entry(kind: str) -> tuple[Any, deque[Any]]:
    buffer: deque[Any] = deque()
    made = hotpath.Entry(lambda *a, **k: "fallback", kind, {"_now": lambda: 1.5}, "_now")
    made.route(buffer, 1_000_000)
    return made, buffer


def test_equal_metadata_shares_one_copy_and_a_changed_dict_gets_its_own() -> None:
    made, buffer = entry(METRIC)
    metadata = {"route": "/a", "status": 200}
    made("m", 1.0, metadata)
    made("m", 1.0, {"route": "/a", "status": 200})  # equal, another dict
    metadata["status"] = 500
    made("m", 1.0, metadata)
    first, second, third = (event[4] for event in pop_events(buffer))
    assert first is second, "equal metadata shares the captured copy"
    assert first is not metadata and first == {"route": "/a", "status": 200}
    assert third is not first and third == {"route": "/a", "status": 500}


@pytest.mark.parametrize("size", [1, 7, 8, 9, 20])
def test_metadata_of_any_size_is_shared_only_while_equal(size: int) -> None:
    """Up to 8 items are compared with the snapshot's items kept beside it, more by walking
    both dicts: either way a change to any item, its order, or a key added or removed, gives
    a copy of its own."""
    made, buffer = entry(METRIC)
    metadata = {f"k{i}": i for i in range(size)}
    made("m", 1.0, metadata)
    made("m", 1.0, dict(metadata))
    changed = dict(metadata, **{f"k{size - 1}": -1})
    made("m", 1.0, changed)
    reordered = dict(reversed(list(metadata.items())))
    made("m", 1.0, reordered)
    longer = dict(metadata, extra=0)
    made("m", 1.0, longer)
    made("m", 1.0, longer)
    first, second, third, fourth, fifth, sixth = (e[4] for e in pop_events(buffer))
    assert second is first and first == metadata
    assert third is not first and third == changed
    if size > 1:
        assert fourth is not third and list(fourth) == list(reordered)
    assert fifth is not fourth and fifth == longer and sixth is fifth


@pytest.mark.parametrize("old", TRICKY)
@pytest.mark.parametrize("new", TRICKY)
def test_a_value_equal_in_python_but_not_in_json_is_a_change(old: Any, new: Any) -> None:
    made, buffer = entry(METRIC)
    metadata = {"k": old}
    made("m", 1.0, metadata)
    metadata["k"] = new
    made("m", 1.0, metadata)
    first, second = (event[4] for event in pop_events(buffer))
    assert typed(first) == typed({"k": old}) and typed(second) == typed({"k": new})


@pytest.mark.parametrize("nested", [[1], {"n": 1}, bytearray(b"x")], ids=type)
def test_metadata_holding_a_mutable_value_is_never_shared(nested: Any) -> None:
    """The builders reuse a shared copy's JSON, and a list or dict inside may change between
    two calls: such metadata is copied at each call."""
    made, buffer = entry(METRIC)
    metadata = {"nested": nested}
    made("m", 1.0, metadata)
    made("m", 1.0, metadata)
    first, second = (event[4] for event in pop_events(buffer))
    assert first is not second and first == second == metadata


def test_the_same_keys_in_another_order_are_a_change() -> None:
    made, buffer = entry(METRIC)
    made("m", 1.0, {"a": 1, "b": 2})
    made("m", 1.0, {"b": 2, "a": 1})
    first, second = (event[4] for event in pop_events(buffer))
    assert list(first) == ["a", "b"] and list(second) == ["b", "a"]


keys = st.sampled_from(["a", "b", "route", "status", "é"])
steps = st.lists(
    st.one_of(
        st.tuples(st.just("set"), keys, st.sampled_from(TRICKY)),
        st.tuples(st.just("delete"), keys, st.none()),
        st.tuples(st.just("new dict"), st.none(), st.none()),
        st.tuples(st.just("none"), st.none(), st.none()),
    ),
    min_size=1,
    max_size=30,
)


def replay(steps: list[tuple[str, Any, Any]]) -> Iterator[dict[str, Any] | None]:
    """The metadata of each call: one dict changed in place between calls, sometimes a new
    equal dict, sometimes no metadata."""
    metadata: dict[str, Any] = {"route": "/x"}
    for action, key, value in steps:
        if action == "set":
            metadata[key] = value
        elif action == "delete":
            metadata.pop(key, None)
        elif action == "new dict":
            metadata = dict(metadata)
        yield None if action == "none" else metadata


@settings(max_examples=200, deadline=None)
@given(steps=steps, kind=st.sampled_from([METRIC, ERROR]))
def test_every_captured_copy_is_the_metadata_at_its_call(
    steps: list[tuple[str, Any, Any]], kind: str
) -> None:
    made, buffer = entry(kind)
    expected = []
    for metadata in replay(steps):
        if kind == METRIC:
            made("m", 1.0, metadata)
        else:
            try:
                raise ValueError("boom")
            except ValueError:
                made(metadata=metadata)
        expected.append(typed(metadata))
    field = 4 if kind == METRIC else 5  # see dxtrack/events.py
    captured = [typed(event[field]) for event in pop_events(buffer)]
    assert captured == expected


@pytest.fixture
def memory_client() -> Iterator[tuple[Client, dict[str, list[dict[str, Any]]]]]:
    """A client shipping through the builder thread to memory."""
    records: dict[str, list[dict[str, Any]]] = {ERROR: [], METRIC: []}
    client = Client()
    client.configure(
        build_config(context="snap", stage="test", run_id="r", error_rate_limit=None),
        [
            (lambda: MemorySink(ERROR, records[ERROR]), False),
            (lambda: MemorySink(METRIC, records[METRIC]), False),
        ],
    )
    yield client, records
    client.close(timeout=5)


def as_recorded(metadata: dict[str, Any] | None) -> bytes:
    """The JSON a record gives of ``metadata`` (types kept: 1, 1.0 and true differ)."""
    return orjson.dumps(orjson.loads(jsonsafe.dumps({"metadata": metadata or {}}))["metadata"])


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(steps=steps)
def test_records_carry_the_metadata_of_their_call(
    memory_client: tuple[Client, dict[str, list[dict[str, Any]]]],
    steps: list[tuple[str, Any, Any]],
) -> None:
    """Through the compiled writer (metrics) and the error template, whose JSON caches know a
    shared copy by its identity."""
    client, records = memory_client
    records[METRIC].clear()
    records[ERROR].clear()
    expected = []
    for metadata in replay(steps):
        client.metric_entry("m", 1.0, metadata=metadata)
        try:
            raise ValueError("boom")
        except ValueError:
            client.error_entry(metadata=metadata)
        expected.append(as_recorded(metadata))
    assert client.flush(timeout=10)
    for kind in (METRIC, ERROR):
        got = sorted(records[kind], key=lambda record: record["seq"])
        assert [orjson.dumps(record["metadata"]) for record in got] == expected, kind


def test_a_nested_value_changed_between_records_shows_in_the_later_record(
    memory_client: tuple[Client, dict[str, list[dict[str, Any]]]],
) -> None:
    """A record is built from the metadata as it is when the builder takes it; the JSON the
    builders keep for a shared copy must not stand for a changed nested value."""
    client, records = memory_client
    request = {"status": 200}
    tags = ["a"]
    for status in (200, 500, 503):
        request["status"] = status
        tags.append(str(status))
        client.metric_entry("m", 1.0, metadata={"request": request, "tags": tags})
        try:
            raise ValueError("boom")
        except ValueError:
            client.error_entry(metadata={"request": request, "tags": tags})
        assert client.flush(timeout=10)
    for kind in (METRIC, ERROR):
        got = [r["metadata"] for r in sorted(records[kind], key=lambda r: r["seq"])]
        assert [m["request"]["status"] for m in got] == [200, 500, 503], kind
        assert [len(m["tags"]) for m in got] == [2, 3, 4], kind
