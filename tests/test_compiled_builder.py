"""The compiled writer of metric lines gives the same bytes as the pure-Python builder."""

from __future__ import annotations

import itertools
import math
import subprocess
import sys
from collections import Counter, deque
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dxtrack import (
    _build,  # built at install: the tests need the C compiler
    _hotpath,
    tracebacks,
)
from dxtrack.delivery import packing
from dxtrack.events import ERROR, EVENT_WIDTH, METRIC, iter_events
from dxtrack.records import RecordBuilder

plain = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
)
values = st.recursive(
    plain,
    lambda children: st.one_of(
        st.lists(children, max_size=3),
        st.dictionaries(st.text(max_size=5), children, max_size=3),
        st.tuples(children, children),
    ),
    max_leaves=8,
)
metadata = st.one_of(st.none(), st.dictionaries(st.text(max_size=8), values, max_size=5))
names = st.one_of(st.text(max_size=30), st.sampled_from(["a.b", 'quote"d', "back\\slash"]))
floats = st.floats(allow_nan=True, allow_infinity=True)


def builder(
    defaults: dict[str, Any] | None = None, max_line: int | None = None, **extra: Any
) -> RecordBuilder:
    if max_line is not None:
        extra["max_line_bytes"] = max_line
    return RecordBuilder(
        context='ctx \u00e9"x',
        stage="prod",
        run_id="2026-11-23T00:00:00-abc",
        default_metadata=defaults or {},
        producer_id="p" * 32,
        host="host-1",
        **extra,
    )


def both(b: RecordBuilder, events: list[tuple[Any, ...]]) -> tuple[list[Any], list[Any]]:
    """The lines from the compiled writer and from build_many, of the same events."""
    try:
        writer = b.make_writer()
    except TypeError:  # default metadata orjson refuses: dxtrack then builds in Python only
        assert b.compiled_writer() is None
        return both_reference(b, events)
    results = []
    # the writer takes from either buffer, numbering with either counter
    passes = ((deque(), itertools.count(1)), (_hotpath.EventBuffer(), _build.Sequence(1)))
    for buffer, count in passes:
        for event in events:
            buffer.extend(event)
        metrics: list[bytes] = []
        others: list[tuple[str, bytes]] = []
        failures: list[Exception] = []
        writer = b.make_writer()  # a fresh writer: no metadata JSON kept from the last pass
        writer.build(buffer, len(events), count, b.build, metrics, others, failures)
        assert not buffer
        compiled = by_seq([(METRIC, line) for line in metrics] + others)
        results.append((compiled, [type(f) for f in failures]))
    assert results[0] == results[1]
    reference, reference_failures = b.build_many(events, itertools.count(1).__next__)
    assert results[0][1] == [type(f) for f in reference_failures]
    return results[0][0], reference


def by_seq(lines: list[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
    """In the order of their seq (the writer keeps metric lines apart from the others)."""
    return sorted(lines, key=lambda pair: orjson.loads(pair[1])["seq"])


def both_reference(b: RecordBuilder, events: list[tuple[Any, ...]]) -> tuple[list[Any], ...]:
    lines, _ = b.build_many(events, itertools.count(1).__next__)
    return lines, lines


@settings(max_examples=400, deadline=None)
@given(
    events=st.lists(st.tuples(names, floats, floats, metadata), min_size=1, max_size=6),
    defaults=st.one_of(st.just({}), st.dictionaries(st.text(max_size=4), plain, max_size=3)),
)
def test_the_compiled_writer_matches_the_reference_byte_for_byte(
    events: list[tuple[str, float, float, dict[str, Any] | None]], defaults: dict[str, Any]
) -> None:
    captured = [(METRIC, now, name, value, md, None) for name, now, value, md in events]
    compiled, reference = both(builder(defaults), captured)
    assert compiled == reference


def test_repeated_metadata_reuses_its_json_only_when_it_would_be_the_same() -> None:
    """Equal but differently typed values (1, 1.0, True) must not share the cached JSON."""
    mds: list[Any] = [{"a": 1}, {"a": 1.0}, {"a": True}, {"a": 1}, {"a": -0.0}, {"a": 0.0}]
    mds += [{"a": "1"}, {"a": 1, "b": None}, {"b": None, "a": 1}, None, {}, {"a": [1]}]
    mds += [{"a": [1]}, {"a": math.nan}, {"a": math.nan}, {1: "x"}, {"1": "x"}]
    captured = [(METRIC, 1.5, "m", 2.0, md, None) for md in mds]
    compiled, reference = both(builder({"d": 1}), captured)
    assert compiled == reference


def test_events_the_writer_does_not_take_keep_their_order_and_seq() -> None:
    """Errors, explicit timestamps, odd names and unserialisable metadata go to the
    pure-Python builder, in order, each with its own seq."""
    from datetime import datetime, timezone

    try:
        raise ValueError("boom")
    except ValueError as exc:
        trace = tracebacks.capture(exc, exc.__traceback__)

    class Odd:
        def __repr__(self) -> str:
            return "<odd>"

    cycle: dict[str, Any] = {}
    cycle["self"] = cycle
    captured: list[tuple[Any, ...]] = [
        (METRIC, 1.0, "plain", 1.0, None, None),
        (ERROR, 2.0, ValueError, "boom", trace, {"k": "v"}),
        (METRIC, 3.0, "ts", 2.0, None, datetime(2026, 1, 1, tzinfo=timezone.utc)),
        (METRIC, 4.0, "lone \udcff surrogate", 3.0, None, None),
        (METRIC, 5.0, 12345, 4.0, None, None),
        (METRIC, 6.0, "odd", 5.0, {"o": Odd()}, None),
        (METRIC, 7.0, "cycle", 6.0, cycle, None),
        (METRIC, 8.0, "big", 7.0, {"n": 2**80}, None),
        (METRIC, 9.0, "exp", 1e-7, None, None),
        (METRIC, 1e22, "exp-time", 1e300, None, None),
    ]
    compiled, reference = both(builder(), captured)
    assert compiled == reference
    assert [kind for kind, _ in compiled] == [METRIC, ERROR] + [METRIC] * 8


def test_a_line_past_the_limit_is_shortened_as_the_reference_does() -> None:
    captured = [(METRIC, 1.0, "m", 1.0, {"big": "x" * 5_000}, None)]
    compiled, reference = both(builder(max_line=2_000), captured)
    assert compiled == reference
    assert len(compiled[0][1]) < 2_200


def test_a_buffer_shorter_than_its_count_stops_cleanly() -> None:
    b = builder()
    writer = b.make_writer()
    buffer: deque[Any] = deque((METRIC, 1.0, "m", 1.0, None, None))
    buffer.extend((METRIC, 2.0))  # half an event
    lines: list[bytes] = []
    writer.build(buffer, 5, itertools.count(1).__next__, b.build, lines, [], [])
    assert len(lines) == 1
    assert len(buffer) < EVENT_WIDTH


def test_the_frame_cache_tells_apart_code_objects_that_compare_equal() -> None:
    """Two functions with the same code in different files: equal code objects, different
    tracebacks."""
    source = "def f():\n    raise ValueError('x')\n"
    traces = []
    for filename in ("first.py", "second.py"):
        namespace: dict[str, Any] = {}
        exec(compile(source, filename, "exec"), namespace)
        try:
            namespace["f"]()
        except ValueError as exc:
            trace = tracebacks.capture(exc, exc.__traceback__)
            assert isinstance(trace, tuple)
            traces.append(trace[2:])  # without this test's own frame
    assert traces[0][0] == traces[1][0] and traces[0][0] is not traces[1][0]
    first = tracebacks.format(ValueError, "x", traces[0])
    second = tracebacks.format(ValueError, "x", traces[1])
    assert '"first.py"' in first and '"second.py"' in second
    assert tracebacks.fingerprint("ValueError", traces[0]) != tracebacks.fingerprint(
        "ValueError", traces[1]
    )


def test_many_events_cross_batches_in_order() -> None:
    """More events than one batch of the writer, metrics and errors mixed."""
    try:
        raise KeyError("k")
    except KeyError as exc:
        trace = tracebacks.capture(exc, exc.__traceback__)
    captured: list[tuple[Any, ...]] = []
    for i in range(1_000):
        if i % 97 == 0:
            captured.append((ERROR, float(i), KeyError, "'k'", trace, None))
        else:
            captured.append((METRIC, 1.7e9 + i / 7, f"m{i % 3}", i / 3, {"i": i % 5}, None))
    compiled, reference = both(builder({"d": True}), captured)
    assert compiled == reference and len(compiled) == 1_000


def test_compiled_and_pure_frame_keys_agree_on_sameness() -> None:
    def frames_of(n: int) -> tracebacks.Frames:
        try:
            raise KeyError(n)
        except KeyError as exc:
            return tracebacks.frames(exc.__traceback__)

    a, b = frames_of(1), frames_of(2)
    assert _build.same_frames(a, b) and tracebacks._same_frames(a, b)
    assert _build.frames_key(a) == _build.frames_key(b)
    c = a + a
    assert not _build.same_frames(a, c) and not tracebacks._same_frames(a, c)


def test_pure_python_builder_round_trips_through_iter_events() -> None:
    """The reference path that ``DXTRACK_PURE_PYTHON=1`` uses reads the same flat buffer."""
    b = builder()
    buffer: deque[Any] = deque((METRIC, 1.0, "m", 1.0, None, None) * 3)
    lines, failures = b.build_many(iter_events(buffer, 3), itertools.count(1).__next__)
    assert not failures and [line.count(b'"seq":') for _, line in lines] == [1, 1, 1]


@settings(max_examples=150, deadline=None)
@given(
    texts=st.lists(st.text(max_size=40), min_size=1, max_size=4),
    mds=st.lists(metadata, min_size=1, max_size=4),
    defaults=st.one_of(st.just({}), st.dictionaries(st.text(max_size=4), plain, max_size=2)),
)
def test_error_lines_from_the_template_match_the_reference(
    texts: list[str], mds: list[dict[str, Any] | None], defaults: dict[str, Any]
) -> None:
    """Errors written from the template (the same error again and again, chained ones, ones
    never raised) give the reference's bytes."""
    captured: list[tuple[Any, ...]] = []
    for i, text in enumerate(texts * 2):  # each text twice: once made, once kept
        try:
            try:
                raise KeyError(text)
            except KeyError as inner:
                if i % 3 == 2:
                    raise ValueError(text) from inner
                raise
        except (KeyError, ValueError) as exc:
            trace = tracebacks.capture(exc, exc.__traceback__)
            captured.append((ERROR, 1.7e9 + i, type(exc), text, trace, mds[i % len(mds)]))
    captured.append((ERROR, 5.0, ValueError, "never raised", None, None))
    captured.append((ERROR, 6.0, None, None, None, {"outside": "except"}))
    compiled, reference = both(builder(defaults), captured)
    assert compiled == reference


secretish = st.sampled_from(["token", "Password", "api-key", "dbPassword", "x", "session_id", "ok"])
nested_metadata = st.one_of(
    st.none(), st.dictionaries(st.one_of(secretish, st.text(max_size=6)), values, max_size=5)
)


@settings(max_examples=300, deadline=None)
@given(
    events=st.lists(st.tuples(floats, nested_metadata), min_size=1, max_size=6),
    defaults=st.dictionaries(secretish, plain, max_size=3),
)
def test_scrubbing_gives_the_same_bytes_compiled_and_in_python(
    events: list[tuple[float, dict[str, Any] | None]], defaults: dict[str, Any]
) -> None:
    captured = [(METRIC, 1.0 + i, "m", value, md, None) for i, (value, md) in enumerate(events)]
    compiled, reference = both(builder(defaults), captured)
    assert compiled == reference
    for _, line in compiled:
        record = orjson.loads(line)
        for key in ("token", "Password", "api-key", "dbPassword"):
            assert record["metadata"].get(key, "[Filtered]") == "[Filtered]"


def test_sampled_metrics_are_the_reference_lines_of_the_kept_events() -> None:
    """The compiled writer leaves out about half, takes no seq for them, and writes each kept
    one exactly as the pure-Python builder writes that event (unshaped, numbered in order)."""
    from dxtrack.shaping import Shaping

    def sampled() -> RecordBuilder:
        return builder({"d": 1}, shaping=Shaping(metric_sample_rate=0.5))

    b = sampled()
    writer = b.make_writer()
    captured = [(METRIC, 1.0 + i, "m", float(i), {"i": i}, None) for i in range(2_000)]
    buffer: deque[Any] = deque()
    for event in captured:
        buffer.extend(event)
    lines: list[bytes] = []
    writer.build(buffer, len(captured), itertools.count(1).__next__, b.build, lines, [], [])
    kept_times = [orjson.loads(line)["timestamp"] for line in lines]
    assert 800 < len(lines) < 1_200
    assert writer.take_sampled_out() == 2_000 - len(lines)
    assert writer.take_sampled_out() == 0
    kept = [event for event in captured if event[1] in set(kept_times)]
    reference, _ = sampled().build_many(kept, itertools.count(1).__next__, shape=False)
    assert lines == [line for _, line in reference]
    assert all(b'"sample_rate":0.5,' in line for line in lines)


@settings(max_examples=300, deadline=None)
@given(
    sizes=st.lists(st.integers(min_value=0, max_value=300), max_size=60),
    limit=st.integers(min_value=1, max_value=1_000),
)
def test_compiled_packing_joins_the_groups_the_reference_makes(
    sizes: list[int], limit: int
) -> None:
    """``_build.join_groups`` (the packing of every batch) against ``packing._groups``: the
    same runs of whole lines, each at most ``limit`` bytes or one longer line, in order."""
    lines = [bytes([65 + i % 26]) * size + b"\n" for i, size in enumerate(sizes)]
    compiled = _build.join_groups(lines, limit)
    reference = [(b"".join(lines[a:b]), b - a) for a, b in packing._groups(lines, limit)]
    assert compiled == reference
    assert b"".join(data for data, _ in compiled) == b"".join(lines)
    assert all(len(data) <= limit or count == 1 for data, count in compiled)
    with pytest.raises(TypeError, match="bytes"):
        _build.join_groups([b"a\n", "not bytes"], limit)


def test_compiled_packing_survives_code_that_changes_the_list_meanwhile() -> None:
    """A collection set off inside join_groups may run code (a gc callback here) that empties
    the list: the packing still reads the lines it was given."""
    script = """
import gc
from dxtrack import _build
lines = [bytes([65 + i % 26]) * 1000 for i in range(2000)]
given = list(lines)
def emptied(phase, info):
    if phase == "start" and lines:
        lines.clear()
gc.callbacks.append(emptied)
gc.set_threshold(1)
out = _build.join_groups(lines, 5000)
gc.set_threshold(700)
# the lines as they were when it began (a collection before the call may have emptied them)
assert b"".join(data for data, _ in out) in (b"".join(given), b"")
assert sum(count for _, count in out) in (2000, 0)
print("ok")
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr


def test_compiled_packing_takes_any_limit_the_reference_takes() -> None:
    lines = [b"ab\n", b"c\n", b"def\n"]
    for limit in (-1, 0, 1, 5, 2**62, 2**64, 2**200):
        reference = [(b"".join(lines[a:b]), b - a) for a, b in packing._groups(lines, limit)]
        assert _build.join_groups(lines, limit) == reference, limit


def storm(n: int) -> list[tuple[Any, ...]]:
    """The same two errors raised again and again within a minute, between metrics."""
    events: list[tuple[Any, ...]] = []
    for i in range(n):
        try:
            if i % 4 == 3:
                raise KeyError("other")
            raise ValueError("again")
        except (KeyError, ValueError) as exc:
            trace = tracebacks.capture(exc, exc.__traceback__)
            events.append((ERROR, 1.7e9 + i / 100, type(exc), str(exc), trace, {"i": i % 2}))
        events.append((METRIC, 1.7e9 + i / 100, "m", float(i), None, None))
    return events


def shaped_build(
    b: RecordBuilder, events: list[tuple[Any, ...]], compiled: bool
) -> tuple[list[tuple[str, bytes]], Counter[str], int]:
    """The lines (by seq), what was left out by reason, and how many events the fallback got."""
    omitted: Counter[str] = Counter()
    b.omit = lambda reason, n: omitted.update({reason: n})
    if not compiled:
        lines, failures = b.build_many(events, itertools.count(1).__next__)
        assert not failures
        return lines, omitted, len(events)
    fallback_calls = [0]

    def fallback(*args: Any) -> Any:
        fallback_calls[0] += 1
        return b.build(*args)

    writer = b.make_writer()
    buffer = _hotpath.EventBuffer()
    for event in events:
        buffer.extend(event)
    metrics: list[bytes] = []
    others: list[tuple[str, bytes]] = []
    failures: list[Exception] = []
    writer.build(buffer, len(events), _build.Sequence(1), fallback, metrics, others, failures)
    assert not failures
    return by_seq([(METRIC, line) for line in metrics] + others), omitted, fallback_calls[0]


def test_rate_limited_errors_are_written_by_the_compiled_writer_as_the_reference_does() -> None:
    """With the default rate limit on, an error seen before is admitted and written by the
    compiled writer (no call into the Python builder): the same lines and seqs, the same
    occurrences held back, and the same summaries, as the pure-Python builder gives."""
    from dxtrack.shaping import Shaping

    def limited() -> RecordBuilder:
        return builder({"d": 1}, shaping=Shaping(error_rate_limit=5))

    events = storm(400)
    compiled_builder, reference_builder = limited(), limited()
    compiled, compiled_omitted, fallback_calls = shaped_build(compiled_builder, events, True)
    reference, reference_omitted, _ = shaped_build(reference_builder, events, False)
    assert compiled == reference
    assert sum(1 for kind, _ in compiled if kind == ERROR) == 10  # 5 of each error
    assert compiled_omitted == reference_omitted == {"rate_limited": 400 - 10 - 2}
    assert fallback_calls == 2, "only each error's first occurrence goes to the Python builder"
    summaries = [
        b.summaries(itertools.count(10_000).__next__, 1.7e9 + 400, everything=True)[0]
        for b in (compiled_builder, reference_builder)
    ]
    assert summaries[0] == summaries[1]
    assert sorted(orjson.loads(line)["suppressed"] for _, line in summaries[0]) == [94, 294]


def test_sampled_errors_written_by_the_compiled_writer_are_counted_and_marked() -> None:
    from dxtrack.shaping import Shaping

    b = builder(shaping=Shaping(error_sample_rate=0.5, error_rate_limit=None))
    events = [event for event in storm(2_000) if event[0] == ERROR]
    lines, omitted, fallback_calls = shaped_build(b, events, True)
    assert 800 < len(lines) < 1_200
    assert omitted == {"sampled": 2_000 - len(lines)}
    records = [orjson.loads(line) for _, line in lines]
    # The Python builder (the fallback) gets each error until one occurrence of it is kept
    # (the ErrorLines JSON is made from a kept one); the compiled writer takes all the rest.
    kept_at = {r["timestamp"] for r in records}
    until_first_kept = 0
    for kind in (ValueError, KeyError):
        occurrences = [event[1] for event in events if event[2] is kind]
        until_first_kept += 1 + next(i for i, t in enumerate(occurrences) if t in kept_at)
    assert fallback_calls == until_first_kept
    assert [r["seq"] for r in records] == list(range(1, len(lines) + 1))
    assert all(r["sample_rate"] == 0.5 and r["suppressed"] == 0 for r in records)


def test_an_interrupt_in_admit_is_the_events_failure_and_not_admitted_again() -> None:
    """A KeyboardInterrupt (no Exception) from the rate limit is reported as that event's
    failure, as the fallback's are: not swallowed, and not admitted a second time through the
    fallback."""
    from dxtrack.shaping import Shaping

    b = builder(shaping=Shaping(error_rate_limit=5))
    admit = b.admit_error
    calls = [0]

    def interrupted(*args: Any, **kwargs: Any) -> bool:
        calls[0] += 1
        if calls[0] == 3:
            raise KeyboardInterrupt
        return admit(*args, **kwargs)

    b.admit_error = interrupted  # type: ignore[method-assign]
    events = [event for event in storm(8) if event[0] == ERROR and event[2] is ValueError]
    fallback_events: list[Any] = []

    def fallback(event: Any, *args: Any) -> Any:
        fallback_events.append(event)
        return b.build(event, *args)

    writer = b.make_writer()
    buffer = _hotpath.EventBuffer()
    for event in events:
        buffer.extend(event)
    others: list[tuple[str, bytes]] = []
    failures: list[BaseException] = []
    writer.build(buffer, len(events), _build.Sequence(1), fallback, [], others, failures)
    assert [type(f) for f in failures] == [KeyboardInterrupt]
    assert len(fallback_events) == 1, "only the first occurrence; none after the interrupt"
    assert len(others) == len(events) - 1
    assert [orjson.loads(line)["seq"] for _, line in others] == list(range(1, len(events)))
