"""Caller cost of dxtrack.metric() and dxtrack.error() against primitives measured in the same run.

Method (as ../shared/bench/peers.py): each case runs in chunks of 10,000 calls; the untimed reset
before each chunk lets dxtrack's shipper drain (flush), like peers.py's background-sender rows;
the median over --reps repetitions is reported, GC enabled. The primitives are measured first,
before boto3 is imported (the smaller heap makes them cheaper, so the ratios are the stricter).
dxtrack runs in stage prod, shipping to a moto server in another process.

Ratios printed:
- metric: dxtrack.metric(name, value, metadata={3 keys}) / deque.append((name, value, {3 keys}))
- error: (raise 10 deep + dxtrack.error(metadata=...)) - (raise 10 deep), / the same deque.append

``dxtrack.metric`` and ``dxtrack.error`` are the compiled fast path when it was built; the
pure-Python methods behind it (``current_client().metric``/``.error``) are measured too.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import statistics
import time
from collections import deque
from collections.abc import Callable

from _common import configure_against_new_streams, moto_server_process

CHUNK = 10_000
NAME, VALUE = "http.server.latency", 12.5
ROUTE, STATUS, REGION = "/api/v1/items", 200, "eu-west-1"


def measure(fn: Callable[[], object], reset: Callable[[], object], reps: int, calls: int) -> float:
    """Median ns per call over ``reps`` repetitions of ``calls`` calls."""
    results = []
    for _ in range(reps + 1):  # the first repetition warms up and is dropped
        gc.collect()
        total = 0
        for _ in range(calls // CHUNK):
            reset()
            loop = itertools.repeat(None, CHUNK)
            start = time.perf_counter_ns()
            for _ in loop:
                fn()
            total += time.perf_counter_ns() - start
        results.append(total / calls)
    return statistics.median(results[1:])


def deep(n: int) -> None:
    if n <= 1:
        raise ValueError("boom")
    deep(n - 1)


def raise_then(handler: Callable[[], object]) -> Callable[[], None]:
    def fn() -> None:
        try:
            deep(10)
        except ValueError:
            handler()

    return fn


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--calls", type=int, default=100_000)
    parser.add_argument("--error-calls", type=int, default=20_000)
    args = parser.parse_args()
    r, s, g = ROUTE, STATUS, REGION

    noop = measure(lambda: None, lambda: None, args.reps, args.calls)
    d: deque[object] = deque(maxlen=100_000)
    app = d.append
    base = measure(
        lambda: app((NAME, VALUE, {"route": r, "status": s, "region": g})),
        d.clear,
        args.reps,
        args.calls,
    )
    raise_only = measure(raise_then(lambda: None), lambda: None, args.reps, args.error_calls)

    import dxtrack
    import dxtrack.api
    import dxtrack.client

    with moto_server_process():
        configure_against_new_streams(
            context="bench", run_id="bench", default_metadata={"service": "checkout"}
        )
        drain = dxtrack.flush

        def metric_and_error(
            metric_fn: Callable[..., None], error_fn: Callable[..., None]
        ) -> tuple[float, float]:
            """ns per metric() call, and per raise + error() call."""
            metric_ns = measure(
                lambda: metric_fn(NAME, VALUE, metadata={"route": r, "status": s, "region": g}),
                drain,
                args.reps,
                args.calls,
            )
            error_ns = measure(
                raise_then(lambda: error_fn(metadata={"route": r, "status": s, "region": g})),
                drain,
                args.reps,
                args.error_calls,
            )
            return metric_ns, error_ns

        metric, error = metric_and_error(dxtrack.metric, dxtrack.error)
        client = dxtrack.api.current_client()  # its methods: the pure-Python path
        py_metric, py_error = metric_and_error(client.metric, client.error)
        base_after = measure(
            lambda: app((NAME, VALUE, {"route": r, "status": s, "region": g})),
            d.clear,
            args.reps,
            args.calls,
        )
        stats = dxtrack.stats()
        dxtrack.shutdown(timeout=30)

    print(f"harness (noop lambda):                      {noop:8.0f} ns")
    print(
        f"deque.append((name, value, {{3 keys}})):      {base:8.0f} ns   "
        f"(again with boto3 loaded: {base_after:.0f} ns)"
    )
    print(f"dxtrack.metric(name, value, metadata=...):  {metric:8.0f} ns")
    print(f"raise 10 deep + except:                     {raise_only:8.0f} ns")
    print(f"  ... + dxtrack.error(metadata=...):        {error:8.0f} ns")
    compiled = "compiled fast path" if dxtrack.client.compiled_fast_path() else "NOT compiled"
    print(f"  (dxtrack.metric and .error above: {compiled}; the pure-Python methods alone:")
    print(f"   metric {py_metric:.0f} ns = {py_metric / base:.2f}x, error beyond the raise")
    print(f"   {py_error - raise_only:.0f} ns = {(py_error - raise_only) / base:.2f}x)")
    print()
    print(
        f"metric / deque.append:            {metric / base:5.2f}x   (goal <= 2; net of harness "
        f"{(metric - noop) / (base - noop):.2f}x)"
    )
    print(f"(error - raise) / deque.append:   {(error - raise_only) / base:5.2f}x   (goal <= 10)")
    print(f"records delivered during the run: {stats['delivered']:,}, dropped {stats['dropped']}")


if __name__ == "__main__":
    main()
