"""The compiled capture buffer (dxtrack/_event_buffer.c): it behaves as the flat deque the
pure-Python path uses, whatever mix of appends and pops, and it holds its objects safely."""

from __future__ import annotations

import gc
import itertools
import os
import subprocess
import sys
import time
import weakref
from collections import deque
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dxtrack import _build, _hotpath
from dxtrack.environment_variables import DXTRACK_PURE_PYTHON
from dxtrack.events import ERROR, EVENT_WIDTH, METRIC, new_buffer, pop_events
from dxtrack.records import RecordBuilder

EventBuffer = _hotpath.EventBuffer


FALLBACK_CALLS: list[Any] = []


def compiled_entry(kind: str, buffer: Any, clock: Any = time.time) -> Any:
    """The compiled caller of ``kind``, appending to ``buffer``; a call it leaves to its
    fallback is kept in FALLBACK_CALLS."""
    made = _hotpath.Entry(
        lambda *a, **k: FALLBACK_CALLS.append((a, k)), kind, {"now": clock}, "now"
    )
    made.route(buffer, 1_000_000)
    return made


def record_builder() -> RecordBuilder:
    return RecordBuilder(
        context="c", stage="prod", run_id="r", default_metadata={}, producer_id="p" * 32, host="h"
    )


@pytest.fixture(autouse=True)
def no_fallback_calls() -> Any:
    """Every call here is one the compiled caller takes itself."""
    FALLBACK_CALLS.clear()
    yield
    assert FALLBACK_CALLS == []


operations = st.lists(
    st.one_of(
        st.tuples(st.just("extend"), st.integers(0, 10**6)),
        st.tuples(st.just("metric"), st.integers(-(2**53), 2**53)),  # an int value: a double
        st.tuples(st.just("popleft"), st.integers(1, 13)),
        st.tuples(st.just("pop_event"), st.integers(0, 0)),
        st.tuples(st.just("index"), st.integers(-20, 20)),
        st.just(("clear", 0)),
    ),
    max_size=120,
)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(operations)
def test_it_behaves_as_a_flat_deque_of_fields(ops: list[tuple[str, int]]) -> None:
    """Every length, field, popped value and IndexError matches a deque given the same events,
    across the ring's wrap-around and growth; what the compiled caller keeps as a double comes
    out as the float the deque holds."""
    FALLBACK_CALLS.clear()
    buffer, model = EventBuffer(), deque()
    metric = compiled_entry(METRIC, buffer, clock=lambda: 1.25)
    for op, n in ops:
        if op == "extend":
            event = (METRIC, float(n), f"name{n}", n / 7, {"n": n}, None)
            buffer.extend(event)
            model.extend(event)
        elif op == "metric":
            metric("via.entry", n)
            model.extend((METRIC, 1.25, "via.entry", float(n), None, None))
        elif op == "popleft":
            for _ in range(n):
                if not model:
                    with pytest.raises(IndexError):
                        buffer.popleft()
                    break
                expected, got = model.popleft(), buffer.popleft()
                assert got == expected and type(got) is type(expected)
        elif op == "pop_event":  # the rest of the oldest event, in one step
            if not model:
                with pytest.raises(IndexError):
                    buffer.pop_event()
            else:
                rest = (len(model) - 1) % EVENT_WIDTH + 1
                expected = tuple(model.popleft() for _ in range(rest))
                assert buffer.pop_event() == expected
        elif op == "index":
            if -len(model) <= n < len(model):
                assert buffer[n] == model[n]
            else:
                with pytest.raises(IndexError):
                    buffer[n]
        else:
            buffer.clear()
            model.clear()
        assert len(buffer) == len(model)
        assert bool(buffer) == bool(model)
    assert list(buffer) == list(model)
    assert FALLBACK_CALLS == []


def test_the_compiled_caller_fills_it_with_what_it_appends_to_a_deque() -> None:
    """The same calls give the same events in an EventBuffer as in a deque (the clock frozen,
    so that the times are equal): an int value as its float, a float value as itself, errors
    with their type, text, frames and metadata."""
    results = []
    for buffer in (deque(), EventBuffer()):
        metric = compiled_entry(METRIC, buffer, clock=lambda: 1700000000.5)
        error = compiled_entry(ERROR, buffer, clock=lambda: 1700000000.5)
        metric("m", 3, metadata={"a": 1})
        metric("m", 2.5)
        try:
            raise KeyError("k")
        except KeyError:
            error(metadata={"b": 2})
        results.append(pop_events(buffer))
    assert results[0] == results[1]
    assert [type(field) for field in results[1][0]] == [str, float, str, float, dict, type(None)]


def test_times_read_from_the_clock_are_kept_as_time_time_gives_them() -> None:
    """With time.time as the clock, the caller keeps the reading as a double: it comes out as
    a float between readings taken before and after."""
    buffer = EventBuffer()
    metric = compiled_entry(METRIC, buffer)
    before = time.time()
    metric("m", 1)
    after = time.time()
    event = pop_events(buffer)[0]
    assert type(event[1]) is float and before <= event[1] <= after


def test_the_writer_takes_whole_events_from_it_as_from_a_deque() -> None:
    """Many events (the ring grows several times and wraps) come out of the writer in order,
    each line numbered once, the same lines a deque gives."""
    b = record_builder()
    lines = []
    for buffer in (deque(), EventBuffer()):
        metric = compiled_entry(METRIC, buffer, clock=lambda: 5.0)
        for i in range(40):  # wrap around the first ring before it grows
            metric("warm", i)
        pop_events(buffer, 30)
        for i in range(5_000):
            metric("m", i, metadata={"i": i % 3})
        metrics: list[bytes] = []
        writer = b.make_writer()
        writer.build(
            buffer, len(buffer) // EVENT_WIDTH, itertools.count(1), b.build, metrics, [], []
        )
        assert not buffer
        lines.append(metrics)
    assert lines[0] == lines[1]
    assert len(lines[1]) == 5_010


def test_the_writer_releases_an_event_cut_in_two_and_counts_it() -> None:
    """Should part of the oldest event have been popped (only an exception between its fields
    could do that), the writer releases the rest, reports it as a failure (dxtrack counts it
    as dropped, build_failed), and builds the events after it."""
    b = record_builder()
    buffer = EventBuffer()
    for i in range(3):
        buffer.extend((METRIC, 1.0, f"m{i}", 1.0, {"i": i}, None))
    assert buffer.popleft() == METRIC
    metrics: list[bytes] = []
    failures: list[Exception] = []
    count = len(buffer) // EVENT_WIDTH
    b.make_writer().build(buffer, count, itertools.count(1), b.build, metrics, [], failures)
    assert [orjson.loads(line)["metric_name"] for line in metrics] == ["m1", "m2"]
    assert [type(f) for f in failures] == [RuntimeError] and "cut" in str(failures[0])
    assert len(buffer) == 0


SIGNAL_PROGRAM = """
import signal, sys
from collections import deque
from dxtrack._hotpath import EventBuffer
from dxtrack.events import EVENT_WIDTH, iter_events, pop_events

class Stop(Exception):
    pass

armed = [False]

def handler(*_):
    # once per attempt, and only until the events are all taken: a timer that fires late may
    # run the handler as late as the finally clause (the outer try catches it even there)
    if armed[0]:
        armed[0] = False
        raise Stop

signal.signal(signal.SIGALRM, handler)
interrupted = 0
for attempt in range(60):
    buffer = EventBuffer() if attempt % 2 else deque()
    for i in range(20_000):
        buffer.extend(("metric", 1.0, "m", float(i), None, None))
    taken = 0
    try:
        try:
            armed[0] = True
            signal.setitimer(signal.ITIMER_REAL, 0.0005 + attempt * 0.0001)
            for _ in iter_events(buffer):
                taken += 1
        finally:
            armed[0] = False
            signal.setitimer(signal.ITIMER_REAL, 0)
    except Stop:
        interrupted += taken < 20_000  # only the stops that cut the taking short
    assert len(buffer) % EVENT_WIDTH == 0, (attempt, len(buffer))
    assert len(buffer) // EVENT_WIDTH + taken in (20_000, 19_999), attempt
    rest = pop_events(buffer)
    assert all(len(e) == EVENT_WIDTH and e[0] == "metric" for e in rest), attempt
print("interrupted", interrupted)
"""


def test_a_signal_handler_that_raises_while_events_are_taken_never_cuts_one() -> None:
    """pop_events takes each event's fields in one call: an exception raised by a signal
    handler lands between events, never inside one, with either kind of buffer (in a process
    of its own: pytest's own hooks would meet the handler's exception too)."""
    env = {k: v for k, v in os.environ.items() if k != DXTRACK_PURE_PYTHON}
    out = subprocess.run(
        [sys.executable, "-c", SIGNAL_PROGRAM], capture_output=True, text=True, env=env
    )
    assert out.returncode == 0, out.stderr
    words = out.stdout.split()
    assert words[0] == "interrupted" and int(words[1]) > 0  # the handler did interrupt


def test_a_malformed_event_is_refused_and_leaves_the_buffer_as_it_was() -> None:
    buffer = EventBuffer()
    buffer.extend((METRIC, 1.0, "m", 1.0, None, None))
    with pytest.raises(ValueError, match="6 fields"):
        buffer.extend((METRIC, 1.0))
    with pytest.raises(TypeError):
        buffer.extend(42)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        EventBuffer(1)  # type: ignore[call-arg]
    assert pop_events(buffer) == [(METRIC, 1.0, "m", 1.0, None, None)]
    with pytest.raises(IndexError):
        buffer.popleft()


def test_a_large_backlog_drains_in_order_and_the_buffer_works_on() -> None:
    buffer = EventBuffer()
    metric = compiled_entry(METRIC, buffer, clock=lambda: 2.0)
    for i in range(50_000):
        metric("m", i)
    assert len(buffer) == 50_000 * EVENT_WIDTH
    events = pop_events(buffer)
    assert [event[3] for event in events] == [float(i) for i in range(50_000)]
    metric("again", 1)
    assert pop_events(buffer) == [(METRIC, 2.0, "again", 1.0, None, None)]


def test_the_garbage_collector_sees_what_it_holds() -> None:
    """A cycle through the buffer is collected; what it holds is alive until then."""

    class Node:
        pass

    buffer = EventBuffer()
    node = Node()
    node.buffer = buffer  # type: ignore[attr-defined]
    buffer.extend((METRIC, 1.0, "m", 1.0, {"node": node}, None))
    alive = weakref.ref(node)
    assert any(isinstance(r, dict) and r.get("node") is node for r in gc.get_referents(buffer))
    del node, buffer
    assert alive() is not None  # kept by the cycle until a collection
    gc.collect()
    assert alive() is None


def test_a_finalizer_that_appends_while_the_buffer_is_cleared_does_no_harm() -> None:
    buffer = EventBuffer()

    class AppendsOnDel:
        def __del__(self) -> None:
            buffer.extend((METRIC, 9.0, "from __del__", 1.0, None, None))

    buffer.extend((METRIC, 1.0, "m", 1.0, {"x": AppendsOnDel()}, None))
    buffer.clear()
    assert pop_events(buffer) == [(METRIC, 9.0, "from __del__", 1.0, None, None)]


def test_threads_appending_while_one_drains_lose_and_repeat_nothing() -> None:
    """Four threads call the compiled metric() while the main thread builds: every value
    comes out once."""
    import threading

    buffer = EventBuffer()
    metric = compiled_entry(METRIC, buffer, clock=lambda: 3.0)
    per_thread = 20_000
    go = threading.Event()

    def calls(thread: int) -> None:
        go.wait()
        for i in range(per_thread):
            metric("t", thread * per_thread + i)

    threads = [threading.Thread(target=calls, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    go.set()
    seen: list[float] = []
    while any(t.is_alive() for t in threads) or buffer:
        seen += [event[3] for event in pop_events(buffer)]
    for t in threads:
        t.join()
    assert sorted(seen) == [float(i) for i in range(4 * per_thread)]


def test_pure_python_buffers_are_deques(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DXTRACK_PURE_PYTHON, "1")
    assert type(new_buffer()) is deque
    monkeypatch.setenv(DXTRACK_PURE_PYTHON, "0")
    assert type(new_buffer()) is EventBuffer


def test_the_writer_module_works_without_the_caller_module() -> None:
    """dxtrack._build looks the EventBuffer type up lazily: with dxtrack._hotpath missing, it
    still builds from a deque."""
    code = """
import sys, itertools
sys.modules["dxtrack._hotpath"] = None  # as if it was never built
from dxtrack import _build
from dxtrack.records import RecordBuilder
from collections import deque
b = RecordBuilder(context="c", stage="prod", run_id="r", default_metadata={},
                  producer_id="p" * 32, host="h")
buffer = deque(("metric", 1.0, "m", 2.0, None, None))
lines = []
b.make_writer().build(buffer, 1, itertools.count(1), b.build, lines, [], [])
print(len(lines), not buffer)
"""
    env = {k: v for k, v in os.environ.items() if k != DXTRACK_PURE_PYTHON}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    assert out.stdout.split() == ["1", "True"]
    assert _build is not None


def test_an_entry_routed_elsewhere_by_a_finalizer_mid_call_does_not_crash() -> None:
    """Making a deque event's tuple may collect garbage (Python 3.10 and 3.11 collect inside
    the allocation); a finalizer that routes the entry to an EventBuffer then (as configure()
    does) must not leave the call half on the old route: the call is kept once, here by the
    fallback, and the process lives."""
    code = """
import gc, time
from collections import deque
from dxtrack._hotpath import Entry, EventBuffer
calls = []
entry = Entry(lambda *a, **k: calls.append(a), "metric", {"clock": time.time}, "clock")
d, eb = deque(), EventBuffer()
entry.route(d, 10**6)
class Reconfigure:
    def __del__(self):
        entry.route(eb, 10**6)
gc.disable()
hold = [tuple(range(i, i + 6)) for i in range(5000)]  # no 6-tuple left in the free list
r = Reconfigure(); r.me = r; del r  # cyclic garbage, collected at the next allocation
gc.enable()
entry("name", 1.0)
print(len(calls) + len(d) // 6 + len(eb) // 6)
"""
    env = {k: v for k, v in os.environ.items() if k != DXTRACK_PURE_PYTHON}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["1"]


def test_the_compiled_sequence_counts_as_itertools_count_does() -> None:
    """Numbers from its start, one each, across threads; the writer and Python share it."""
    import threading

    sequence = _build.Sequence(5)
    assert iter(sequence) is sequence
    assert [next(sequence) for _ in range(3)] == [5, 6, 7]
    big = _build.Sequence(2**62)
    assert next(big) == 2**62 and next(big) == 2**62 + 1
    with pytest.raises(TypeError):
        _build.Sequence("1")  # type: ignore[arg-type]

    shared = _build.Sequence(1)
    taken: list[int] = []
    lock = threading.Lock()

    def take() -> None:
        mine = [next(shared) for _ in range(20_000)]
        with lock:
            taken.extend(mine)

    threads = [threading.Thread(target=take) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(taken) == list(range(1, 80_001))


def test_the_writer_numbers_with_a_compiled_sequence_as_with_python_s() -> None:
    """Lines the writer writes and lines its fallback builds (an odd value, a timestamp) are
    numbered in order from the same Sequence, which then goes on where they stopped."""
    from datetime import datetime, timezone

    b = record_builder()
    events = [
        (METRIC, 1.0, "a", 1.0, None, None),
        (METRIC, 2.0, "b", 2.0, None, datetime(2026, 1, 1, tzinfo=timezone.utc)),
        (METRIC, 3.0, "c", 3.0, {"k": 1}, None),
    ]
    for count in (itertools.count(1), _build.Sequence(1)):
        buffer = EventBuffer()
        for event in events:
            buffer.extend(event)
        metrics: list[bytes] = []
        others: list[tuple[str, bytes]] = []
        b.make_writer().build(buffer, 3, count, b.build, metrics, others, [])
        seqs = sorted(orjson.loads(line)["seq"] for line in metrics + [p[1] for p in others])
        assert seqs == [1, 2, 3]
        assert next(count) == 4
