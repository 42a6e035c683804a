"""A Ctrl-C (or a ``SystemExit``) that lands while dxtrack builds a record: the program is
interrupted as it would be without dxtrack, the interrupted record is counted as dropped
(``build_failed``), and the records built beside it are kept."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from dxtrack import interrupts, jsonsafe
from dxtrack.counters import Counters
from dxtrack.delivery.buffers import Buffers
from dxtrack.events import METRIC
from dxtrack.log import LogOnce, SdkThread
from dxtrack.records import RecordBuilder
from dxtrack.shaping import Shaping
from tests.capture_programs import run_program


class Interrupting:
    """Metadata whose ``repr`` (called while its record is built) raises ``stop``, once."""

    def __init__(self, stop: type[BaseException]) -> None:
        self.stop = stop
        self.fired = False

    def __repr__(self) -> str:
        if not self.fired:
            self.fired = True
            raise self.stop()
        return "calm"


def buffers_with(
    events: list[tuple[Any, dict[str, Any]]], **options: Any
) -> tuple[Buffers, Counters]:
    """Buffers holding a metric event for each (name, metadata)."""
    builder = RecordBuilder(
        context="c",
        stage="prod",
        run_id="r",
        default_metadata={},
        producer_id="p" * 32,
        host="h",
        **options,
    )
    stats = Counters()
    buffers = Buffers(builder, stats, LogOnce())
    for name, md in events:
        buffers.events.extend((METRIC, time.time(), name, 1.0, md, None))
    return buffers, stats


def names(lines: list[bytes]) -> list[str]:
    return [json.loads(line)["metric_name"] for line in lines]


@pytest.mark.parametrize("stop", [KeyboardInterrupt, SystemExit])
def test_an_interrupted_repr_leaves_a_placeholder_and_is_raised_once_queued(
    stop: type[BaseException],
) -> None:
    """On a caller's thread (here the main one): every record is built, the interrupted value
    says so, and ``raise_interrupt`` raises the interrupt, once."""
    buffers, stats = buffers_with([("m0", {}), ("m1", {"x": Interrupting(stop)}), ("m2", {})])
    taken, lines = buffers.take()
    assert taken == 3
    assert names(lines[METRIC]) == ["m0", "m1", "m2"]
    placeholder = json.loads(lines[METRIC][1])["metadata"]["x"]
    assert placeholder == f"<Interrupting (repr failed: {stop.__name__})>"
    assert stats.snapshot()["dropped"] == 0
    with pytest.raises(stop):
        buffers.raise_interrupt()
    buffers.raise_interrupt()  # raised once only


@pytest.mark.parametrize("stop", [KeyboardInterrupt, SystemExit])
def test_a_record_whose_build_is_interrupted_is_counted_and_the_rest_are_built(
    stop: type[BaseException],
) -> None:
    """A ``before_send`` hook interrupted (a Ctrl-C, or the hook's own ``sys.exit()``; its
    failures leave the record as it was, an interrupt does not): that record is
    ``build_failed``, the others are built, and the interrupt is raised once they are
    queued."""
    buffers, stats = buffers_with(
        [("m0", {}), ("m1", {}), ("m2", {})], shaping=Shaping(before_send=hook_stopping(stop))
    )
    taken, lines = buffers.take()
    assert taken == 3 and names(lines[METRIC]) == ["m0", "m2"]
    assert stats.snapshot()["dropped.build_failed"] == 1
    with pytest.raises(stop):
        buffers.raise_interrupt()


def test_on_the_builder_thread_an_interrupted_hook_leaves_the_record_as_it_was() -> None:
    """The builder thread can't be interrupted: a hook raising one has failed, as when it
    raises anything else, and its record is sent unchanged."""
    buffers, stats = buffers_with(
        [("m0", {}), ("m1", {})], shaping=Shaping(before_send=hook_stopping(SystemExit))
    )
    built: list[list[str]] = []
    thread = SdkThread(target=lambda: built.append(names(buffers.take()[1][METRIC])))
    thread.start()
    thread.join(30)
    assert built == [["m0", "m1"]] and stats.snapshot()["dropped"] == 0


def hook_stopping(stop: type[BaseException]) -> Any:
    """A ``before_send`` hook that raises ``stop`` at its second record."""
    calls = [0]

    def hook(record: dict[str, Any]) -> dict[str, Any]:
        calls[0] += 1
        if calls[0] == 2:
            raise stop
        return record

    return hook


def test_dxtracks_own_threads_build_on_and_leave_nothing_to_raise() -> None:
    """The builder thread never raises an interrupt (nothing would catch it there), nor leaves
    it for another thread."""
    buffers, _ = buffers_with([("m0", {"x": Interrupting(KeyboardInterrupt)}), ("m1", {})])
    outcome: list[object] = []

    def build() -> None:
        taken, lines = buffers.take()
        buffers.raise_interrupt()
        outcome.append((taken, names(lines[METRIC])))

    thread = SdkThread(target=build)
    thread.start()
    thread.join(30)
    assert outcome == [(2, ["m0", "m1"])]
    buffers.raise_interrupt()  # the main thread has nothing to raise either


def test_outside_a_build_an_interrupt_is_raised_at_once() -> None:
    """JSON safety used elsewhere (checking ``default_metadata`` at ``configure()``...) keeps
    nothing for later: the interrupt is raised where it lands."""
    with pytest.raises(KeyboardInterrupt):
        jsonsafe.dumps({"x": Interrupting(KeyboardInterrupt)})
    interrupts.raise_kept()  # nothing kept


CTRL_C_IN_REPR = """
    import json, os, signal
    import dxtrack

    class CtrlC:
        fired = False
        def __repr__(self):
            if not CtrlC.fired:
                CtrlC.fired = True
                os.kill(os.getpid(), signal.SIGINT)  # a real Ctrl-C, handled in this frame
                for _ in range(100_000):
                    pass
            return "calm"

    dxtrack.configure(context="job", stage="test")
    try:
        dxtrack.errors([ValueError("first"), KeyError("second")], metadata={"who": CtrlC()})
        print("not interrupted")
    except KeyboardInterrupt:
        print("interrupted")
    dxtrack.metric("after", 1)
    dxtrack.flush()
    print(json.dumps(dxtrack.stats()))
"""


def test_a_real_ctrl_c_while_a_record_is_built_interrupts_the_program(tmp_path: Path) -> None:
    """Stage ``test`` builds on the caller's thread: the SIGINT's KeyboardInterrupt reaches
    the program once both records of the call are written (the interrupted value says so), and
    the program goes on tracking."""
    outcome = run_program(tmp_path, CTRL_C_IN_REPR)
    assert outcome.returncode == 0, outcome.describe()
    printed = outcome.stdout.splitlines()
    assert printed[0] == "interrupted", outcome.describe()
    stats = json.loads(printed[1])
    assert stats["delivered"] == 3 and stats["dropped"] == 0
    assert [e["exception"]["type"] for e in outcome.errors] == ["ValueError", "KeyError"]
    who = [e["metadata"]["who"] for e in outcome.errors]
    assert who == ["<CtrlC (repr failed: KeyboardInterrupt)>", "calm"]
    assert [m["metric_name"] for m in outcome.metrics] == ["after"]
