"""Adversarial end-to-end tests of the delivery core: a real job's bad day.

Each test runs real processes against a moto server in another process, through the toggleable
proxy of ``tests.lifecycle``, and asserts a promise of README "How delivery works", "What
survives what" and "The spool" that a broken implementation would break: nothing lost, no
duplicate beyond a call whose outcome is unknown, no hang, no leak, the host not broken.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections import Counter
from pathlib import Path

import pytest

from dxtrack.delivery.route import REPLAY_CALL_BYTES
from tests.lifecycle import (
    Child,
    Lake,
    Proxy,
    Runner,
    read_spool,
    tally,
    wait_until,
)

pytestmark = [pytest.mark.lifecycle, pytest.mark.timeout(90)]


# ---- helpers ---------------------------------------------------------------------------------


def metric_dir(spool_dir: Path) -> Path:
    """The metric destination's directory under ``spool_dir`` (the one whose name says so)."""
    found = [p for p in spool_dir.iterdir() if "-metric-" in p.name]
    assert len(found) == 1, found
    return found[0]


def unique_landed(lake: Lake, name: str) -> int:
    return len({r["id"] for r in lake.records("metric") if r.get("metric_name") == name})


def record_line(i: int, name: str) -> bytes:
    """A JSON line shaped like a metric record (what replay sends as is)."""
    record = {
        "context": "planted",
        "host": "h",
        "id": f"{i:032x}",
        "metadata": {},
        "metric_name": name,
        "producer_id": "p" * 32,
        "run_id": "r",
        "seq": i + 1,
        "stage": "prod",
        "timestamp": 1.0,
        "value": float(i),
    }
    return json.dumps(record, separators=(",", ":")).encode() + b"\n"


def exit_seconds(child: Child, sent: float, timeout: float) -> tuple[int, float]:
    code = child.wait(timeout)
    return code, time.monotonic() - sent


# ---- fork: the child must not keep the parent's spool locks ----------------------------------

FORK_LONG_LIVED_CHILD = """
import dxtrack
dxtrack.configure()
for i in range(2_000):
    dxtrack.metric("forklock", i)
say("tracked")
assert sys.stdin.readline().strip() == "fork"
pid = os.fork()
if pid == 0:  # a long-lived worker (a prefork server's): it tracks nothing, it just lives
    time.sleep(60)
    os._exit(0)
say("forked")
assert sys.stdin.readline().strip() == "more"
for i in range(10):
    dxtrack.metric("forklock.more", i)
say("more tracked")
assert sys.stdin.readline().strip() == "flush"
say("flushed " + json.dumps(dxtrack.flush(10)))
say("stats " + json.dumps(dxtrack.stats()))
os.kill(pid, signal.SIGKILL)
os.waitpid(pid, 0)
"""


def test_forked_child_does_not_keep_the_parents_segment_locks(
    runner: Runner, proxy: Proxy, lake: Lake, spool_dir: Path
) -> None:
    """Firehose hangs (blackhole): the call in flight gets its insurance copy on disk, locked by
    the parent. The parent fork()s a long-lived worker; Firehose refuses a moment (the call
    fails, its copy stays on disk), then comes back. The worker must not hold the parent's
    segment locks: the parent's flush() is True and all 2,010 records land while the worker
    still lives."""
    proxy.set_mode("blackhole")
    parent = runner.start(FORK_LONG_LIVED_CHILD, env={"DXTRACK_EXIT_TIMEOUT": "1"})
    parent.wait_for("tracked", 20)
    wait_until(
        lambda: read_spool(spool_dir).lines >= 2_000,
        10,
        "the insurance copy of the hanging call on disk",
        interval=0.1,
    )
    parent.send("fork")
    parent.wait_for("forked", 10)
    # Firehose refuses for a moment: the hanging call fails, its copy stays on disk; 10 more
    # records are spooled too, so that the parent has a fresh reason to replay its spool
    proxy.set_mode("refuse")
    parent.send("more")
    wait_until(lambda: read_spool(spool_dir).lines >= 2_010, 10, "10 more records spooled")
    proxy.set_mode("up")
    parent.send("flush")
    parent.wait_for("flushed", 20)
    assert parent.wait(20) == 0, parent.describe()
    result = tally(
        "fork-inherited-locks",
        2_010,
        lake.records("metric"),
        read_spool(spool_dir).records,
        flushed=parent.value("flushed"),
        stats=parent.value("stats"),
    )
    assert result.landed_unique == 2_010, "records stayed locked on disk by the forked worker"
    assert parent.value("flushed") is True


FORK_MANY_DURING_BLACKHOLE = """
import dxtrack
dxtrack.configure()
for i in range(2_000):
    dxtrack.metric("forkstall", i)
say("tracked")
assert sys.stdin.readline().strip() == "fork"
began = time.monotonic()
pids = []
for _ in range(int(sys.argv[1])):
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    pids.append(pid)
took = time.monotonic() - began
for pid in pids:
    os.waitpid(pid, 0)
say(f"forks-took {took:.3f}")
"""


def test_forking_workers_during_a_blackhole_does_not_stall_the_host(
    runner: Runner, proxy: Proxy, spool_dir: Path
) -> None:
    """A prefork server starts 5 workers while Firehose hangs: fork() must not wait for sender
    threads stuck in a network read (they hold no import lock). The 5 forks take well under
    a second, not 2 s each."""
    proxy.set_mode("blackhole")
    parent = runner.start(FORK_MANY_DURING_BLACKHOLE, env={"DXTRACK_EXIT_TIMEOUT": "1"}, args=["5"])
    parent.wait_for("tracked", 20)
    wait_until(lambda: proxy.counts["blackholed"] > 0, 10, "a call to hang")
    time.sleep(0.3)  # the sender is inside the hanging call
    parent.send("fork")
    took = float(parent.wait_for("forks-took", 30).split()[-1])
    parent.kill()
    print(f"\n[adversarial] 5 forks during a blackhole took {took:.2f}s")
    assert took < 2.0, f"5 fork() calls took {took:.1f}s: each waited for a hanging sender"


# ---- insurance: a copy whose call failed must be replayed as soon as Firehose is back --------

INSURED_THEN_FLUSH = """
import dxtrack
dxtrack.configure()
for i in range(2_000):
    dxtrack.metric("insured", i)
say("tracked")
assert sys.stdin.readline().strip() == "flush"
began = time.monotonic()
say("flushed " + json.dumps(dxtrack.flush(10)))
say(f"flush-took {time.monotonic() - began:.3f}")
say("stats " + json.dumps(dxtrack.stats()))
"""


def test_failed_insured_call_is_replayed_once_firehose_is_back(
    runner: Runner, proxy: Proxy, lake: Lake, spool_dir: Path
) -> None:
    """Firehose hangs: the call in flight gets its insurance copy after ~1 s; then Firehose comes
    back (the hanging call fails). flush(10) must replay the copy: it returns True and all
    2,000 records land once, instead of leaving them on disk for the next start."""
    proxy.set_mode("blackhole")
    child = runner.start(INSURED_THEN_FLUSH, env={"DXTRACK_EXIT_TIMEOUT": "1"})
    child.wait_for("tracked", 20)
    wait_until(lambda: read_spool(spool_dir).lines >= 2_000, 10, "the insurance copy on disk")
    proxy.set_mode("up")
    child.send("flush")
    assert child.wait(20) == 0, child.describe()
    result = tally(
        "insured-then-back",
        2_000,
        lake.records("metric"),
        read_spool(spool_dir).records,
        flushed=child.value("flushed"),
        flush_took=child.value("flush-took"),
        stats=child.value("stats"),
    )
    assert result.landed_unique == 2_000, "Firehose was back, yet the copy stayed on disk"
    assert result.landed_duplicates == 0
    assert child.value("flushed") is True


# ---- SIGTERM -----------------------------------------------------------------------------------

TRACK_THEN_WAIT = """
import dxtrack
dxtrack.configure()
for i in range(int(sys.argv[1])):
    dxtrack.metric("term", i)
say("tracked")
while True:
    time.sleep(1)
"""


def test_sigterm_while_firehose_hangs_dies_in_time_with_everything_on_disk(
    runner: Runner, proxy: Proxy, lake: Lake, spool_dir: Path
) -> None:
    """SIGTERM while every call hangs (the 15 s read timeout is far away): the process dies of
    SIGTERM within exit_timeout + 1 s, and each of the 20,000 records is in the spool."""
    proxy.set_mode("blackhole")
    child = runner.start(TRACK_THEN_WAIT, env={"DXTRACK_EXIT_TIMEOUT": "2"}, args=["20000"])
    child.wait_for("tracked", 20)
    wait_until(lambda: proxy.counts["blackholed"] > 0, 10, "a call to hang")
    time.sleep(1.5)  # the calls have been hanging a while: their copies are on disk
    sent = time.monotonic()
    child.signal(signal.SIGTERM)
    code, took = exit_seconds(child, sent, 15)
    result = tally(
        "sigterm-blackhole",
        20_000,
        lake.records("metric"),
        read_spool(spool_dir).records,
        exit_s=round(took, 2),
        returncode=code,
    )
    assert code == -signal.SIGTERM, child.describe()
    assert took < 2 + 1.0, f"died {took:.1f}s after SIGTERM (exit_timeout=2)"
    assert result.lost == 0 and result.copies_beyond_one == 0


TIGHT_METRIC_LOOP = """
import dxtrack
dxtrack.configure()
n = 0
next_report = time.monotonic()
while True:
    n += 1
    dxtrack.metric("tight", n)
    if n % 500 == 0 and time.monotonic() >= next_report:
        say(f"tracked {n}")
        next_report += 0.1
"""


def test_sigterm_while_the_main_thread_spools_an_overflow(
    runner: Runner, proxy: Proxy, lake: Lake, spool_dir: Path
) -> None:
    """During an outage, a tight metric() loop with a small max_buffer: the main thread builds
    and spools what overflows (holding the spool's lock part of the time). SIGTERM must still
    spool everything tracked up to the last progress line, and die within exit_timeout + 1 s.
    Five processes in a row, so that the signal lands in the spool at least once."""
    proxy.set_mode("refuse")
    worst = None
    for attempt in range(5):
        child = runner.start(
            TIGHT_METRIC_LOOP, env={"DXTRACK_EXIT_TIMEOUT": "1", "DXTRACK_MAX_BUFFER": "100"}
        )
        child.wait_for("tracked", 20, accept=lambda line: int(line.split()[1]) >= 20_000)
        sent = time.monotonic()
        child.signal(signal.SIGTERM)
        code, took = exit_seconds(child, sent, 15)
        reported = int(child.lines("tracked ")[-1].split()[1])
        scan = read_spool(spool_dir)
        names = {r["value"] for r in scan.records if r["metric_name"] == "tight"}
        missing = sum(1 for n in range(1, reported + 1) if float(n) not in names)
        print(
            f"\n[adversarial] sigterm-overflow #{attempt}: rc={code} exit_s={took:.2f} "
            f"reported={reported} missing={missing}"
        )
        assert code == -signal.SIGTERM, child.describe()
        worst = max(worst or 0.0, took)
        assert missing == 0, f"{missing} records tracked before SIGTERM are nowhere"
        assert took < 1 + 1.0, f"died {took:.1f}s after SIGTERM (exit_timeout=1)"
        for path in scan.files:
            path.unlink()


# ---- configure() under load --------------------------------------------------------------------

CONFIGURE_50_TIMES = """
import gc
from collections import Counter
import dxtrack
dxtrack.configure(run_id="c0")
dxtrack.flush(10)


def fds():
    return len(os.listdir("/proc/self/fd"))


fds_before, threads_before = fds(), threading.active_count()
done = [0, 0, 0, 0]
stop = threading.Event()


def work(t):
    i = 0
    while not stop.is_set():
        dxtrack.metric("reconf50", i, metadata={"call": f"{t}:{i}"})
        i += 1
        done[t] = i
        if i % 20 == 0:
            time.sleep(0.01)


threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
for thread in threads:
    thread.start()
dropped = 0
for n in range(1, 51):
    dropped += dxtrack.stats()["dropped"]
    dxtrack.configure(run_id=f"c{n}")
stop.set()
for thread in threads:
    thread.join()
say("tracked " + json.dumps(done))
say("flushed " + json.dumps(dxtrack.flush(30)))
dropped += dxtrack.stats()["dropped"]
gc.collect()
time.sleep(0.5)
say("dropped " + json.dumps(dropped))
say("fds " + json.dumps([fds_before, fds()]))
targets = Counter()
for fd in os.listdir("/proc/self/fd"):
    try:
        targets[os.readlink(f"/proc/self/fd/{fd}").split("/")[-1][:24]] += 1
    except OSError:
        pass
say("fd-targets " + json.dumps(targets.most_common(3)))
say("threads " + json.dumps([threads_before, threading.active_count()]))
"""


def test_configure_50_times_while_4_threads_track(
    runner: Runner, lake: Lake, spool_dir: Path
) -> None:
    """configure() 50 times in a row while 4 threads track: every call lands exactly once,
    nothing is dropped, no configuration spools what it had left (the replaced ones deliver it
    at once, over the client they share with the new one), and the process is left with no more
    descriptors and threads than before (each configuration's spool directories, sockets and
    threads are closed)."""
    child = runner.run(CONFIGURE_50_TIMES, timeout=60)
    done = child.value("tracked")
    landed = lake.records("metric")
    fds_before, fds_after = child.value("fds")
    threads_before, threads_after = child.value("threads")
    result = tally(
        "configure-50",
        sum(done),
        landed,
        read_spool(spool_dir).records,
        flushed=child.value("flushed"),
        fds=[fds_before, fds_after],
        threads=[threads_before, threads_after],
        fd_targets=child.value("fd-targets"),
    )
    calls = Counter(r["metadata"]["call"] for r in landed)
    assert len(calls) == sum(done), f"{sum(done) - len(calls)} calls never landed"
    assert max(calls.values()) == 1, "a call landed twice"
    assert result.lost == 0
    assert child.value("dropped") == 0
    assert child.value("flushed") is True
    assert child.log_lines("spooled to disk") == []
    assert threads_after <= threads_before, f"threads: {threads_before} -> {threads_after}"
    assert fds_after <= fds_before + 4, f"descriptors leaked: {fds_before} -> {fds_after}"


CONFIGURE_OFF_MAIN = """
import dxtrack
dxtrack.configure(run_id="main")
stop = threading.Event()
problems = []


def reconfigure():
    try:
        for n in range(10):
            dxtrack.configure(run_id=f"t{n}")
            time.sleep(0.02)
    except BaseException as exc:
        problems.append(repr(exc))
    stop.set()


thread = threading.Thread(target=reconfigure)
thread.start()
i = 0
while not stop.is_set():
    dxtrack.metric("offmain", i)
    i += 1
    if i % 100 == 0:
        time.sleep(0.001)
thread.join()
say("tracked " + json.dumps(i))
say("problems " + json.dumps(problems))
say("flushed " + json.dumps(dxtrack.flush(30)))
say("stats " + json.dumps(dxtrack.stats()))
"""


def test_configure_from_another_thread_while_main_tracks(
    runner: Runner, lake: Lake, spool_dir: Path
) -> None:
    """configure() 10 times from a worker thread while the main thread tracks flat out: no
    error, every record lands exactly once."""
    child = runner.run(CONFIGURE_OFF_MAIN, timeout=60)
    tracked = child.value("tracked")
    result = tally(
        "configure-off-main",
        tracked,
        lake.records("metric"),
        read_spool(spool_dir).records,
        flushed=child.value("flushed"),
    )
    assert child.value("problems") == []
    assert result.lost == 0 and result.copies_beyond_one == 0
    assert child.value("flushed") is True


# ---- stats() --------------------------------------------------------------------------------

TRACK_AND_EXIT_WITH_STATS = """
stats_at_exit()
import dxtrack
dxtrack.configure()
for i in range(2_000):
    dxtrack.metric("counted", i)
say("tracked")
assert sys.stdin.readline().strip() == "exit"
"""


def test_stats_account_for_insured_calls_at_exit(
    runner: Runner, proxy: Proxy, spool_dir: Path
) -> None:
    """Firehose hangs; the process exits (exit_timeout 1 s) while its call is still in flight,
    its copy on disk. The final stats() must reconcile: delivered + spooled + dropped equals
    the 2,000 tracked, and spooled equals what is on disk (so the exit summary is logged)."""
    proxy.set_mode("blackhole")
    child = runner.start(TRACK_AND_EXIT_WITH_STATS, env={"DXTRACK_EXIT_TIMEOUT": "1"})
    child.wait_for("tracked", 20)
    wait_until(lambda: read_spool(spool_dir).lines >= 2_000, 10, "the insurance copy on disk")
    child.send("exit")
    assert child.wait(15) == 0, child.describe()
    final = child.value("final-stats")
    on_disk = read_spool(spool_dir).lines
    tally("stats-insured-exit", 2_000, [], read_spool(spool_dir).records, final=final)
    assert on_disk == 2_000
    assert final["delivered"] + final["spooled"] + final["dropped"] == 2_000, final
    assert final["spooled"] == on_disk, final


# ---- odd things in the spool directory -------------------------------------------------------

CONFIGURE_TRACK_FLUSH = """
import dxtrack
dxtrack.configure()
for i in range(int(sys.argv[1])):
    dxtrack.metric(sys.argv[2], i)
began = time.monotonic()
say("flushed " + json.dumps(dxtrack.flush(15)))
say(f"flush-took {time.monotonic() - began:.3f}")
say("stats " + json.dumps(dxtrack.stats()))
"""


def test_odd_files_in_the_spool_neither_hang_nor_block_replay(
    runner: Runner, proxy: Proxy, lake: Lake, spool_dir: Path
) -> None:
    """A FIFO, a directory, an empty file, a torn segment and a segment with a corrupt line,
    all named seg-*.jsonl and sorted before the real ones: nothing hangs, the process
    exits in time, the good lines of the torn and corrupt segments and the real records land
    once, and only the broken lines are counted as dropped."""
    spool_during_outage(runner, proxy, spool_dir, 100, "spooled")
    directory = metric_dir(spool_dir)
    os.mkfifo(directory / "seg-0-fifo.jsonl", 0o600)
    (directory / "seg-0-dir.jsonl").mkdir(mode=0o700)
    (directory / "seg-0-empty.jsonl").write_bytes(b"")
    torn = b"".join(record_line(i, "planted.torn") for i in range(10)) + b'{"id": "to'
    (directory / "seg-0-torn.jsonl").write_bytes(torn)
    corrupt = [record_line(i, "planted.corrupt") for i in range(100, 110)]
    corrupt.insert(5, b"this is not json\n")
    (directory / "seg-0-corrupt.jsonl").write_bytes(b"".join(corrupt))
    for path in directory.iterdir():
        if path.is_file():
            path.chmod(0o600)
    began = time.monotonic()
    child = runner.start(CONFIGURE_TRACK_FLUSH, args=["10", "after"])
    code = child.wait(30)
    took = time.monotonic() - began
    landed = lake.records("metric")
    names = Counter(r["metric_name"] for r in landed)
    stats = child.value("stats")
    tally("odd-files", 130, landed, took_s=round(took, 2), names=dict(names), stats=stats)
    assert code == 0, child.describe()
    assert names == {
        "spooled": 100,
        "planted.torn": 10,
        "planted.corrupt": 10,
        "after": 10,
    }
    assert stats["dropped"] == 2, stats  # the torn tail and the corrupt line
    assert took < 10, f"the run took {took:.1f}s"


# ---- recovery: kill -9 in the middle of a replay, and two replayers ----------------------------


def spool_during_outage(runner: Runner, proxy: Proxy, spool_dir: Path, n: int, name: str) -> None:
    """Leave ``n`` records in the spool: a run that tracks them while Firehose refuses."""
    proxy.set_mode("refuse")
    runner.run(TRACK_THEN_EXIT, env={"DXTRACK_EXIT_TIMEOUT": "1"}, args=[str(n), name])
    proxy.set_mode("up")
    assert read_spool(spool_dir).lines == n


TRACK_THEN_EXIT = """
import dxtrack
dxtrack.configure()
for i in range(int(sys.argv[1])):
    dxtrack.metric(sys.argv[2], i)
say("tracked")
"""

REPLAY_ONLY = """
import dxtrack
dxtrack.configure()
say(f"ready at {time.monotonic():.6f}")
say("flushed " + json.dumps(dxtrack.flush(30)))
"""


def test_kill_9_during_replay_again_and_again(
    runner: Runner, proxy: Proxy, lake: Lake, spool_dir: Path
) -> None:
    """60,000 records in the spool; four starts in a row are killed (-9) while they replay it,
    then a fifth runs to the end. Every record lands. Copies stay within what one replay call
    holds per kill (its outcome is unknown when the process dies; README, "What survives
    what"): what a replayer already delivered must not go back for the next one to send."""
    spool_during_outage(runner, proxy, spool_dir, 60_000, "replay.kill")
    landed_after_each: list[int] = []
    for attempt in range(4):
        child = runner.start(REPLAY_ONLY)
        child.wait_for("ready", 20)
        time.sleep(0.05 + 0.1 * attempt)  # in the middle of the replay
        child.signal(signal.SIGKILL)
        assert child.wait(10) == -signal.SIGKILL
        landed_after_each.append(len(lake.records("metric")))
    last = runner.run(REPLAY_ONLY, timeout=40)
    scan = read_spool(spool_dir)
    result = tally(
        "replay-kill-9",
        60_000,
        lake.records("metric"),
        scan.records,
        landed_after_each=landed_after_each,
        flushed=last.value("flushed"),
    )
    assert result.landed_unique == 60_000 and result.lost == 0
    smallest = min(len(json.dumps(r, separators=(",", ":"))) + 1 for r in lake.records("metric"))
    per_call = REPLAY_CALL_BYTES // smallest
    assert result.landed_duplicates <= 4 * per_call, "more copies than the calls in flight"
    assert scan.files == []


WAIT_THEN_FLUSH = """
import dxtrack
dxtrack.configure()
for i in range(int(sys.argv[1])):
    dxtrack.metric(sys.argv[2], i)
say("tracked")
assert sys.stdin.readline().strip() == "go"
say("flushed " + json.dumps(dxtrack.flush(30)))
say("stats " + json.dumps(dxtrack.stats()))
"""


def test_two_live_processes_share_a_spool_through_an_outage(
    runner: Runner, proxy: Proxy, lake: Lake, spool_dir: Path
) -> None:
    """Two live processes spool 30,000 records each into one spool during an outage; Firehose
    comes back and both replay at once (each other's segments too). Every record lands
    exactly once, the spool ends empty, and both flush() calls return True."""
    proxy.set_mode("refuse")
    a = runner.start(WAIT_THEN_FLUSH, env={"DXTRACK_EXIT_TIMEOUT": "1"}, args=["30000", "a"])
    b = runner.start(WAIT_THEN_FLUSH, env={"DXTRACK_EXIT_TIMEOUT": "1"}, args=["30000", "b"])
    a.wait_for("tracked", 20)
    b.wait_for("tracked", 20)
    wait_until(lambda: read_spool(spool_dir).lines >= 60_000, 15, "both spooled", interval=0.2)
    proxy.set_mode("up")
    a.send("go")
    b.send("go")
    assert a.wait(40) == 0, a.describe()
    assert b.wait(40) == 0, b.describe()
    scan = read_spool(spool_dir)
    result = tally(
        "shared-spool",
        60_000,
        lake.records("metric"),
        scan.records,
        flushed=[a.value("flushed"), b.value("flushed")],
        stats=[a.value("stats"), b.value("stats")],
    )
    assert result.landed_unique == 60_000 and result.landed_duplicates == 0
    assert scan.records == []
    assert [a.value("flushed"), b.value("flushed")] == [True, True]


# ---- the spool's size bound when another process replays ---------------------------------------

MISSPELT_WAITS = """
import dxtrack
dxtrack.configure(metric_stream="no-such-stream")
say("first-flush " + json.dumps(dxtrack.flush(2)))
assert sys.stdin.readline().strip() == "go"
for i in range(int(sys.argv[1])):
    dxtrack.metric("misspelt.new", i)
dxtrack.flush(3)
say("stats " + json.dumps(dxtrack.stats()))
"""


def test_spool_bound_follows_what_another_process_replayed(
    runner: Runner, proxy: Proxy, lake: Lake, spool_dir: Path
) -> None:
    """A process whose stream name is misspelt finds 3,000 records in the spool at start; a
    healthy process then replays them all (the spool is empty). When the first one spools
    1,500 records of its own, far below max_spool_bytes on disk, none may be dropped as
    spool_full: the bound is about what is on disk, not what this process once saw there."""
    spool_during_outage(runner, proxy, spool_dir, 3_000, "old")
    old_bytes = sum(p.stat().st_size for p in read_spool(spool_dir).files)
    limit = str(int(old_bytes * 1.2))
    misspelt = runner.start(
        MISSPELT_WAITS,
        env={"DXTRACK_EXIT_TIMEOUT": "1", "DXTRACK_MAX_SPOOL_BYTES": limit},
        args=["1500"],
    )
    misspelt.wait_for("first-flush", 20)
    runner.run(REPLAY_ONLY, timeout=30)
    assert read_spool(spool_dir).lines == 0, "the healthy process replayed everything"
    misspelt.send("go")
    assert misspelt.wait(20) == 0, misspelt.describe()
    stats = misspelt.value("stats")
    scan = read_spool(spool_dir)
    tally(
        "spool-bound-drift",
        1_500,
        [],
        scan.records,
        select=lambda r: r["metric_name"] == "misspelt.new",
        limit=limit,
        on_disk=sum(p.stat().st_size for p in scan.files),
        stats=stats,
    )
    assert stats["dropped"] == 0, f"dropped with the spool nearly empty: {stats}"


# ---- memory during a long outage ---------------------------------------------------------------

STEADY = """
import dxtrack
dxtrack.configure()
say(f"ready at {time.monotonic():.6f}")
steady_load(20_000)
"""


def test_memory_stays_bounded_through_a_long_blackhole(
    runner: Runner, proxy: Proxy, spool_dir: Path
) -> None:
    """20,000 metrics a second for 12 s while every call hangs: resident memory levels off
    (records go to disk, calls in flight are bounded) instead of growing with the outage."""
    proxy.set_mode("blackhole")
    child = runner.start(STEADY, env={"DXTRACK_EXIT_TIMEOUT": "1"})
    ready = float(child.wait_for("ready", 20).split()[-1])
    samples: list[tuple[float, int]] = []
    for at in (4.0, 8.0, 12.0):
        child.wait_for(
            "tracked", 20, accept=lambda line, at=at: float(line.split()[-1]) >= ready + at
        )
        samples.append((at, child.rss_kib()))
    child.kill()
    scan_lines = read_spool(spool_dir).lines
    print(
        f"\n[adversarial] blackhole rss_mib={[(a, round(r / 1024)) for a, r in samples]} "
        f"spool_lines={scan_lines}"
    )
    growth = samples[-1][1] - samples[0][1]
    assert growth < 64 * 1024, f"RSS grew {growth / 1024:.0f} MiB between 4 s and 12 s"
    assert samples[-1][1] < 400 * 1024


CONFIGURE_LOOP = """
import dxtrack
n = 0
while True:
    dxtrack.configure()
    for _ in range(1_000):
        n += 1
        dxtrack.metric("confloop", n)
    say(f"tracked {n}")
"""


def test_sigterm_while_the_main_thread_reconfigures_in_a_loop(
    runner: Runner, proxy: Proxy, lake: Lake, spool_dir: Path
) -> None:
    """configure() and 1,000 metrics in a loop, Firehose up; SIGTERM lands inside configure()
    (which holds the client's lock while it closes the previous configuration). The process
    still dies of SIGTERM promptly, everything reported tracked is in S3 or the spool, once."""
    child = runner.start(CONFIGURE_LOOP, env={"DXTRACK_EXIT_TIMEOUT": "3"})
    child.wait_for("tracked", 20, accept=lambda line: int(line.split()[1]) >= 20_000)
    sent = time.monotonic()
    child.signal(signal.SIGTERM)
    code, took = exit_seconds(child, sent, 15)
    reported = int(child.lines("tracked ")[-1].split()[1])
    result = tally(
        "sigterm-configure-loop",
        reported,
        lake.records("metric"),
        read_spool(spool_dir).records,
        select=lambda r: int(r["value"]) <= reported,
        exit_s=round(took, 2),
        returncode=code,
    )
    assert code == -signal.SIGTERM, child.describe()
    assert result.lost == 0 and result.copies_beyond_one == 0
    assert took < 3.0, f"died {took:.1f}s after SIGTERM (exit_timeout=3): closing waited on a lock"
