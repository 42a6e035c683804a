"""The compiled writer's error lines (``MetricWriter.take_errors``): an error raised again is
written in C from the JSON ``ErrorLines`` made at its first occurrence, byte for byte as the
pure-Python builder writes it, and never from JSON that went stale."""

from __future__ import annotations

import importlib
import itertools
import os
import sys
from collections import deque
from pathlib import Path
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from dxtrack import tracebacks
from dxtrack.events import ERROR, METRIC
from dxtrack.records import RecordBuilder
from dxtrack.shaping import Shaping
from tests.test_compiled_builder import builder


def deep(n: int, text: str) -> None:
    if n <= 1:
        raise ValueError(text)
    deep(n - 1, text)


def error_event(text: str, metadata: Any, when: float, depth: int = 10) -> tuple[Any, ...]:
    try:
        deep(depth, text)
    except ValueError as exc:
        return (ERROR, when, ValueError, str(exc), tracebacks.frames(exc.__traceback__), metadata)
    raise AssertionError("deep() raises")


class CountingFallback:
    """The builder's ``build`` as the writer's fallback, counting the events it gets."""

    def __init__(self, b: RecordBuilder) -> None:
        self.build = b.build
        self.kinds: list[str] = []

    def __call__(self, event: tuple[Any, ...], seq: int | None, next_seq: Any) -> Any:
        self.kinds.append(event[0])
        return self.build(event, seq, next_seq)


def written(b: RecordBuilder, events: list[tuple[Any, ...]]) -> tuple[list[bytes], list[str]]:
    """The lines (in seq order) the compiled writer gives, and the kinds its fallback got."""
    writer = b.make_writer()  # what compiled_writer() gives, DXTRACK_PURE_PYTHON or not
    buffer: deque[Any] = deque()
    for event in events:
        buffer.extend(event)
    fallback = CountingFallback(b)
    metrics: list[bytes] = []
    others: list[tuple[str, bytes]] = []
    failures: list[Exception] = []
    b.start_batch()
    writer.build(
        buffer, len(events), itertools.count(1).__next__, fallback, metrics, others, failures
    )
    assert failures == []
    lines = metrics + [line for _, line in others]
    return sorted(lines, key=lambda line: orjson.loads(line)["seq"]), fallback.kinds


def reference(b: RecordBuilder, events: list[tuple[Any, ...]]) -> list[bytes]:
    lines, failures = b.build_many(events, itertools.count(1).__next__, shape=False)
    assert failures == []
    return [line for _, line in lines]


# what orjson takes as default metadata (else no compiled writer is made at all)
scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
)
metadata = st.one_of(
    st.none(),
    st.just({}),
    st.dictionaries(st.sampled_from(["a", "token", "route", "é"]), scalar, max_size=3),
)


@settings(max_examples=150, deadline=None)
@given(
    plan=st.lists(
        st.tuples(st.sampled_from(["boom", "bang", 'quo"te']), metadata, st.booleans()),
        min_size=1,
        max_size=12,
    ),
    defaults=st.one_of(st.just({}), st.dictionaries(st.text(max_size=4), scalar, max_size=2)),
)
def test_repeated_errors_are_written_in_c_as_the_reference_writes_them(
    plan: list[tuple[str, Any, bool]], defaults: dict[str, Any]
) -> None:
    """Errors (and metrics between them): the same bytes as the pure-Python builder, and only
    the first occurrence of each error goes to the fallback."""
    events = []
    for i, (text, md, with_metric) in enumerate(plan):
        events.append(error_event(text, md, 1.7e9 + i / 7))
        if with_metric:
            events.append((METRIC, 1.7e9 + i, "m", float(i), md, None))
    b = builder(defaults)
    lines, fallback_kinds = written(b, events)
    assert lines == reference(builder(defaults), events)
    assert fallback_kinds == [ERROR] * len({text for text, _, _ in plan})


def test_an_error_line_past_the_limit_is_shortened_as_the_reference_does() -> None:
    events = [error_event("boom", {"big": "x" * 3_000}, 1.7e9 + i) for i in range(3)]
    lines, fallback_kinds = written(builder(max_line=2_000), events)
    assert lines == reference(builder(max_line=2_000), events)
    assert all(len(line) < 2_200 and b"x" * 3_000 not in line for line in lines)
    assert fallback_kinds == [ERROR] * 3  # too long: each goes back to the fallback


def test_with_a_rate_limit_an_error_seen_before_is_still_written_in_c() -> None:
    """The rate limit (on by default) admits each occurrence through the builder's limiter,
    but the line of an error seen before is written in C: only the first goes to the fallback."""
    shaping = Shaping(error_rate_limit=100)
    events = [error_event("boom", {"i": i}, 1.7e9 + i) for i in range(20)]
    lines, fallback_kinds = written(builder(shaping=shaping), events)
    expected, failures = builder(shaping=shaping).build_many(events, itertools.count(1).__next__)
    assert failures == []
    assert lines == [line for _, line in expected]
    assert fallback_kinds == [ERROR]


def test_an_error_from_a_source_file_that_changed_shows_the_new_line(tmp_path: Path) -> None:
    """Python prints the source line as the file reads now; the JSON kept for the old text
    must not be written again once the file changed."""
    module_file = tmp_path / "dxtrack_changing_module.py"
    module_file.write_text("def fail():\n    raise ValueError('x')  # first\n")
    sys.path.insert(0, str(tmp_path))
    try:
        module = importlib.import_module("dxtrack_changing_module")

        def event(when: float) -> tuple[Any, ...]:
            try:
                module.fail()
            except ValueError as exc:
                frames = tracebacks.frames(exc.__traceback__)
                return (ERROR, when, ValueError, "x", frames, None)
            raise AssertionError("fail() raises")

        b = builder()
        first, _ = written(b, [event(1.0), event(2.0)])
        assert all(b"# first" in line for line in first)
        module_file.write_text("def fail():\n    raise ValueError('x')  # second, longer\n")
        stat = module_file.stat()
        os.utime(module_file, (stat.st_atime, stat.st_mtime + 10))
        again, fallback_kinds = written(b, [event(3.0), event(4.0)])
        assert all(b"# second, longer" in line for line in again), again
        assert fallback_kinds == [ERROR]  # made again once, then written in C
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("dxtrack_changing_module", None)


def test_errors_with_the_same_text_from_other_code_are_kept_apart() -> None:
    def other(text: str) -> None:
        raise ValueError(text)

    def event_other(when: float) -> tuple[Any, ...]:
        try:
            other("boom")
        except ValueError as exc:
            return (ERROR, when, ValueError, "boom", tracebacks.frames(exc.__traceback__), None)
        raise AssertionError("other() raises")

    events = [error_event("boom", None, 1.0), event_other(2.0)] * 3
    lines, fallback_kinds = written(builder(), events)
    assert lines == reference(builder(), events)
    fingerprints = [orjson.loads(line)["fingerprint"] for line in lines]
    assert len(set(fingerprints)) == 2 and fingerprints[0::2] == [fingerprints[0]] * 3
    assert fallback_kinds == [ERROR, ERROR]


def test_through_the_shipper_a_changed_source_file_shows_its_new_line(tmp_path: Path) -> None:
    """The same through a client's builder thread (``Buffers.build_from`` checks the source
    files before each batch the compiled writer builds)."""
    from dxtrack.client import Client
    from dxtrack.config import build_config
    from dxtrack.sinks.memory import MemorySink

    module_file = tmp_path / "dxtrack_changing_module_2.py"
    module_file.write_text("def fail():\n    raise ValueError('x')  # first\n")
    sys.path.insert(0, str(tmp_path))
    records: list[dict[str, Any]] = []
    client = Client()
    client.configure(
        build_config(context="src", stage="test", run_id="r", error_rate_limit=None),
        [(lambda: MemorySink(ERROR, records), False)],
    )
    try:
        module = importlib.import_module("dxtrack_changing_module_2")
        for edit in range(3):
            for _ in range(3):
                try:
                    module.fail()
                except ValueError:
                    client.error_entry()
            assert client.flush(timeout=10)
            module_file.write_text(f"def fail():\n    raise ValueError('x')  # edit {edit}\n")
            stat = module_file.stat()
            os.utime(module_file, (stat.st_atime, stat.st_mtime + 10 * (edit + 1)))
        texts = [r["exception"]["traceback"] for r in sorted(records, key=lambda r: r["seq"])]
        assert len(texts) == 9
        assert all("# first" in text for text in texts[:3])
        assert all("# edit 0" in text for text in texts[3:6])
        assert all("# edit 1" in text for text in texts[6:])
    finally:
        client.close(timeout=5)
        sys.path.remove(str(tmp_path))
        sys.modules.pop("dxtrack_changing_module_2", None)
