"""The whole cost of a record: CPU of the producer process (caller and shipper threads), per record.

Each case runs in a fresh child process against one moto server in another process (moto's CPU
is not counted). A case times its loop and then ``flush()`` with ``resource.getrusage`` of the
whole child, so the shipper's building, packing, compressing, signing and sending is all in it.
dxtrack is warmed up first (1,000 records delivered, untimed): a stream's first call sets up
its connection and botocore's state, a one-time cost. Every case, baselines included, collects
garbage before its clock starts: a fresh process's first full collection walks the whole heap
(boto3's objects too) once, about 0.1 s, and it would fall in whichever case first allocates
enough objects that outlive a young generation, the deque baseline never.

Ratios printed, each against a baseline measured in the same run:

- metric: CPU per ``metric(name, value, metadata={3 keys})`` record over CPU per
  ``deque.append((name, value, dict(md)))``; every record must be delivered, none spooled;
- error: CPU per ``error(metadata=...)`` record net of the raise (10 frames deep), over the
  same deque baseline;
- loop: how much slower (whole-process CPU) a loop doing about 4.4 µs of work per iteration
  gets with one call per iteration, for dxtrack and the peers datadog (DogStatsd over UDP),
  prometheus_client (``labels().inc()``) and logging (a file handler); each against the same
  work without the call, in chunks alternating within one run (``interleaved``).

    python bench/whole_process.py                     # about 2 minutes
    python bench/whole_process.py --compression gzip  # the same with compressed records
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

NAME, VALUE = "http.server.latency", 12.5
METADATA = {"route": "/api/v1/items", "status": 200, "region": "eu-west-1"}
HERE = Path(__file__).resolve().parent


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def deep(n: int) -> None:
    if n <= 1:
        raise ValueError("boom")
    deep(n - 1)


WORK_ITERATIONS = [60]
"""Set by the parent (``--work-iterations``, measured in a child) so that ``work()`` takes
about 4.4 µs here."""


def work() -> int:
    """Pure-Python work: a small loop, of the length the parent measured for 4.4 µs."""
    total = 0
    for i in range(WORK_ITERATIONS[0]):
        total += i * i
    return total


def nothing() -> None:
    """What a case without an end step does at its end."""


def timed(loop: Callable[[], None], after: Callable[[], None] = lambda: None) -> float:
    gc.collect()  # every case starts from a collected heap (see the module's docstring)
    start = cpu()
    loop()
    after()
    return cpu() - start


def thread_cpu() -> dict[str, float]:
    """CPU seconds of each thread of this process by role (caller, builder, senders), from
    /proc (Linux); empty elsewhere."""
    import threading

    names = {thread.native_id: thread.name for thread in threading.enumerate()}
    tick = os.sysconf("SC_CLK_TCK")
    out: dict[str, float] = {}
    try:
        tasks = os.listdir("/proc/self/task")
    except OSError:
        return out
    for task in tasks:
        try:
            with open(f"/proc/self/task/{task}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        name = names.get(int(task), "")
        role = "builder" if "builder" in name else "senders" if "send" in name else "caller"
        out[role] = out.get(role, 0.0) + (int(fields[11]) + int(fields[12])) / tick
    return out


def by_thread(loop: Callable[[], None], after: Callable[[], None]) -> dict[str, float]:
    """``timed()``, and the CPU of each role's threads over the same span."""
    before = thread_cpu()
    used = timed(loop, after)
    spent = {f"cpu:{role}": cpu - before.get(role, 0.0) for role, cpu in thread_cpu().items()}
    return {"cpu": used, **spent}


def case_deque(n: int) -> dict[str, float]:
    buffer: deque[object] = deque()
    append = buffer.append

    def loop() -> None:
        for _ in range(n):
            append((NAME, VALUE, dict(METADATA)))
            if len(buffer) > 10_000:
                buffer.clear()

    return {"cpu": timed(loop)}


def case_raise(n: int) -> dict[str, float]:
    buffer: deque[object] = deque()

    def loop() -> None:
        for _ in range(n):
            try:
                deep(10)
            except ValueError:
                buffer.append(None)
                buffer.clear()

    return {"cpu": timed(loop)}


def configured(compression: str, **more: Any) -> Callable[[], dict[str, int]]:
    sys.path.insert(0, str(HERE))
    from _common import configure_against_new_streams

    import dxtrack

    settings = {} if compression == "none" else {"compression": compression}
    settings.update(more)
    configure_against_new_streams(context="bench", **settings)
    # warm up, untimed: the first call to a stream creates its connection and botocore's
    # lazily built state, which under full load takes long enough to be taken for a stall
    for i in range(1_000):
        dxtrack.metric("warm.up", i)
    dxtrack.flush(timeout=60)
    warm = dxtrack.stats()["delivered"]

    def stats() -> dict[str, int]:
        counts = dxtrack.stats()
        return {**counts, "delivered": counts["delivered"] - warm}

    return stats


def case_metric(n: int, compression: str) -> dict[str, float]:
    stats = configured(compression)
    import dxtrack

    metric = dxtrack.metric

    def loop() -> None:
        for _ in range(n):
            metric(NAME, VALUE, metadata=METADATA)

    return {**by_thread(loop, lambda: dxtrack.flush(timeout=300)), **stats()}


def case_error(n: int, compression: str, limited: bool) -> dict[str, float]:
    """Every call a record (``error_rate_limit=None``), or the default rate limit: the same
    error raised in a loop is then a storm, and most calls are counted, not built."""
    stats = configured(compression) if limited else configured(compression, error_rate_limit=None)
    import dxtrack

    error = dxtrack.error

    def loop() -> None:
        for _ in range(n):
            try:
                deep(10)
            except ValueError:
                error(metadata=METADATA)

    return {**by_thread(loop, lambda: dxtrack.flush(timeout=300)), **stats()}


def case_loop(n: int, who: str, compression: str) -> dict[str, float]:
    call: Callable[[], object]
    after: Callable[[], object] = nothing
    if who == "none":
        call = lambda: None  # noqa: E731
    elif who == "dxtrack":
        stats = configured(compression)
        import dxtrack

        metric = dxtrack.metric
        call = lambda: metric(NAME, VALUE, metadata=METADATA)  # noqa: E731
        after = lambda: dxtrack.flush(timeout=300)  # noqa: E731
    elif who == "datadog":
        from datadog.dogstatsd import DogStatsd

        port = int(os.environ["BENCH_UDP_PORT"])
        statsd = DogStatsd(host="127.0.0.1", port=port)
        tags = [f"{k}:{v}" for k, v in METADATA.items()]
        call = lambda: statsd.histogram(NAME, VALUE, tags=tags)  # noqa: E731
    elif who == "prometheus":
        from prometheus_client import CollectorRegistry, Counter

        counter = Counter("requests", "requests", list(METADATA), registry=CollectorRegistry())
        call = lambda: counter.labels(**METADATA).inc()  # noqa: E731
    elif who == "logging":
        import logging

        logger = logging.getLogger("bench.loop")
        logger.propagate = False
        logger.setLevel(logging.INFO)
        handle, path = tempfile.mkstemp(suffix=".log")
        os.close(handle)
        logger.addHandler(logging.FileHandler(path))
        call = lambda: logger.info("%s %s %s", NAME, VALUE, METADATA)  # noqa: E731
        after = lambda: os.unlink(path)  # noqa: E731
    else:
        raise ValueError(f"unknown loop case {who!r}")

    if who == "none":  # the calibration of work()

        def loop() -> None:
            for _ in range(n):
                work()
                call()

        return {"cpu": timed(loop)}
    result = interleaved(n, call, after)
    if who == "dxtrack":
        result.update(stats())
    return result


def interleaved(
    n: int, call: Callable[[], object], after: Callable[[], object]
) -> dict[str, float]:
    """``n`` iterations of ``work()`` with ``call()`` and ``n`` with nothing, in alternating
    chunks: the machine's speed drifts by tens of percent within seconds here, and the two
    halves then meet the same drift. The calling thread's CPU is timed per chunk; the other
    threads' (a shipper's) over the whole run, ``after()`` included, counts as the call's."""
    chunk = 2_000
    gc.collect()
    spent = [0.0, 0.0]
    thread_before, process_before = time.thread_time(), cpu()
    for index in range(2 * n // chunk):
        calling = index % 2
        step = call if calling else nothing
        began = time.thread_time()
        for _ in range(chunk):
            work()
            step()
        spent[calling] += time.thread_time() - began
    after()
    others = (cpu() - process_before) - (time.thread_time() - thread_before)
    return {"bare": spent[0], "cpu": spent[1] + others}


def child(args: argparse.Namespace) -> None:
    WORK_ITERATIONS[0] = args.work_iterations
    kind, _, who = args.case.partition(":")
    if kind == "deque":
        result = case_deque(args.calls)
    elif kind == "raise":
        result = case_raise(args.errors)
    elif kind == "metric":
        result = case_metric(args.calls, args.compression)
    elif kind == "error":
        result = case_error(args.errors, args.compression, limited=who == "limited")
    else:
        result = case_loop(args.loop_calls, who, args.compression)
    print(json.dumps(result))


def run(case: str, args: argparse.Namespace, env: dict[str, str]) -> dict[str, float]:
    command = [sys.executable, __file__, "--case", case, "--compression", args.compression]
    command += ["--calls", str(args.calls), "--errors", str(args.errors)]
    command += [
        "--loop-calls",
        str(args.loop_calls),
        "--work-iterations",
        str(args.work_iterations),
    ]
    out = subprocess.run(command, env=env, check=True, capture_output=True, text=True).stdout
    return dict(json.loads(out.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--case", help=argparse.SUPPRESS)
    parser.add_argument("--calls", type=int, default=1_000_000)
    parser.add_argument("--errors", type=int, default=100_000)
    parser.add_argument("--loop-calls", type=int, default=300_000)
    parser.add_argument("--reps", type=int, default=3, help="runs of each case; median kept")
    parser.add_argument("--compression", default="none", choices=["none", "gzip", "zstd"])
    parser.add_argument("--work-iterations", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        child(args)
        return
    args.work_iterations = 60

    import socket

    sys.path.insert(0, str(HERE))
    from _common import moto_server_process

    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # DogStatsd's packets end here
    sink.bind(("127.0.0.1", 0))
    with moto_server_process():
        env = dict(os.environ, BENCH_UDP_PORT=str(sink.getsockname()[1]))

        for _ in range(3):  # the work loop's length that takes about 4.4 µs in a child
            took = sorted(
                run("loop:none", args, env)["cpu"] / args.loop_calls * 1e6 for _ in range(3)
            )[1]  # one run alone is too noisy
            args.work_iterations = max(1, round(args.work_iterations * 4.4 / took))
        # Round after round of every case, rather than all runs of one case in a row: these
        # machines are shared, and a slow minute then slows every case alike.
        cases = {
            "deque": args.calls,
            "raise": args.errors,
            "metric": args.calls,
            "error": args.errors,
            "error:limited": args.errors,
            **{f"loop:{who}": args.loop_calls for who in LOOP_CASES},
        }
        runs: dict[str, list[dict[str, float]]] = {case: [] for case in cases}
        for _ in range(args.reps):
            for case in cases:
                runs[case].append(run(case, args, env))

        def median(case: str) -> tuple[float, dict[str, float]]:
            results = sorted(runs[case], key=lambda r: r["cpu"])
            middle = results[len(results) // 2]
            return middle["cpu"] / cases[case] * 1e6, middle

        base, _ = median("deque")
        raise_only, _ = median("raise")
        metric, metric_stats = median("metric")
        error, error_stats = median("error")
        storm, storm_stats = median("error:limited")
        per_call = 1e6 / args.loop_calls
        loops = {  # the median run's extra CPU per iteration, and the work's in that run
            who: sorted(
                ((r["cpu"] - r["bare"]) * per_call, r["bare"] * per_call)
                for r in runs[f"loop:{who}"]
            )[args.reps // 2]
            for who in LOOP_CASES[1:]
        }
        bare = median("loop:none")[0]

    print(f"compression: {args.compression}; median of {args.reps} runs; CPU of the whole process")
    print("(4x the baseline is the goal for metrics, 20x for errors, +35% for the loop)")
    print(f"baseline deque.append((name, value, dict(md))):  {base:6.2f} µs per call")
    print(
        f"metric() record:  {metric:6.2f} µs  = {metric / base:5.2f}x baseline (goal ≤ 4x); "
        f"delivered {metric_stats['delivered']:,} of {args.calls:,}, "
        f"spooled {metric_stats['spooled']:,}, dropped {metric_stats['dropped']:,}"
    )
    net = error - raise_only
    print(
        f"error() record:   {net:6.2f} µs net of the raise ({raise_only:.2f} µs) = "
        f"{net / base:5.2f}x baseline (goal ≤ 20x); "
        f"delivered {error_stats['delivered']:,} of {args.errors:,}, "
        f"spooled {error_stats['spooled']:,}"
    )
    print(
        f"error() in a storm, default error_rate_limit: {storm - raise_only:6.2f} µs net = "
        f"{(storm - raise_only) / base:5.2f}x baseline per call; "
        f"{storm_stats['delivered']:,} records stand for {args.errors:,} calls"
    )
    for what, stats, per in (
        ("metric", metric_stats, args.calls),
        ("error", error_stats, args.errors),
    ):
        roles = ", ".join(
            f"{key[4:]} {value / per * 1e6:.2f} µs"
            for key, value in sorted(stats.items())
            if key.startswith("cpu:")
        )
        print(f"  where the {what} record's CPU went (per record): {roles}")
    print(
        f"loop of about {bare:.2f} µs work per iteration, slowdown with one call per iteration, "
        "each against the same work without the call in alternating chunks of the same run:"
    )
    for who, (extra, work_here) in loops.items():
        print(
            f"  {who:<11} {extra:6.2f} µs  {extra / work_here:+7.1%} of {work_here:.2f} µs"
            f"  (on 4.4 µs: {extra / 4.4:+7.1%})"
        )


LOOP_CASES = ("none", "dxtrack", "datadog", "prometheus", "logging")

if __name__ == "__main__":
    main()
