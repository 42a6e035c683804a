"""The caller under load: latency of single metric() calls with 1, 2, 4 and 8 threads, beside
the same harness calling deque.append, and the caller's CPU per call under sustained load over
its idle figure.

Every thread calls as fast as it can, timing each call with ``time.perf_counter_ns`` (the timer's
own cost is in both columns). dxtrack runs in stage prod against a moto server in another
process, so its builder and sender threads work the whole time, on the same interpreter lock.

- latency: p50, p99 and max of single calls, per thread count, dxtrack beside ``deque.append``;
- CPU: the calling thread's CPU (``time.thread_time``) per call, idle (10,000 calls, then
  ``flush()``, 10 times) and sustained (a fifth of ``--sustained`` calls in a row), in 5
  alternating rounds; goal: sustained at most 1.5x idle, the median of the rounds' ratios.

    python bench/caller_latency.py
    python bench/caller_latency.py --compression zstd
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time
from collections import deque
from collections.abc import Callable

from _common import configure_against_new_streams, moto_server_process

NAME, VALUE = "http.server.latency", 12.5
METADATA = {"route": "/api/v1/items", "status": 200, "region": "eu-west-1"}


def timed_calls(call: Callable[[], object], count: int) -> list[int]:
    """Nanoseconds of each of ``count`` calls."""
    clock = time.perf_counter_ns
    out = [0] * count
    for i in range(count):
        start = clock()
        call()
        out[i] = clock() - start
    return out


def latencies(call: Callable[[], object], threads: int, per_thread: int) -> list[int]:
    """Every call's latency, with ``threads`` threads calling at once."""
    results: list[list[int]] = []
    lock = threading.Lock()
    go = threading.Barrier(threads)

    def run() -> None:
        go.wait()
        mine = timed_calls(call, per_thread)
        with lock:
            results.append(mine)

    workers = [threading.Thread(target=run) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return [x for chunk in results for x in chunk]


def summary(values: list[int]) -> str:
    values = sorted(values)
    p50 = values[len(values) // 2] / 1000
    p99 = values[int(len(values) * 0.99)] / 1000
    return f"{p50:6.2f} {p99:7.2f} {values[-1] / 1000:9.1f}"


ROUNDS = 5
"""Rounds of idle, then sustained, calls."""


def caller_cpu(call: Callable[[], object], calls: int, flush: Callable[[], object] | None) -> float:
    """The calling thread's CPU per call, in µs: in chunks of 10,000 with a flush between
    (idle) when ``flush`` is given, else all in a row (sustained)."""
    used = 0.0
    done = 0
    while done < calls:
        chunk = min(10_000, calls - done) if flush is not None else calls
        start = time.thread_time()
        for _ in range(chunk):
            call()
        used += time.thread_time() - start
        done += chunk
        if flush is not None:
            flush()
    return used / calls * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=200_000, help="calls per thread count")
    parser.add_argument("--sustained", type=int, default=2_000_000)
    parser.add_argument("--compression", default="none", choices=["none", "gzip", "zstd"])
    args = parser.parse_args()

    buffer: deque[object] = deque(maxlen=100_000)

    def append() -> None:
        buffer.append((NAME, VALUE, dict(METADATA)))

    import dxtrack

    with moto_server_process():
        configure_against_new_streams(context="bench", compression=args.compression)
        metric = dxtrack.metric

        def track() -> None:
            metric(NAME, VALUE, metadata=METADATA)

        print(f"compression: {args.compression}; latency of single calls in µs")
        print(
            f"{'threads':>7} | {'deque.append p50/p99/max':>26} | "
            f"{'dxtrack.metric p50/p99/max':>26}"
        )
        for threads in (1, 2, 4, 8):
            per_thread = args.calls // threads
            base = latencies(append, threads, per_thread)
            ours = latencies(track, threads, per_thread)
            print(f"{threads:>7} | {summary(base):>26} | {summary(ours):>26}")
            dxtrack.flush(timeout=120)

        # idle and sustained in alternating rounds: the machine's speed drifts by tens of
        # percent within seconds here, and each round's ratio meets one drift
        idle_runs, sustained_runs = [], []
        for _ in range(ROUNDS):
            idle_runs.append(caller_cpu(track, 100_000, lambda: dxtrack.flush(timeout=60)))
            sustained_runs.append(caller_cpu(track, args.sustained // ROUNDS, None))
            dxtrack.flush(timeout=300)
        ratios = sorted(s / i for s, i in zip(sustained_runs, idle_runs, strict=True))
        idle, sustained = statistics.median(idle_runs), statistics.median(sustained_runs)
        delivered = dxtrack.flush(timeout=300)
        stats = dxtrack.stats()
        print(
            f"caller CPU per call: idle {idle:.2f} µs, sustained "
            f"({args.sustained // ROUNDS:,} in a row) {sustained:.2f} µs; sustained over idle "
            f"in each of {ROUNDS} rounds: median {statistics.median(ratios):.2f}x "
            f"({ratios[0]:.2f}x to {ratios[-1]:.2f}x; goal <= 1.5x)"
        )
        print(
            f"delivered {stats['delivered']:,}, spooled {stats['spooled']:,}, "
            f"dropped {stats['dropped']:,}, overflowed {stats.get('overflowed', 0):,}; "
            f"flush() -> {delivered}"
        )
        dxtrack.shutdown(timeout=1)


if __name__ == "__main__":
    main()
