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
    says so, and ``raise_kept`` raises the interrupt, once."""
    buffers, stats = buffers_with([("m0", {}), ("m1", {"x": Interrupting(stop)}), ("m2", {})])
    taken, lines = buffers.take()
    assert taken == 3
    assert names(lines[METRIC]) == ["m0", "m1", "m2"]
    placeholder = json.loads(lines[METRIC][1])["metadata"]["x"]
    assert placeholder == f"<Interrupting (repr failed: {stop.__name__})>"
    assert stats.snapshot()["dropped"] == 0
    with pytest.raises(stop):
        interrupts.raise_kept()
    interrupts.raise_kept()  # raised once only


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
        interrupts.raise_kept()


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
        interrupts.raise_kept()
        outcome.append((taken, names(lines[METRIC])))

    thread = SdkThread(target=build)
    thread.start()
    thread.join(30)
    assert outcome == [(2, ["m0", "m1"])]
    interrupts.raise_kept()  # the main thread has nothing to raise either


def test_outside_a_build_an_interrupt_is_raised_at_once() -> None:
    """JSON safety used elsewhere (checking ``default_metadata`` at ``configure()``...) keeps
    nothing for later: the interrupt is raised where it lands."""
    with pytest.raises(KeyboardInterrupt):
        jsonsafe.dumps({"x": Interrupting(KeyboardInterrupt)})
    interrupts.raise_kept()  # nothing kept


CTRL_C_ONCE = """
    import os, signal

    # Python's own Ctrl-C handler, as in a terminal: a shell ignores SIGINT in what it starts
    # in the background (CI started with &), and Python then installs none
    signal.signal(signal.SIGINT, signal.default_int_handler)

    def ctrl_c_once(holder):
        if not holder.fired:
            holder.fired = True
            os.kill(os.getpid(), signal.SIGINT)  # a real Ctrl-C, handled in this frame
            for _ in range(100_000):
                pass
"""

CTRL_C_IN_REPR = """
    import json
    import dxtrack

    class CtrlC:
        fired = False
        def __repr__(self):
            ctrl_c_once(CtrlC)
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
    outcome = run_program(tmp_path, CTRL_C_ONCE, CTRL_C_IN_REPR)
    assert outcome.returncode == 0, outcome.describe()
    printed = outcome.stdout.splitlines()
    assert printed[0] == "interrupted", outcome.describe()
    stats = json.loads(printed[1])
    assert stats["delivered"] == 3 and stats["dropped"] == 0
    assert [e["exception"]["type"] for e in outcome.errors] == ["ValueError", "KeyError"]
    who = [e["metadata"]["who"] for e in outcome.errors]
    assert who == ["<CtrlC (repr failed: KeyboardInterrupt)>", "calm"]
    assert [m["metric_name"] for m in outcome.metrics] == ["after"]


DEAD_AWS = {
    "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
    "AWS_ACCESS_KEY_ID": "x",
    "AWS_SECRET_ACCESS_KEY": "y",
    "AWS_DEFAULT_REGION": "eu-west-1",
}

CTRL_C_WHILE_SHUTDOWN_BUILDS = """
    import json, os, signal, sys, threading
    import dxtrack

    dxtrack.configure(context="job", stage="dev", spool_dir="spool", flush_interval=600,
                      exit_timeout=5, handle_sigterm=False, max_buffer=1_000_000)
    for i in range(400_000):
        dxtrack.metric("m", 1.0, {"tags": ["a", "b"]})  # a list: scrubbed in Python
    started = threading.Event()

    def ctrl_c():
        started.wait()
        os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=ctrl_c).start()
    original = dxtrack.delivery.buffers.Buffers.take

    def take(self, *args, **kwargs):  # the Ctrl-C arrives as the last build starts
        started.set()
        return original(self, *args, **kwargs)

    dxtrack.delivery.buffers.Buffers.take = take
    try:
        dxtrack.shutdown(timeout=0)
        print("not interrupted")
    except KeyboardInterrupt:
        print("interrupted")
    print(json.dumps(dxtrack.stats()))
"""


def test_a_real_ctrl_c_while_shutdown_builds_spools_everything_then_interrupts(
    tmp_path: Path,
) -> None:
    """A shutdown on the main thread builds what the builder had not: a SIGINT then (in the
    Python the compiled writer calls for each record, or as its loop ends) reaches the program
    once every record is on disk."""
    outcome = run_program(tmp_path, CTRL_C_ONCE, CTRL_C_WHILE_SHUTDOWN_BUILDS, env=DEAD_AWS)
    printed = outcome.stdout.splitlines()
    assert printed[0] == "interrupted", outcome.describe()
    stats = json.loads(printed[1])
    assert stats["spooled"] + stats["delivered"] == 400_000 and stats["dropped"] == 0


CTRL_C_IN_STR_AT_CAPTURE = """
    import dxtrack

    class JobError(Exception):
        fired = False
        def __str__(self):
            ctrl_c_once(JobError)
            return "job failed"

    dxtrack.configure(context="job", stage="dev", spool_dir="spool", exit_timeout=0.5,
                      handle_sigterm=False)
    try:
        try:
            raise JobError()
        except JobError:
            dxtrack.error()
        print("not interrupted")
    except KeyboardInterrupt:
        print("interrupted")
"""


def test_a_real_ctrl_c_in_an_exceptions_str_at_capture_interrupts_at_once(
    tmp_path: Path,
) -> None:
    """``error()`` reads the exception's text on the caller's thread (compiled or not): a Ctrl-C
    landing there is raised by ``error()``, as without dxtrack."""
    outcome = run_program(tmp_path, CTRL_C_ONCE, CTRL_C_IN_STR_AT_CAPTURE, env=DEAD_AWS)
    assert outcome.stdout.splitlines()[0] == "interrupted", outcome.describe()


@pytest.mark.parametrize("stop", ["SystemExit", "KeyboardInterrupt"])
def test_a_papertrail_format_raising_an_interrupt_leaves_the_sender_running(
    tmp_path: Path, stop: str
) -> None:
    """``papertrail_format`` runs on a sender thread: an interrupt it raises is its failure
    (the record goes out in the default format), and the thread goes on with the next."""
    source = f"""
        import json, socket
        import dxtrack

        server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        server.bind(("127.0.0.1", 0))
        server.settimeout(30)
        calls = [0]

        def fmt(record):
            calls[0] += 1
            if calls[0] == 1:
                raise {stop}()
            return "line " + record["metric_name"]

        dxtrack.configure(context="job", stage="test", handle_sigterm=False,
                          papertrail_hostport="127.0.0.1:%d" % server.getsockname()[1],
                          papertrail_transport="udp", papertrail_format=fmt)
        got = []
        for i in range(3):
            dxtrack.metric(f"m{{i}}", 1)
            got.append(server.recv(65535).decode())
        print(json.dumps({{"got": got, "flushed": dxtrack.flush(timeout=30)}}))
    """
    outcome = run_program(tmp_path, source)
    assert outcome.returncode == 0, outcome.describe()
    printed = json.loads(outcome.stdout)
    got = [line.strip() for line in printed["got"]]
    assert f"[papertrail_format failed: {stop}]" in got[0]
    assert got[1].endswith("line m1") and got[2].endswith("line m2")
    assert printed["flushed"] is True


CTRL_C_WHILE_AN_INLINE_CALL_WAITS = """
    import json, os, signal, socket, threading, time
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)  # accepts, never answers
    os.environ["AWS_ENDPOINT_URL"] = "http://127.0.0.1:%d" % server.getsockname()[1]
    import dxtrack

    dxtrack.configure(context="job", stage="dev", use_async_requests=False, spool_dir="spool",
                      exit_timeout=1, handle_sigterm=False)
    threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGINT)).start()
    started = time.monotonic()
    try:
        dxtrack.metric("waits", 1)  # delivered on this thread: waits on the endpoint
        print("not interrupted")
    except KeyboardInterrupt:
        print("interrupted after %.1f s" % (time.monotonic() - started))
    print(json.dumps(dxtrack.stats()))
"""


def test_a_ctrl_c_while_an_inline_call_waits_puts_its_record_on_disk(tmp_path: Path) -> None:
    """``use_async_requests=False`` sends on the caller's thread: a Ctrl-C while the call waits
    on an endpoint that never answers reaches the program, and the record is spooled."""
    outcome = run_program(tmp_path, CTRL_C_ONCE, CTRL_C_WHILE_AN_INLINE_CALL_WAITS, env=DEAD_AWS)
    printed = outcome.stdout.splitlines()
    assert printed[0].startswith("interrupted after"), outcome.describe()
    stats = json.loads(printed[1])
    assert stats["spooled"] == 1 and stats["dropped"] == 0 and stats["delivered"] == 0


CTRL_C_IN_CLOSE = """
    import json
    import dxtrack
    from dxtrack import client

    dxtrack.configure(context="job", stage="dev", spool_dir="spool", flush_interval=600,
                      exit_timeout=5, handle_sigterm=False, max_buffer=100_000)
    for i in range(20_000):
        dxtrack.metric("before", i)
    original = client.Client.WHERE

    class Closing:
        fired = False
        started = False

    def interrupted(self, *args):  # its first call in close(): a real Ctrl-C there
        if Closing.started:
            ctrl_c_once(Closing)
        original(self, *args)

    client.Client.WHERE = interrupted
    Closing.started = True
    try:
        dxtrack.shutdown(timeout=0)
        print("not interrupted")
    except KeyboardInterrupt:
        print("interrupted")
    for i in range(50):
        dxtrack.metric("after", i)
    print(json.dumps(dxtrack.stats()))
"""


@pytest.mark.parametrize(
    "where",
    [
        "_unconfigure",  # close() has taken the shipper, dxtrack is still configured
        "_set_fast_path",  # dxtrack is unconfigured, the shipper not yet closed
    ],
)
def test_a_real_ctrl_c_as_close_takes_the_shipper_loses_nothing(tmp_path: Path, where: str) -> None:
    """A Ctrl-C in ``close()`` as it takes the shipper away from the tracking calls (nothing
    would close it after that): the shipper is closed at once with every record on disk, the
    interrupt reaches the program, and dxtrack is unconfigured, so later calls are counted as
    ``not_configured`` rather than queued where nothing ships them."""
    program = CTRL_C_IN_CLOSE.replace("WHERE", where)
    outcome = run_program(tmp_path, CTRL_C_ONCE, program, env=DEAD_AWS)
    printed = outcome.stdout.splitlines()
    assert printed[0] == "interrupted", outcome.describe()
    stats = json.loads(printed[1])
    assert stats["spooled"] + stats["delivered"] == 20_000, stats
    assert stats["dropped"] == stats["dropped.not_configured"] == 50, stats
