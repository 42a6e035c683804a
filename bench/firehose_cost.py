"""What Firehose bills: 100,000 records of about 300 bytes, shipped to a moto server.

Firehose bills ingestion per record, rounded up to 5 KB. Packing many JSON lines into one
Firehose record makes the billed bytes close to the real bytes. This prints the billed/raw ratio
(goal: at most 1.02; with ``--compression gzip`` at most 0.15, ``zstd`` at most 0.12) and the
number of PutRecordBatch calls (goal: at most 10 per 100,000), beside what one line per Firehose
record (the original dxtrack) would have cost. With compression it also prints the CPU time of
compressing, per record (the same lines compressed again, on one thread).
"""

from __future__ import annotations

import argparse
import time

from _common import (
    PutRecordBatchLog,
    billed_bytes,
    configure_against_new_streams,
    moto_server_process,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--compression", default="none", choices=["none", "gzip", "zstd"])
    args = parser.parse_args()
    log = PutRecordBatchLog()
    log.install()

    import dxtrack

    with moto_server_process():
        configure_against_new_streams(
            context="cost-bench", run_id="r-2024-03-05", compression=args.compression
        )
        metadata = {"shop": "shop-0042", "country": "BE", "job_version": "1.4.2"}
        for i in range(args.records):
            dxtrack.metric("products.downloaded.per_shop", i % 500, metadata=metadata)
        assert dxtrack.flush(timeout=300)
        stats = dxtrack.stats()
        dxtrack.shutdown()

    from dxtrack.delivery.compression import codec

    found = codec(args.compression)
    sizes = [len(data) for call in log.calls for data in call]
    plain = [data if found is None else found.decompress(data) for c in log.calls for data in c]
    raw = sum(map(len, plain))
    billed = billed_bytes(sizes)
    line = raw / args.records
    one_per_record = billed_bytes([round(line)] * args.records)
    print(
        f"records:              {args.records:,} ({stats['delivered']:,} delivered), "
        f"{line:.0f} bytes a line on average"
    )
    print(
        f"Firehose records:     {len(sizes):,} in {len(log.calls)} PutRecordBatch calls "
        f"({len(log.calls) * 100_000 / args.records:.1f} per 100,000 records; goal <= 10)"
    )
    print(f"raw bytes:            {raw:,}")
    goal = {"none": 1.02, "gzip": 0.15, "zstd": 0.12}[args.compression]
    print(f"billed bytes:         {billed:,} -> billed/raw {billed / raw:.4f} (goal <= {goal})")
    print(f"one line per record:  {one_per_record:,} billed -> {one_per_record / raw:.1f}x raw")
    if found is not None:
        start = time.process_time()
        for data in plain:
            found.compress(data)
        used = time.process_time() - start
        print(
            f"compressing ({found.name}):   {used / args.records * 1e9:.0f} ns of CPU per record "
            f"({raw / used / 1e6:.0f} MB/s)"
        )


if __name__ == "__main__":
    main()
