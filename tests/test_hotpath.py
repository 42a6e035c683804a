"""The compiled fast path of metric() and error() (dxtrack/_hotpath.c): built, used, and the
same records and errors as the pure-Python methods it stands in front of."""

from __future__ import annotations

import gc
import inspect
import os
import sys
import time
import weakref
from collections import OrderedDict, deque
from collections.abc import Iterator
from datetime import datetime, timezone
from decimal import Decimal
from types import MappingProxyType
from typing import Any

import pytest
from freezegun import freeze_time
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import dxtrack
from dxtrack import _hotpath as hotpath  # built at install: a missing build fails here
from dxtrack import client as client_module
from dxtrack import tracebacks
from dxtrack.api import current_client
from dxtrack.client import Client
from dxtrack.config import build_config
from dxtrack.environment_variables import DXTRACK_PURE_PYTHON
from dxtrack.events import ERROR, METRIC, pop_events
from dxtrack.sinks.memory import MemorySink

PURE_PYTHON = bool(os.environ.get(DXTRACK_PURE_PYTHON))


def test_the_compiled_entry_points_are_the_module_functions() -> None:
    """Unless DXTRACK_PURE_PYTHON is set, dxtrack.metric/error are the compiled entries, and
    they read like the methods: signature, docstring, name."""
    client = current_client()
    if PURE_PYTHON:
        assert dxtrack.metric == client.metric and dxtrack.error == client.error
        return
    assert isinstance(dxtrack.metric, hotpath.Entry)
    assert isinstance(dxtrack.error, hotpath.Entry)
    assert inspect.signature(dxtrack.metric) == inspect.signature(client.metric)
    assert inspect.signature(dxtrack.error) == inspect.signature(client.error)
    assert dxtrack.metric.__doc__ == Client.metric.__doc__
    assert dxtrack.metric.__name__ == "metric" and dxtrack.error.__name__ == "error"


# ---- the Entry on its own: which calls it takes, which it hands to the fallback -------------


class Fallback:
    """Stands in for the Python method: records each call it gets."""

    def __init__(self) -> None:
        self.calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = []

    def __call__(self, *args: Any, **kwargs: Any) -> str:
        self.calls.append((args, kwargs))
        return "fallback"


def entry(kind: str, limit: int = 1_000_000) -> tuple[Any, Fallback, deque[Any]]:
    fallback, buffer = Fallback(), deque()
    made = hotpath.Entry(fallback, kind, {"_now": lambda: 1234.5}, "_now")
    made.route(buffer, limit)
    return made, fallback, buffer


@pytest.mark.parametrize(
    ("args", "kwargs", "value"),
    [
        (("m", 1.5), {}, 1.5),
        (("m", 2), {}, 2.0),
        (("m", -(2**60)), {}, float(-(2**60))),
        (("m",), {"value": 3.0}, 3.0),
        ((), {"metric_name": "m", "value": 4.0, "metadata": None, "timestamp": None}, 4.0),
        (("m", 5.0, {"a": 1}), {}, 5.0),
        (("m", 6.0), {"metadata": {"a": 1}}, 6.0),
    ],
)
def test_entry_takes_the_common_metric_calls(
    args: tuple[Any, ...], kwargs: dict[str, Any], value: float
) -> None:
    made, fallback, buffer = entry(METRIC)
    assert made(*args, **kwargs) is None
    assert fallback.calls == []
    ((kind, now, name, got, metadata, timestamp),) = pop_events(buffer)
    assert (kind, now, name, got, timestamp) == (METRIC, 1234.5, "m", value, None)
    assert type(got) is float
    given_metadata = args[2] if len(args) > 2 else kwargs.get("metadata")
    assert metadata == given_metadata
    if given_metadata is not None:
        assert metadata is not given_metadata, "metadata is copied at call time"


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [
        (("m", "1.5"), {}),  # not a number type: float() and its ValueError are the fallback's
        (("m", True), {}),
        (("m", Decimal("1.5")), {}),
        (("m", 10**400), {}),  # too large for a float
        (("m", 1.0, OrderedDict(a=1)), {}),  # a dict subclass
        (("m", 1.0, MappingProxyType({"a": 1})), {}),
        (("m", 1.0, ["not", "a", "dict"]), {}),
        (("m", 1.0), {"timestamp": datetime(2024, 1, 1, tzinfo=timezone.utc)}),
        (("m",), {}),  # missing value: the fallback raises TypeError as Python would
        (("m", 1.0, None, None, "extra"), {}),
        (("m", 1.0), {"unknown": 1}),
        (("m", 1.0, None), {"metadata": None}),  # given twice
        ((), {"value": 1.0}),
    ],
)
def test_entry_hands_every_other_metric_call_to_the_fallback(
    args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    made, fallback, buffer = entry(METRIC)
    assert made(*args, **kwargs) == "fallback"
    assert fallback.calls == [(args, kwargs)]
    assert len(buffer) == 0


def test_entry_falls_back_at_the_limit_and_when_unrouted() -> None:
    made, fallback, buffer = entry(METRIC, limit=12)  # room for two events of six fields
    for i in range(3):
        made("m", float(i))
    assert len(buffer) == 12 and fallback.calls == [(("m", 2.0), {})]
    made.route(None, 0)
    made("m", 9.0)
    assert len(buffer) == 12 and len(fallback.calls) == 2


def deep(n: int) -> None:
    if n <= 1:
        raise ValueError("boom")
    deep(n - 1)


def test_entry_captures_an_error_as_the_python_path_does() -> None:
    made, fallback, buffer = entry(ERROR)
    try:
        deep(5)
    except ValueError as exc:
        made(metadata={"row": 1})
        expected_frames = tracebacks.frames(exc.__traceback__)
    assert fallback.calls == []
    ((kind, now, exc_type, text, frames, metadata),) = pop_events(buffer)
    assert (kind, now, exc_type, text, metadata) == (ERROR, 1234.5, ValueError, "boom", {"row": 1})
    assert frames == expected_frames and len(frames) == 2 * 6  # this test's frame and 5 deep


class Unprintable(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no text")


def test_entry_hands_unusual_errors_to_the_fallback() -> None:
    made, fallback, buffer = entry(ERROR)
    made()  # outside an except block
    try:
        try:
            deep(2)
        except ValueError as exc:
            raise KeyError("k") from exc
    except KeyError:
        made()  # chained: the Python path captures the chain
    try:
        raise Unprintable()
    except Unprintable:
        made()  # str() raises: the Python path records a note instead
    try:
        deep(1)
    except ValueError:
        made(metadata=MappingProxyType({"a": 1}))
        made("positional", "too many")
    assert len(fallback.calls) == 5 and len(buffer) == 0
    try:
        try:
            deep(1)
        except ValueError:
            raise KeyError("k") from None  # context suppressed: no chain to capture
    except KeyError:
        made()
    assert len(fallback.calls) == 5 and len(buffer) == 6


def test_entry_reads_the_clock_each_call_so_freezegun_applies() -> None:
    """The clock is looked up by name per call in the namespace given (the client module's),
    where freezegun patches it."""
    fallback, buffer = Fallback(), deque()
    made = hotpath.Entry(fallback, METRIC, vars(client_module), "_now")
    made.route(buffer, 1_000)
    with freeze_time("2024-03-05 06:07:08"):
        made("frozen", 1.0)
    made("live", 1.0)
    frozen, live = pop_events(buffer)
    assert frozen[1] == datetime(2024, 3, 5, 6, 7, 8, tzinfo=timezone.utc).timestamp()
    assert abs(live[1] - time.time()) < 60


def test_an_entry_and_its_client_are_collected() -> None:
    """Client and entries refer to each other; the cycle must not leak."""
    client = Client()
    gone = weakref.ref(client)
    del client
    gc.collect()
    assert gone() is None


def test_entry_rejects_a_bad_kind() -> None:
    with pytest.raises(ValueError, match="kind"):
        hotpath.Entry(Fallback(), "gauge", {}, "_now")


# ---- the real client: compiled and Python paths give the same records ------------------------


@pytest.fixture
def background_memory() -> Iterator[tuple[Client, dict[str, list[dict[str, Any]]]]]:
    """A client of its own whose records go to memory through the background shipper (the
    path the compiled entries serve), with default metadata to merge under."""
    records: dict[str, list[dict[str, Any]]] = {ERROR: [], METRIC: []}
    client = Client()
    config = build_config(
        context="hot", stage="test", run_id="r", default_metadata={"service": "s", "a": 0}
    )
    client.configure(
        config,
        [
            (lambda: MemorySink(ERROR, records[ERROR]), False),
            (lambda: MemorySink(METRIC, records[METRIC]), False),
        ],
    )
    yield client, records
    client.close(timeout=5)


_VOLATILE = ("id", "seq", "timestamp")


def comparable(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k not in _VOLATILE}


values = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.booleans(),
    st.sampled_from(["1.5", "nan", "x", "", None, Decimal("2.5"), object(), 10**400]),
)
metadatas = st.one_of(
    st.none(),
    st.dictionaries(st.text(max_size=5), st.one_of(st.integers(), st.text(max_size=5)), max_size=4),
    st.builds(OrderedDict, st.dictionaries(st.text(max_size=3), st.integers(), max_size=2)),
    st.sampled_from([[1, 2], "text", 3]),
)


def outcome(call: Any, *args: Any, **kwargs: Any) -> tuple[str, str] | None:
    try:
        call(*args, **kwargs)
    except Exception as exc:
        return type(exc).__name__, str(exc)
    return None


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(value=values, metadata=metadatas, keyword=st.booleans())
def test_compiled_and_python_metric_agree(
    background_memory: tuple[Client, dict[str, list[dict[str, Any]]]],
    value: Any,
    metadata: Any,
    keyword: bool,
) -> None:
    client, records = background_memory
    records[METRIC].clear()
    kwargs = {"metadata": metadata} if keyword else {}
    args = ("agree", value) if keyword else ("agree", value, metadata)
    compiled = outcome(client.metric_entry, *args, **kwargs)
    python = outcome(client.metric, *args, **kwargs)
    assert compiled == python
    assert client.flush(timeout=10)
    got = records[METRIC]
    if compiled is None:
        assert len(got) == 2 and comparable(got[0]) == comparable(got[1])
        assert got[0]["seq"] + 1 == got[1]["seq"]
    else:
        assert got == []


def raise_in(depth: int, chained: bool) -> None:
    try:
        deep(depth)
    except ValueError as exc:
        if chained:
            raise KeyError("outer") from exc
        raise


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(depth=st.integers(1, 30), chained=st.booleans(), metadata=metadatas)
def test_compiled_and_python_error_agree(
    background_memory: tuple[Client, dict[str, list[dict[str, Any]]]],
    depth: int,
    chained: bool,
    metadata: Any,
) -> None:
    client, records = background_memory
    records[ERROR].clear()
    results = []
    for call in (client.error_entry, client.error):
        try:
            raise_in(depth, chained)
        except (ValueError, KeyError):
            results.append(outcome(call, metadata=metadata))
    assert results[0] == results[1]
    assert client.flush(timeout=10)
    got = records[ERROR]
    if results[0] is None:
        first, second = (comparable(r) for r in got)
        assert first == second  # the same traceback text too: both raised from the same line
        # deep() x depth: depth - 1 times the same line, of which Python prints 3 and then
        # "[Previous line repeated N more times]", and the line that raises
        repeats = depth - 1
        frames = 2 + min(repeats, 3) + 1  # this test's frame, raise_in, deep
        if chained:
            frames += 1  # the cause's block: raise_in, deep; the outer: test, raise_in
        text = first["exception"]["traceback"]
        assert text.count("  File ") == frames
        assert (f"[Previous line repeated {repeats - 3} more time" in text) == (repeats > 3)
        assert got[0]["fingerprint"] == got[1]["fingerprint"]
    else:
        assert got == []


def test_compiled_path_is_used_under_the_real_configuration(
    background_memory: tuple[Client, dict[str, list[dict[str, Any]]]],
) -> None:
    """With a background shipper, the common case goes into the pipeline's buffer without the
    Python method (whose call would show in a profile of this thread)."""
    client, _ = background_memory
    assert (client._compiled is None) == PURE_PYTHON
    calls: list[str] = []

    def profiler(frame: Any, event: str, arg: Any) -> None:
        if event == "call" and frame.f_code is Client.metric.__code__:
            calls.append(event)

    sys.setprofile(profiler)
    try:
        client.metric_entry("seen", 1.0, metadata={"a": 1})
        client.metric_entry("seen", "2.0")  # a string: always the Python method's
    finally:
        sys.setprofile(None)
    assert len(calls) == (2 if PURE_PYTHON else 1)
    assert client.flush(timeout=10)
