"""A route replaying its spool with more than one sender: one segment at a time, every spooled
line delivered once, and the spool empty afterwards, however the senders interleave."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
import pytest

from dxtrack.counters import Counters
from dxtrack.delivery import route as route_module
from dxtrack.delivery.route import Route
from dxtrack.delivery.spool import Spool
from dxtrack.log import LogOnce, SdkThread
from dxtrack.sinks.firehose import FIREHOSE_LIMITS


class CountingSink:
    """A durable sink that keeps every line it is sent."""

    name = destination = "counting"
    kinds = frozenset(("metric",))
    limits = FIREHOSE_LIMITS  # a replay call holds REPLAY_CALL_BYTES: one segment takes several
    durable = True

    def __init__(self) -> None:
        self.lines: list[int] = []
        self._lock = threading.Lock()

    def start(self) -> None:
        """Nothing to prepare."""

    def send(self, items: Sequence[bytes]) -> Sequence[int]:
        with self._lock:
            for item in items:
                self.lines += [orjson.loads(raw)["n"] for raw in item.splitlines()]
        return ()

    def close(self) -> None:
        """Nothing to release."""


def spooled_segments(directory: Path, segments: int, per_segment: int) -> None:
    """``segments`` closed segments of ``per_segment`` lines (of 420 bytes) each, numbered
    from 0."""
    writer = Spool(directory, Counters(), LogOnce())
    n = 0
    for _ in range(segments):
        lines = [orjson.dumps({"n": n + i, "pad": "x" * 400}) + b"\n" for i in range(per_segment)]
        writer.append(b"".join(lines), per_segment)
        writer.close_segment()
        n += per_segment
    writer.close()


def new_route(
    root: Path, stats: Counters, sink: CountingSink | None = None
) -> tuple[Route, CountingSink]:
    sink = sink or CountingSink()
    route = Route(
        lambda: sink,
        inline=False,
        make_spool=lambda destination: Spool(root / destination, stats, LogOnce()),
        max_pending_bytes=1 << 20,
        retry_budget=30.0,
        stats=stats,
        log_once=LogOnce(),
    )
    return route, sink


def run_senders(route: Route, stats: Counters, senders: int = 2) -> None:
    """Run ``senders`` sender loops, as dxtrack's own threads, until the route is quiet."""
    finished = threading.Event()

    def sender() -> None:
        while not finished.is_set():
            now = time.monotonic()
            route.refill_replay(now)
            call = route.next_call(now)
            if call is not None:
                route.settle(call, route.send(call.items))
            elif route.quiet(0.0):
                finished.set()

    threads = [SdkThread(target=sender, daemon=True) for _ in range(senders)]
    for thread in threads:
        thread.start()
    stuck = not finished.wait(60)
    finished.set()
    held = route.claim.name if route.claim else None
    assert not stuck, f"still busy after 60 s: claim {held}, {stats.snapshot()}"


def test_a_second_sender_claims_nothing_while_the_first_prepares_its_claim(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first sender has claimed a segment and is packing it when the second looks for
    work: the second takes no other segment (two claims at once would share one count of
    items left, release the wrong one early, and send its lines again)."""
    spooled_segments(tmp_path / "counting", segments=2, per_segment=100)
    stats = Counters()
    route, _ = new_route(tmp_path, stats)
    packing = threading.Event()
    go_on = threading.Event()
    real_pack = route_module.pack
    packed: list[str] = []

    def slow_pack(*args: Any, **kwargs: Any) -> Any:
        packed.append(threading.current_thread().name)
        if threading.current_thread().name == "first":
            packing.set()
            go_on.wait(10)
        return real_pack(*args, **kwargs)

    monkeypatch.setattr(route_module, "pack", slow_pack)
    first = threading.Thread(target=route.refill_replay, args=(time.monotonic(),), name="first")
    first.start()
    assert packing.wait(10)
    route.refill_replay(time.monotonic())  # the second sender, meanwhile
    go_on.set()
    first.join(10)
    assert packed == ["first"], "a second segment was claimed while the first was being packed"
    assert stats.snapshot()["replayed"] == 100
    assert route.claim is not None and len(route.claim.lines) == 100


def test_two_senders_replay_every_segment_once_and_empty_the_spool(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two sender threads replay 12 segments of 3 calls each, packing slowed down so that they
    interleave there: every line is sent once, and the spool is empty."""
    spooled_segments(tmp_path / "counting", segments=12, per_segment=3_600)
    stats = Counters()
    route, sink = new_route(tmp_path, stats)
    real_pack = route_module.pack

    def slow_pack(*args: Any, **kwargs: Any) -> Any:
        time.sleep(0.002)  # another sender gets the GIL here, as under load
        return real_pack(*args, **kwargs)

    monkeypatch.setattr(route_module, "pack", slow_pack)
    run_senders(route, stats)
    copies = Counter(sink.lines)
    assert sorted(copies) == list(range(43_200))
    assert max(copies.values()) == 1, f"{sum(c - 1 for c in copies.values())} lines sent twice"
    assert stats.snapshot()["replayed"] == 43_200
    assert list((tmp_path / "counting").iterdir()) == []


class ExitingOnceSink(CountingSink):
    """Raises SystemExit from its first send (a sink, or code it calls, that exits)."""

    exited = False

    def send(self, items: Sequence[bytes]) -> Sequence[int]:
        if not self.exited:
            self.exited = True
            raise SystemExit(3)
        return super().send(items)


def test_an_interrupt_out_of_a_sink_on_a_sender_fails_that_call_only(tmp_path: Path) -> None:
    """On dxtrack's own threads a SystemExit from a sink fails its call like any other error:
    the call is settled (else it would stay in flight for good, and its segment claimed), and
    the next try delivers its lines, once each."""
    spooled_segments(tmp_path / "counting", segments=2, per_segment=1_000)
    stats = Counters()
    route, sink = new_route(tmp_path, stats, ExitingOnceSink())
    run_senders(route, stats, senders=1)
    assert sink.exited
    assert sorted(sink.lines) == list(range(2_000))
    assert stats.snapshot()["retried"] > 0
    assert list((tmp_path / "counting").iterdir()) == []
