"""Sustained rate: one producer thread calls metric() as fast as it can (or at --rate) for
--seconds, shipping to a moto server in another process. Reports the call rate achieved, whether
the shipper kept up (records delivered by the end vs produced), and the peak backlog.

With --outage, the bucket is deleted for the whole run (moto answers 500), to show memory stays
within its bound: the peak resident memory is reported beside the idle baseline. With
--compression, the spool keeps the records compressed too.
"""

from __future__ import annotations

import argparse
import resource
import threading
import time

from _common import configure_against_new_streams, moto_server_process


def rss_mib() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=200_000, help="target calls per second")
    parser.add_argument("--outage", action="store_true", help="delete the bucket for the run")
    parser.add_argument(
        "--max-spool-gib",
        type=float,
        default=None,
        help="the spool's bound per destination (default: dxtrack's, 1 GiB)",
    )
    parser.add_argument(
        "--compression",
        choices=["none", "gzip", "zstd"],
        default="none",
        help="dxtrack's compression option",
    )
    args = parser.parse_args()

    import boto3

    import dxtrack
    from dxtrack.api import current_client

    with moto_server_process():
        spool: dict[str, object] = {"compression": args.compression}
        if args.max_spool_gib is not None:
            spool["max_spool_bytes"] = int(args.max_spool_gib * 2**30)
        bucket = configure_against_new_streams(context="bench", **spool)
        if args.outage:
            boto3.client("s3").delete_bucket(Bucket=bucket)
        pipeline = current_client()._pipeline
        assert pipeline is not None
        baseline_rss = rss_mib()
        peak = {"rss": baseline_rss, "backlog": 0}
        stop = threading.Event()

        def watch() -> None:
            while not stop.wait(0.05):
                peak["rss"] = max(peak["rss"], rss_mib())
                peak["backlog"] = max(peak["backlog"], len(pipeline.buffer) // 6)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        metadata = {"route": "/api/v1/items", "status": 200, "region": "eu-west-1"}
        metric = dxtrack.metric
        produced = 0
        chunk = 1_000
        start = time.perf_counter()
        deadline = start + args.seconds
        while True:
            now = time.perf_counter()
            if now >= deadline:
                break
            due = int((now - start) * args.rate)
            if produced >= due:  # ahead of the target rate
                time.sleep(0.0005)
                continue
            for _ in range(chunk):
                metric("bench.latency", 12.5, metadata=metadata)
            produced += chunk
        elapsed = time.perf_counter() - start
        stats_at_end = dxtrack.stats()
        flush_start = time.perf_counter()
        flushed = dxtrack.flush(timeout=120)
        drain = time.perf_counter() - flush_start
        stop.set()
        watcher.join()
        stats = dxtrack.stats()
        print(
            f"target rate:        {args.rate:,.0f} calls/s for {args.seconds:.0f} s"
            f"{' (bucket deleted: outage)' if args.outage else ''}, compression={args.compression}"
        )
        print(f"achieved call rate: {produced / elapsed:,.0f} calls/s ({produced:,} calls)")
        print(
            f"handled by the end: {stats_at_end['delivered'] + stats_at_end['spooled']:,} "
            f"({(stats_at_end['delivered'] + stats_at_end['spooled']) / produced:.1%}); "
            f"drained the rest in {drain:.2f} s; flush() -> {flushed}"
        )
        print(
            f"peak backlog:       {peak['backlog']:,} events in memory (max_buffer "
            f"{pipeline.max_buffer:,})"
        )
        print(f"resident memory:    {baseline_rss:.0f} MiB at start, peak {peak['rss']:.0f} MiB")
        bound = current_client().config
        assert bound is not None
        print(f"spool bound:        {bound.max_spool_bytes / 2**30:.1f} GiB per destination")
        print(
            f"counts:             delivered {stats['delivered']:,}, spooled "
            f"{stats['spooled']:,}, overflowed {stats.get('overflowed', 0):,}, "
            f"dropped {stats['dropped']:,}"
        )
        dxtrack.shutdown(timeout=1)


if __name__ == "__main__":
    main()
