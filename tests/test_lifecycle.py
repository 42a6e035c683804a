"""End to end: the life of a producer process (SIGTERM, kill -9, restarts, reconfiguration,
multiprocessing, fork) against Firehose on a moto server in another process, reached through a
proxy that the tests switch off (``refuse``) or make hang (``blackhole``), and the safety of the
disk spool. Each test counts what landed in S3 and what is in the spool, and prints it.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import socket
import stat
import struct
import termios
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

import dxtrack
from tests.lifecycle import (
    REGION,
    STAGE,
    Child,
    Lake,
    NewObjects,
    Proxy,
    Runner,
    all_files,
    outage,
    read_spool,
    seqs_of,
    tally,
    wait_until,
)

if TYPE_CHECKING:
    from tests.aws import Streams

pytestmark = [pytest.mark.lifecycle, pytest.mark.timeout(90)]

FOREIGN_UID = 65534  # nobody
REFUSAL = "refusing the spool directory"


# ---- child programs --------------------------------------------------------------------------

TRACK_AND_WAIT = """
import dxtrack
dxtrack.configure()
for i in range(int(sys.argv[1])):
    dxtrack.metric(sys.argv[2], i)
say(f"tracked {sys.argv[1]} at {time.monotonic():.6f}")
while True:
    time.sleep(1)
"""

TRACK_AND_EXIT = """
import dxtrack
dxtrack.configure()
for i in range(int(sys.argv[1])):
    dxtrack.metric(sys.argv[2], i)
say(f"tracked {sys.argv[1]}")
"""

CONFIGURE_AND_FLUSH = """
import dxtrack
dxtrack.configure()
for i in range(int(sys.argv[1]) if len(sys.argv) > 1 else 0):
    dxtrack.metric(sys.argv[2], i)
say("flushed " + json.dumps(dxtrack.flush(30)))
say("stats " + json.dumps(dxtrack.stats()))
"""

STEADY_LOAD = """
import dxtrack
dxtrack.configure()
say(f"ready at {time.monotonic():.6f}")
steady_load(20_000)
"""


def value_of(record: dict[str, Any]) -> int:
    return int(record["value"])


def named(name: str) -> Callable[[dict[str, Any]], bool]:
    return lambda record: record.get("metric_name") == name


# ---- 1-4: SIGTERM ----------------------------------------------------------------------------


def test_sigterm_default_disposition_delivers_everything(
    runner: Runner, lake: Lake, spool_dir: Path
) -> None:
    """SIGTERM right after 50,000 metrics, nothing installed by the app: the process still dies
    of SIGTERM, and every record is in S3 (or in the spool), none twice."""
    child = runner.start(TRACK_AND_WAIT, args=("50000", "sigterm"))
    child.wait_for("tracked", 20)
    sent = time.monotonic()
    child.signal(signal.SIGTERM)
    code = child.wait(15)
    scan = read_spool(spool_dir)
    result = tally(
        "sigterm-up",
        50_000,
        lake.records("metric"),
        scan.records,
        exit_s=round(time.monotonic() - sent, 2),
        returncode=code,
    )
    assert code == -signal.SIGTERM, child.describe()
    assert result.lost == 0, "records tracked before SIGTERM were lost"
    assert result.gaps == 0
    assert result.copies_beyond_one == 0, "a record is in S3 (or the spool) twice"


def test_sigterm_during_outage_spools_and_the_next_start_delivers(
    runner: Runner, proxy: Proxy, lake: Lake, spool_dir: Path
) -> None:
    """SIGTERM 3 s into an outage: all 50,000 are spooled before the process dies of SIGTERM;
    the next configure() with Firehose back delivers them, exactly once, and empties the spool."""
    proxy.set_mode("refuse")
    child = runner.start(
        TRACK_AND_WAIT, env={"DXTRACK_EXIT_TIMEOUT": "2"}, args=("50000", "outage.sigterm")
    )
    tracked_at = float(child.wait_for("tracked", 20).split()[-1])
    wait_until(lambda: proxy.counts["refused"] > 0, 10, "the child to meet the outage")
    time.sleep(max(tracked_at + 3 - time.monotonic(), 0))  # the scenario: 3 s into it
    child.signal(signal.SIGTERM)
    code = child.wait(15)
    spooled = tally(
        "sigterm-outage-dead",
        50_000,
        lake.records("metric"),
        read_spool(spool_dir).records,
        returncode=code,
        refused=proxy.counts["refused"],
    )
    assert code == -signal.SIGTERM, child.describe()
    assert spooled.lost == 0, "records were neither delivered nor spooled when SIGTERM came"

    proxy.set_mode("up")
    second = runner.run(CONFIGURE_AND_FLUSH)
    scan = read_spool(spool_dir)
    result = tally(
        "sigterm-outage-restart",
        50_000,
        lake.records("metric"),
        scan.records,
        flushed=second.value("flushed"),
        replayed=second.value("stats").get("replayed"),
    )
    assert result.landed_unique == 50_000, "the spooled records were not all delivered"
    assert result.landed_duplicates < 50, "more than 0.1% duplicates"
    assert result.gaps == 0
    assert scan.files == [], "the spool is empty once everything was delivered"


@pytest.mark.parametrize("app_exit", ["flag", "sys.exit(3)"])
def test_application_sigterm_handler_is_chained(
    runner: Runner, lake: Lake, spool_dir: Path, app_exit: str
) -> None:
    """The application's own SIGTERM handler (installed before configure()) still runs, once,
    and decides the exit status; nothing tracked is lost."""
    code = """
    import dxtrack
    stop = threading.Event()

    def on_term(signum, frame):
        say("app-handler ran")
        if sys.argv[1] == "sys.exit(3)":
            sys.exit(3)
        stop.set()

    signal.signal(signal.SIGTERM, on_term)
    dxtrack.configure()
    for i in range(20_000):
        dxtrack.metric("app.handler", i)
    say("tracked")
    while not stop.wait(0.05):
        pass
    say("main loop done")
    """
    child = runner.start(code, args=(app_exit,))
    child.wait_for("tracked", 20)
    child.signal(signal.SIGTERM)
    status = child.wait(15)
    result = tally(
        f"app-handler-{app_exit}",
        20_000,
        lake.records("metric"),
        read_spool(spool_dir).records,
        returncode=status,
    )
    assert child.lines("app-handler ran") == ["app-handler ran"], child.describe()
    if app_exit == "flag":
        assert status == 0, child.describe()
        assert child.lines("main loop done"), "the application's main loop went on to its end"
    else:
        assert status == 3, child.describe()
    assert result.lost == 0 and result.copies_beyond_one == 0


SIGTERM_SETTING = """
import dxtrack
variant = sys.argv[1]
if variant == "argument":
    dxtrack.configure(handle_sigterm=False)
elif variant == "non-main thread":
    problems = []

    def configure():
        try:
            dxtrack.configure()
        except BaseException as exc:
            problems.append(repr(exc))

    thread = threading.Thread(target=configure)
    thread.start()
    thread.join()
    say("thread-problems " + json.dumps(problems))
else:
    dxtrack.configure()
handler = signal.getsignal(signal.SIGTERM)
say("handler " + json.dumps("SIG_DFL" if handler == signal.SIG_DFL else repr(handler)))
for i in range(100):
    dxtrack.metric("sigterm.setting", i)
say("flushed " + json.dumps(dxtrack.flush(30)))
say("ready")
while True:
    time.sleep(1)
"""


@pytest.mark.parametrize("variant", ["argument", "environment", "non-main thread", "default"])
def test_handle_sigterm_setting(runner: Runner, lake: Lake, variant: str) -> None:
    """handle_sigterm=False (or DXTRACK_HANDLE_SIGTERM=false), or a configure() outside the main
    thread: SIGTERM keeps its default disposition. By default, in the main thread, dxtrack
    installs a handler (and the process still ends as killed by SIGTERM)."""
    env = {"DXTRACK_HANDLE_SIGTERM": "false"} if variant == "environment" else {}
    child = runner.start(SIGTERM_SETTING, env=dict(env), args=(variant,))
    child.wait_for("ready", 20)
    handler = child.value("handler")
    child.signal(signal.SIGTERM)
    status = child.wait(15)
    tally(f"handle-sigterm-{variant}", 100, lake.records("metric"), handler=handler)
    if variant == "non-main thread":
        assert child.value("thread-problems") == [], "configure() raised outside the main thread"
    if variant == "default":
        assert handler not in ("SIG_DFL", "<Handlers.SIG_IGN: 1>", "None"), handler
    else:
        assert handler == "SIG_DFL", f"dxtrack installed a SIGTERM handler: {handler}"
    assert child.value("flushed") is True
    assert status == -signal.SIGTERM, child.describe()
    assert sorted(value_of(r) for r in lake.records("metric")) == list(range(100))


# ---- 5-6: kill -9 under steady load ----------------------------------------------------------


def kill_9_after(child: Child, seconds: float) -> tuple[int, int, int, float]:
    """Let the child run ``seconds`` past "ready", then kill -9 it. Returns the records tracked
    at least 2 s before the kill, all records tracked, its RSS (KiB) just before, and the time
    of the kill."""
    ready_at = float(child.wait_for("ready", 20).split()[-1])
    child.wait_for(
        "tracked", seconds + 10, accept=lambda line: float(line.split()[-1]) >= ready_at + seconds
    )
    rss = child.rss_kib()
    killed_at = time.monotonic()
    child.signal(signal.SIGKILL)
    assert child.wait(10) == -signal.SIGKILL
    progress = [
        (int(p[1]), float(p[3])) for p in (line.split() for line in child.lines("tracked "))
    ]
    safe = max((n for n, at in progress if at <= killed_at - 2.0), default=0)
    return safe, max(n for n, _ in progress), rss, killed_at


@pytest.mark.parametrize(
    ("mode", "compression"), [("refuse", "none"), ("blackhole", "none"), ("refuse", "gzip")]
)
def test_kill_9_during_outage_keeps_what_was_tracked_2s_before(
    runner: Runner, proxy: Proxy, lake: Lake, spool_dir: Path, mode: str, compression: str
) -> None:
    """~20,000 metrics a second while Firehose refuses connections (or never answers), then
    kill -9 after ~4 s: every record tracked at least 2 s before the kill is in the spool
    (compressed, with gzip), and memory stayed bounded."""
    proxy.set_mode(mode)
    child = runner.start(STEADY_LOAD, env={"DXTRACK_COMPRESSION": compression})
    safe, tracked, rss, _ = kill_9_after(child, 4.0)
    scan = read_spool(spool_dir)
    landed = lake.records("metric")
    result = tally(
        f"kill9-outage-{mode}-{compression}",
        safe,
        landed,
        scan.records,
        select=lambda r: r["seq"] <= safe,
        tracked_total=tracked,
        spool_lines=scan.lines,
        torn=len(scan.torn),
        rss_mib=round(rss / 1024, 1),
        proxy=dict(proxy.counts),
    )
    assert proxy.counts["refused"] + proxy.counts["blackholed"] > 0, "the child met no outage"
    assert landed == [], "the outage let records through"
    assert safe >= 20_000, f"the child tracked only {safe} records in the first 2 s"
    missing = set(range(1, safe + 1)) - set().union(*seqs_of(scan.records).values())
    assert not missing, f"{len(missing)} records tracked >= 2 s before kill -9 are not spooled"
    assert result.lost == 0
    assert rss < 400 * 1024, f"resident memory {rss / 1024:.0f} MiB"
    suffix = ".jsonl" if compression == "none" else ".jsonl.gz"
    assert scan.files and all(path.name.endswith(suffix) for path in scan.files)


def test_kill_9_with_firehose_up_keeps_what_was_tracked_2s_before(
    runner: Runner, lake: Lake, spool_dir: Path
) -> None:
    """~20,000 metrics a second with Firehose up, then kill -9 after ~4 s: every record tracked
    at least 2 s before the kill is in S3 or in the spool."""
    child = runner.start(STEADY_LOAD)
    safe, tracked, rss, _ = kill_9_after(child, 4.0)
    scan = read_spool(spool_dir)
    landed = lake.records("metric")
    result = tally(
        "kill9-up",
        safe,
        landed,
        scan.records,
        select=lambda r: r["seq"] <= safe,
        tracked_total=tracked,
        landed_total=len(landed),
        spool_lines=scan.lines,
        rss_mib=round(rss / 1024, 1),
    )
    assert safe >= 20_000, f"the child tracked only {safe} records in the first 2 s"
    present = set().union(*seqs_of([*landed, *scan.records]).values())
    missing = set(range(1, safe + 1)) - present
    assert not missing, f"{len(missing)} records tracked >= 2 s before kill -9 are nowhere"
    assert result.lost == 0


# ---- 7: restarts during an outage ------------------------------------------------------------


def test_kill_9_restarts_switching_compression_during_an_outage_then_recovery(
    runner: Runner, proxy: Proxy, lake: Lake, spool_dir: Path
) -> None:
    """Three runs in turn during an outage, each with another ``compression`` and killed -9
    after ~3 s at 20,000 metrics a second: the spool holds each run's records in segments of
    its own codec (everything tracked 2 s before each kill); then one run with gzip delivers
    every spooled record, whatever codec it was spooled with, and empties the spool."""
    safe_by_producer: dict[str, int] = {}
    for compression, mode in (("zstd", "refuse"), ("gzip", "blackhole"), ("none", "refuse")):
        proxy.set_mode(mode)
        child = runner.start(STEADY_LOAD, env={"DXTRACK_COMPRESSION": compression})
        safe, _, _, _ = kill_9_after(child, 3.0)
        scan = read_spool(spool_dir)
        (producer,) = set(seqs_of(scan.records)) - set(safe_by_producer)
        safe_by_producer[producer] = safe
        suffix = {"none": ".jsonl", "gzip": ".jsonl.gz", "zstd": ".jsonl.zst"}[compression]
        assert any(path.name.endswith(suffix) for path in scan.files)
        spooled = seqs_of(scan.records)
        for who, tracked in safe_by_producer.items():
            missing = set(range(1, tracked + 1)) - spooled.get(who, set())
            assert not missing, f"{len(missing)} records tracked >= 2 s before a kill not spooled"
    assert lake.records() == [], "the outage let records through"
    before = read_spool(spool_dir)
    spooled_ids = {record["id"] for record in before.records}
    proxy.set_mode("up")
    recovery = runner.run(CONFIGURE_AND_FLUSH, env={"DXTRACK_COMPRESSION": "gzip"}, timeout=120)
    landed = lake.records("metric")
    result = tally("codec-switching-restarts", len(spooled_ids), landed, [])
    assert spooled_ids <= {record["id"] for record in landed}, "spooled records never landed"
    copies = Counter(record["id"] for record in before.records)
    assert result.landed_duplicates == 0, (
        f"{sum(n - 1 for n in copies.values())} records were in the spool twice "
        f"({sorted({p.name for p in before.files})}); recovery: {recovery.describe()}"
    )
    landed_seqs = seqs_of(landed)
    for who, tracked in safe_by_producer.items():
        assert set(range(1, tracked + 1)) <= landed_seqs.get(who, set())
    assert read_spool(spool_dir).files == [], "the spool is empty once everything was delivered"


def test_five_restarts_during_outage_then_recovery(
    runner: Runner, proxy: Proxy, lake: Lake, spool_dir: Path
) -> None:
    """Five runs in turn during an outage (each replays the spool at start, fails, exits): the
    spool holds each record once, never a copy; once Firehose is back, one run delivers all
    100,000 and empties the spool."""
    with outage(proxy):
        for run in range(1, 6):
            began = time.monotonic()
            runner.run(
                TRACK_AND_EXIT, env={"DXTRACK_EXIT_TIMEOUT": "1"}, args=("20000", f"restart.{run}")
            )
            took = round(time.monotonic() - began, 2)
            scan = read_spool(spool_dir)
            result = tally(f"restart-{run}", 20_000 * run, lake.records(), scan.records, run_s=took)
            assert result.landed == 0
            assert scan.lines == 20_000 * run, f"after run {run}: {scan.lines} spool lines"
            assert result.spooled_unique == 20_000 * run, "the spool lost or copied records"
    second = runner.run(CONFIGURE_AND_FLUSH)
    scan = read_spool(spool_dir)
    result = tally(
        "restarts-recovered",
        100_000,
        lake.records("metric"),
        scan.records,
        flushed=second.value("flushed"),
    )
    assert result.landed_unique == 100_000
    assert result.landed_duplicates < 100, "more than 0.1% duplicates"
    assert result.gaps == 0
    assert scan.files == [], "the spool is empty once everything was delivered"


# ---- 8: reconfiguring under load -------------------------------------------------------------

RECONFIGURE = """
import dxtrack
dxtrack.configure(run_id="r0")
done = [0, 0, 0, 0]
stop = threading.Event()
start = threading.Barrier(5)


def work(t):
    metric = dxtrack.metric
    start.wait()
    began = time.monotonic()
    i = 0
    while not stop.is_set():
        for _ in range(1_000):  # a burst at full speed
            metric("reconfigure", i, metadata={"call": f"{t}:{i}"})
            i += 1
            done[t] = i
        ahead = began + i / 10_000 - time.monotonic()  # 10,000 a second per thread on average
        if ahead > 0:
            time.sleep(ahead)


threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
for thread in threads:
    thread.start()
start.wait()
time.sleep(0.3)
for run_id in ("r1", "r2"):
    say("stats-before-" + run_id + " " + json.dumps(dxtrack.stats()))
    before = sum(done)
    dxtrack.configure(run_id=run_id)
    say(f"configured {run_id} {before} {sum(done)}")
    time.sleep(0.3)
stop.set()
for thread in threads:
    thread.join()
say("tracked " + json.dumps(done))
say("flushed " + json.dumps(dxtrack.flush(30)))
say("stats " + json.dumps(dxtrack.stats()))
"""


def test_reconfigure_while_four_threads_track(runner: Runner, lake: Lake, spool_dir: Path) -> None:
    """Two configure() calls (new run_ids) while 4 threads track (bursts at full speed, 40,000
    a second in all): every call is delivered once, and nothing is counted as dropped."""
    child = runner.run(RECONFIGURE, timeout=40)
    done = child.value("tracked")
    landed = lake.records("metric")
    stats = child.value("stats")
    result = tally(
        "reconfigure-4-threads",
        sum(done),
        landed,
        read_spool(spool_dir).records,
        flushed=child.value("flushed"),
        stats=stats,
        runs=dict(Counter(r["run_id"] for r in landed)),
        configured=[line.split(" ", 1)[1] for line in child.lines("configured")],
    )
    calls = Counter(r["metadata"]["call"] for r in landed)
    expected = {f"{t}:{i}" for t in range(4) for i in range(done[t])}
    assert set(calls) == expected, f"{len(expected - set(calls))} calls never landed"
    assert max(calls.values()) == 1, "a call landed twice"
    assert result.landed_duplicates == 0 and result.lost == 0
    assert {r["run_id"] for r in landed} == {"r0", "r1", "r2"}
    assert result.gaps == 0, "a producer's sequence has holes"
    for snapshot in (child.value("stats-before-r1"), child.value("stats-before-r2"), stats):
        assert snapshot["dropped"] == 0, snapshot
    assert child.value("flushed") is True


# ---- 9: multiprocessing ----------------------------------------------------------------------

MULTIPROCESSING = """
import multiprocessing
from concurrent.futures import ProcessPoolExecutor


def work(tag):
    import dxtrack

    dxtrack.configure()
    for i in range(1_000):
        dxtrack.metric("mp", i, metadata={"tag": tag})
    return tag


if __name__ == "__main__":
    context = multiprocessing.get_context(sys.argv[1])
    processes = [context.Process(target=work, args=(f"process-{n}",)) for n in range(2)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(60)
        assert process.exitcode == 0, process.exitcode
    pool = context.Pool(2)
    assert sorted(pool.map(work, ["pool-0", "pool-1"])) == ["pool-0", "pool-1"]
    pool.close()
    pool.join()
    with ProcessPoolExecutor(2, mp_context=context) as executor:
        done = sorted(executor.map(work, ["executor-0", "executor-1"]))
    assert done == ["executor-0", "executor-1"], done
    say("done")
"""


@pytest.mark.parametrize("method", ["forkserver", "spawn"])
def test_multiprocessing_children_deliver(runner: Runner, lake: Lake, method: str) -> None:
    """Children started by forkserver or spawn (Process, Pool, ProcessPoolExecutor) configure,
    track 1,000 each and return: all their records land."""
    child = runner.start(MULTIPROCESSING, args=(method,))
    assert child.wait(60) == 0, child.describe()
    landed = lake.records("metric")
    tags = ["process-0", "process-1", "pool-0", "pool-1", "executor-0", "executor-1"]
    by_tag = {
        tag: sorted(value_of(r) for r in landed if r["metadata"]["tag"] == tag) for tag in tags
    }
    result = tally(
        f"multiprocessing-{method}",
        6_000,
        landed,
        per_tag={tag: len(values) for tag, values in by_tag.items()},
    )
    for tag, values in by_tag.items():
        assert values == list(range(1_000)), f"{tag}: {len(values)} of 1,000 landed"
    assert result.landed_duplicates == 0


# ---- 10: a misspelt stream -------------------------------------------------------------------


def test_misspelt_stream_is_spooled_and_delivered_once_corrected(
    runner: Runner, lake: Lake, spool_dir: Path
) -> None:
    """metric_stream="no-such-stream": the records are spooled; the next start with the right
    name (same stage, same endpoint) delivers them to the right stream."""
    code = """
    import dxtrack
    dxtrack.configure(metric_stream="no-such-stream")
    for i in range(1_000):
        dxtrack.metric("misspelt", i)
    say("tracked 1000")
    """
    runner.run(code, env={"DXTRACK_EXIT_TIMEOUT": "2"})
    first = tally("misspelt-spooled", 1_000, lake.records(), read_spool(spool_dir).records)
    assert first.spooled_unique == 1_000, "the records of the misspelt stream were not spooled"
    second = runner.run(CONFIGURE_AND_FLUSH)
    scan = read_spool(spool_dir)
    landed = lake.records("metric")
    result = tally(
        "misspelt-corrected", 1_000, landed, scan.records, flushed=second.value("flushed")
    )
    assert sorted(value_of(r) for r in landed) == list(range(1_000)), "not delivered once each"
    assert result.lost == 0 and result.gaps == 0
    assert scan.files == []


# ---- 11: fork during an outage ---------------------------------------------------------------

FORK_DURING_OUTAGE = """
import dxtrack
dxtrack.configure()
for i in range(2_000):
    dxtrack.metric("parent", i)
say("tracked")
assert sys.stdin.readline().strip() == "fork"
pid = os.fork()
if pid == 0:
    for i in range(100):
        dxtrack.metric("child", i)
    say("child tracked")
    sys.exit(0)
_, status = os.waitpid(pid, 0)
say(f"child-exit {status}")
assert sys.stdin.readline().strip() == "flush"
say("flushed " + json.dumps(dxtrack.flush(30)))
say("stats " + json.dumps(dxtrack.stats()))
"""


def test_forked_child_never_replays_the_parents_spool(
    runner: Runner, proxy: Proxy, lake: Lake, spool_dir: Path
) -> None:
    """The parent spools during an outage and keeps running; a fork()ed child tracks its own 100
    and exits. The parent's records stay in the spool once; when Firehose is back, the parent's
    flush() is True and its records land exactly once; the child's land too."""
    proxy.set_mode("refuse")
    parent = runner.start(FORK_DURING_OUTAGE, env={"DXTRACK_EXIT_TIMEOUT": "1"})
    parent.wait_for("tracked", 20)
    wait_until(
        lambda: read_spool(spool_dir).lines >= 2_000,
        12,
        "the parent to spool its 2,000 records during the outage",
        interval=0.2,
    )
    parent.send("fork")
    assert parent.wait_for("child-exit", 20) == "child-exit 0", parent.describe()
    after_child = tally(
        "fork-after-child-exit", 2_100, lake.records(), read_spool(spool_dir).records
    )
    in_spool = read_spool(spool_dir).records
    parents = [r for r in in_spool if r["metric_name"] == "parent"]
    assert len(parents) == 2_000, f"the parent's records are in the spool {len(parents)} times"
    assert len({r["id"] for r in parents}) == 2_000
    assert after_child.landed == 0

    proxy.set_mode("up")
    parent.send("flush")
    parent.wait_for("flushed", 40)
    assert parent.wait(20) == 0, parent.describe()
    flushed = parent.value("flushed")
    landed = lake.records("metric")
    parent_result = tally(
        "fork-parent-delivered",
        2_000,
        landed,
        select=named("parent"),
        flushed=flushed,
        parent_stats=parent.value("stats"),
    )
    child_result = tally("fork-child-delivered", 100, landed, select=named("child"))
    assert flushed is True, "the parent's flush(30) after the outage"
    assert parent_result.landed == 2_000 and parent_result.landed_unique == 2_000
    assert child_result.landed_unique == 100, "the child's records did not land"
    producers = {r["producer_id"] for r in landed if r["metric_name"] == "child"}
    assert producers.isdisjoint(r["producer_id"] for r in landed if r["metric_name"] == "parent")


# ---- 12: the spool is keyed by endpoint ------------------------------------------------------


def test_spool_of_another_endpoint_is_not_replayed(
    runner: Runner, default_lake: Lake, spool_dir: Path
) -> None:
    """Records spooled by a run under moto's in-process mock_aws (no endpoint set, default
    stream names, the streams missing there) are not sent by a later run that reaches another
    endpoint with streams of the same names."""
    code = """
    stats_at_exit()
    from moto import mock_aws

    mock_aws().start()  # never stopped: dxtrack's exit handler still runs under it
    import dxtrack
    dxtrack.configure()
    for i in range(500):
        dxtrack.metric("mocked", i)
    say("tracked 500")
    """
    no_streams: dict[str, str | None] = {
        "DXTRACK_ERROR_STREAM": None,
        "DXTRACK_METRIC_STREAM": None,
    }
    runner.run(code, env={**no_streams, "AWS_ENDPOINT_URL": None, "DXTRACK_EXIT_TIMEOUT": "2"})
    mocked = read_spool(spool_dir).records
    tally("endpoint-mock-spooled", 500, [], mocked)
    assert len({r["id"] for r in mocked}) == 500, "the mock_aws run did not spool its records"

    later = runner.run(CONFIGURE_AND_FLUSH, env=no_streams, args=("10", "endpoint.real"))
    landed = default_lake.records("metric")
    scan = read_spool(spool_dir)
    tally(
        "endpoint-other-run",
        500,
        landed,
        scan.records,
        select=named("mocked"),
        later_stats=later.value("stats"),
    )
    assert [r for r in landed if r["metric_name"] == "mocked"] == [], (
        "records spooled for another endpoint were sent here"
    )
    assert sorted(value_of(r) for r in landed if r["metric_name"] == "endpoint.real") == list(
        range(10)
    )
    assert len({r["id"] for r in scan.records if r["metric_name"] == "mocked"}) == 500, (
        "the other endpoint's spooled records are kept"
    )


# ---- 13: spool safety ------------------------------------------------------------------------

SPOOL_SOME = """
stats_at_exit()
if len(sys.argv) > 2:
    os.umask(int(sys.argv[2], 8))
import dxtrack
dxtrack.configure()
for i in range(int(sys.argv[1])):
    dxtrack.metric("spooled", i)
try:
    raise ValueError("spooled error")
except ValueError:
    dxtrack.error()
say("tracked")
"""


def destinations(runner: Runner, proxy: Proxy, spool: Path) -> dict[str, Path]:
    """Spool one metric and one error during an outage; the destination directory of each
    kind (relative to ``spool``)."""
    with outage(proxy):
        runner.run(
            SPOOL_SOME,
            env={"DXTRACK_SPOOL_DIR": str(spool), "DXTRACK_EXIT_TIMEOUT": "1"},
            args=("1",),
        )
    found: dict[str, set[Path]] = {}
    for path in read_spool(spool).files:
        for line in path.read_bytes().splitlines():
            kind = "error" if "exception" in json.loads(line) else "metric"
            found.setdefault(kind, set()).add(path.parent.relative_to(spool))
    assert set(found) == {"error", "metric"}, f"nothing spooled to discover: {found}"
    assert all(len(dirs) == 1 for dirs in found.values()), found
    return {kind: dirs.pop() for kind, dirs in found.items()}


def test_spool_layout_names_and_modes(
    runner: Runner, proxy: Proxy, lake: Lake, tmp_path: Path
) -> None:
    """<spool_dir>/<destination>/seg-*.jsonl; the destination is named after stage, kind and
    region (and the endpoint), not the stream; every directory dxtrack creates is 0700 and every
    file 0600, even under umask 0."""
    spool = tmp_path / "cache" / "spool"
    with outage(proxy):
        child = runner.run(
            SPOOL_SOME,
            env={"DXTRACK_SPOOL_DIR": str(spool), "DXTRACK_EXIT_TIMEOUT": "1"},
            args=("100", "0"),
        )
    scan = read_spool(spool)
    tally("layout", 101, [], scan.records, final_stats=child.value("final-stats"))
    modes = {
        str(p.relative_to(tmp_path)): oct(stat.S_IMODE(p.lstat().st_mode))
        for p in [tmp_path / "cache", spool, *all_files(spool)]
    }
    print(f"\n[lifecycle] layout modes: {modes}")
    assert scan.lines == 101 and not scan.torn
    kinds: dict[str, set[str]] = {}
    for path in scan.files:
        assert path.parent.parent == spool, f"not <spool_dir>/<destination>/seg-*: {path}"
        for record in map(json.loads, path.read_bytes().splitlines()):
            kinds.setdefault("error" if "exception" in record else "metric", set()).add(
                path.parent.name
            )
    assert set(kinds) == {"error", "metric"}
    assert all(len(names) == 1 for names in kinds.values()), f"one directory per kind: {kinds}"
    assert kinds["error"] != kinds["metric"], f"one directory per kind: {kinds}"
    for kind, (name,) in ((k, tuple(v)) for k, v in kinds.items()):
        for part in (STAGE, kind, REGION):
            assert part in name, f"{name!r} does not name the {part!r}"
        for stream in (lake.error_stream, lake.metric_stream):
            assert stream not in name, f"{name!r} is named after the stream"
    for path in [tmp_path / "cache", spool, *all_files(spool)]:
        info = path.lstat()
        want = 0o700 if stat.S_ISDIR(info.st_mode) else 0o600
        assert stat.S_IMODE(info.st_mode) == want, f"{path}: {oct(info.st_mode)}"


def test_spool_dir_of_another_user_is_refused_and_records_still_delivered(
    runner: Runner, lake: Lake, spool_dir: Path
) -> None:
    """A spool_dir owned by another user: one log line refusing it, nothing written in it, and
    with Firehose up every record is delivered."""
    spool_dir.mkdir(mode=0o700)
    os.chown(spool_dir, FOREIGN_UID, FOREIGN_UID)
    child = runner.run(CONFIGURE_AND_FLUSH, args=("1000", "foreign.up"))
    refusals = child.log_lines(REFUSAL)
    result = tally("foreign-spool-up", 1_000, lake.records("metric"), refusals=len(refusals))
    assert len(refusals) == 1, f"{len(refusals)} refusal lines: {child.describe()}"
    assert all_files(spool_dir) == [], "something was written in another user's directory"
    assert result.landed_unique == 1_000 and result.landed_duplicates == 0
    assert child.value("flushed") is True


def test_spool_dir_of_another_user_during_outage_holds_in_memory_and_counts_drops(
    runner: Runner, proxy: Proxy, lake: Lake, spool_dir: Path
) -> None:
    """A refused spool during an outage: records wait in memory (nothing dropped while the
    process lives) and are delivered when Firehose is back; a process that exits during the
    outage counts every record it could not deliver as dropped."""
    spool_dir.mkdir(mode=0o700)
    os.chown(spool_dir, FOREIGN_UID, FOREIGN_UID)
    code = """
    import dxtrack
    dxtrack.configure()
    for i in range(1_000):
        dxtrack.metric("held", i)
    say("flush-in-outage " + json.dumps(dxtrack.flush(2)))
    say("stats-in-outage " + json.dumps(dxtrack.stats()))
    assert sys.stdin.readline().strip() == "go"
    say("flushed " + json.dumps(dxtrack.flush(30)))
    say("stats " + json.dumps(dxtrack.stats()))
    """
    proxy.set_mode("refuse")
    child = runner.start(code)
    child.wait_for("stats-in-outage", 30)
    held = child.value("stats-in-outage")
    proxy.set_mode("up")
    child.send("go")
    assert child.wait(40) == 0, child.describe()
    result = tally(
        "foreign-spool-outage-held",
        1_000,
        lake.records("metric"),
        stats_in_outage=held,
        flushed=child.value("flushed"),
    )
    assert child.value("flush-in-outage") is False
    assert held["spooled"] == 0 and held["dropped"] == 0, held
    assert result.landed_unique == 1_000, "records held in memory were not delivered"
    assert child.value("flushed") is True

    proxy.set_mode("refuse")
    code = """
    stats_at_exit()
    import dxtrack
    dxtrack.configure()
    for i in range(1_000):
        dxtrack.metric("dropped", i)
    say("tracked")
    """
    exiting = runner.run(code, env={"DXTRACK_EXIT_TIMEOUT": "1"})
    final = exiting.value("final-stats")
    tally(
        "foreign-spool-outage-exit", 1_000, lake.records(), [], select=named("dropped"), final=final
    )
    assert all_files(spool_dir) == []
    assert final["spooled"] == 0 and final["delivered"] == 0, final
    assert final["dropped"] == 1_000, f"dropped counts {final['dropped']} of 1,000 lost records"
    reasons = sum(v for k, v in final.items() if k.startswith("dropped."))
    assert reasons == final["dropped"], final


def test_world_writable_spool_dir_is_refused(runner: Runner, proxy: Proxy, spool_dir: Path) -> None:
    """spool_dir with mode 0777: refused (one log line), nothing written in it, and the records
    a process exiting during an outage could not deliver are counted as dropped."""
    spool_dir.mkdir()
    os.chmod(spool_dir, 0o777)
    with outage(proxy):
        child = runner.run(SPOOL_SOME, env={"DXTRACK_EXIT_TIMEOUT": "1"}, args=("500",))
    final = child.value("final-stats")
    refusals = child.log_lines(REFUSAL)
    tally(
        "world-writable",
        501,
        [],
        read_spool(spool_dir).records,
        refusals=len(refusals),
        final=final,
    )
    assert len(refusals) == 1, f"{len(refusals)} refusal lines: {child.describe()}"
    assert all_files(spool_dir) == [], "something was written in a world-writable directory"
    assert final["spooled"] == 0 and final["dropped"] == 501, final


def test_symlink_at_the_destination_is_not_followed(
    runner: Runner, proxy: Proxy, spool_dir: Path, tmp_path: Path
) -> None:
    """A symlink planted at <spool_dir>/<destination>, pointing elsewhere: nothing is written
    where it points, and every record is accounted for (spooled on disk, or dropped)."""
    names = destinations(runner, proxy, tmp_path / "discover")
    spool_dir.mkdir(mode=0o700)
    targets = {kind: tmp_path / f"elsewhere-{kind}" for kind in names}
    for kind, name in names.items():
        targets[kind].mkdir(mode=0o700)
        (spool_dir / name).symlink_to(targets[kind], target_is_directory=True)
    with outage(proxy):
        child = runner.run(SPOOL_SOME, env={"DXTRACK_EXIT_TIMEOUT": "1"}, args=("500",))
    final = child.value("final-stats")
    scan = read_spool(spool_dir)
    written = [p for target in targets.values() for p in all_files(target)]
    tally("symlink-destination", 501, [], scan.records, written_at_target=len(written), final=final)
    assert written == [], f"written through the symlink: {written}"
    assert final["spooled"] == scan.lines, "the spooled count is what is on disk"
    assert final["spooled"] + final["dropped"] == 501, final


def test_symlinked_spool_dir_is_not_followed(runner: Runner, proxy: Proxy, tmp_path: Path) -> None:
    """spool_dir itself a symlink to another directory: nothing is written where it points, and
    every record is accounted for."""
    target = tmp_path / "real-target"
    target.mkdir(mode=0o700)
    link = tmp_path / "spool-link"
    link.symlink_to(target, target_is_directory=True)
    with outage(proxy):
        child = runner.run(
            SPOOL_SOME,
            env={"DXTRACK_SPOOL_DIR": str(link), "DXTRACK_EXIT_TIMEOUT": "1"},
            args=("500",),
        )
    final = child.value("final-stats")
    written = all_files(target)
    tally("symlink-spool-dir", 501, [], [], written_at_target=len(written), final=final)
    assert written == [], f"written through the symlink: {written}"
    assert final["spooled"] == 0 and final["dropped"] == 501, final


def test_segment_of_another_user_is_never_replayed(
    runner: Runner, proxy: Proxy, lake: Lake, spool_dir: Path, tmp_path: Path
) -> None:
    """A seg-evil.jsonl owned by another user, planted in the destination directory, is never
    sent; the run's own records are."""
    names = destinations(runner, proxy, tmp_path / "discover")
    directory = spool_dir / names["metric"]
    spool_dir.mkdir(mode=0o700)
    directory.mkdir(mode=0o700)
    evil = directory / "seg-evil.jsonl"
    lines = [
        json.dumps(
            {
                "context": "evil",
                "host": "h",
                "id": f"{i:032x}",
                "metadata": {},
                "metric_name": "evil",
                "producer_id": "e" * 32,
                "run_id": "r",
                "seq": i + 1,
                "stage": STAGE,
                "timestamp": 1.0,
                "value": float(i),
            },
            separators=(",", ":"),
        )
        for i in range(50)
    ]
    evil.write_text("\n".join(lines) + "\n")
    os.chmod(evil, 0o600)
    os.chown(evil, FOREIGN_UID, FOREIGN_UID)
    child = runner.run(CONFIGURE_AND_FLUSH, args=("10", "own"))
    landed = lake.records("metric")
    stats = child.value("stats")
    tally("evil-segment", 50, landed, select=named("evil"), stats=stats)
    assert [r for r in landed if r["metric_name"] == "evil"] == [], (
        "another user's segment was sent"
    )
    assert sorted(value_of(r) for r in landed if r["metric_name"] == "own") == list(range(10))
    assert stats["replayed"] == 0, stats


# ---- 14: a full disk -------------------------------------------------------------------------


def test_full_disk_spools_whole_lines_and_counts_the_rest(
    runner: Runner, proxy: Proxy, spool_dir: Path
) -> None:
    """RLIMIT_FSIZE of 200 KB during an outage: what the spool says it spooled is exactly the
    whole lines on disk, the rest is counted as spool_write_failed, no line is torn, and the
    spool does not open segment after segment."""
    code = """
    import resource

    resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))
    stats_at_exit()
    import dxtrack
    dxtrack.configure()
    for i in range(5_000):
        dxtrack.metric("full.disk", i, metadata={"pad": "p" * 100})
    say("tracked 5000")
    """
    with outage(proxy):
        child = runner.run(code, env={"DXTRACK_EXIT_TIMEOUT": "1"})
    final = child.value("final-stats")
    scan = read_spool(spool_dir)
    tally(
        "full-disk",
        5_000,
        [],
        scan.records,
        segments=len(scan.files),
        torn=len(scan.torn),
        bytes_on_disk=sum(p.stat().st_size for p in scan.files),
        final=final,
    )
    assert scan.torn == [], f"torn lines: {scan.torn[:3]}"
    assert final["spooled"] == scan.lines, final
    assert final["spooled"] + final.get("dropped.spool_write_failed", 0) == 5_000, final
    assert 0 < scan.lines < 5_000, "the limit was not met (the scenario is broken)"
    assert len(scan.files) <= 2, f"{len(scan.files)} segment files"


# ---- 15: routes are independent --------------------------------------------------------------


def test_stuck_papertrail_does_not_delay_firehose(streams: Streams) -> None:
    """A Papertrail receiver that accepts TCP but never reads: 20,000 metrics still land in S3
    within a few seconds (4; about 1 s without Papertrail here), and nothing is spooled."""
    import boto3

    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    port = server.getsockname()[1]
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])  # and never read from it
            except TimeoutError:
                continue
            except OSError:
                return

    acceptor = threading.Thread(target=accept, daemon=True)
    acceptor.start()
    landed = NewObjects(boto3.client("s3", region_name=REGION), streams.bucket, "metric/")
    try:
        dxtrack.configure(
            **streams.settings(
                flush_interval=0.05,
                papertrail_hostport=f"127.0.0.1:{port}",
                papertrail_transport="tcp",
            )
        )
        for i in range(20_000):
            dxtrack.metric("independent", i, metadata={"pad": "p" * 300})
        tracked_at = time.monotonic()
        try:
            wait_until(lambda: landed.poll() >= 20_000, 4, "20,000 metrics in S3", interval=0.1)
        finally:
            after = time.monotonic() - tracked_at
            queued = [
                struct.unpack("i", fcntl.ioctl(s, termios.FIONREAD, b"\0\0\0\0"))[0]
                for s in accepted
            ]
            result = tally(
                "papertrail-stuck",
                20_000,
                landed.records,
                landed_after_s=round(after, 2),
                papertrail_connections=len(accepted),
                papertrail_bytes_queued=sum(queued),
                stats=dxtrack.stats(),
            )
        assert accepted, "dxtrack never connected to the Papertrail receiver"
        assert sum(queued) < 20_000 * 300 // 2, "the receiver took everything: not stuck"
        assert result.landed_unique == 20_000 and result.landed_duplicates == 0
        assert dxtrack.stats()["spooled"] == 0
    finally:
        stop.set()
        for sock in accepted:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.close()
        server.close()
        acceptor.join(5)
        dxtrack.shutdown(timeout=2)
