"""Generated records for the tests of the dxtrack command, and the answers computed from them in
plain Python, independently of the SQL the command runs."""

from __future__ import annotations

import gzip
import hashlib
import math
import random
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

Record = dict[str, Any]
DAY = 86400.0
START = 1_790_000_000.0  # 2026-09-21, a Monday


def with_id(record: Record) -> Record:
    """The record with an ``id`` over its content, as dxtrack gives each record one."""
    body = orjson.dumps(record, option=orjson.OPT_SORT_KEYS)
    return {**record, "id": hashlib.md5(body).hexdigest()}


def traceback_text(kind: str, message: str, depth: int) -> str:
    frames = "".join(
        f'  File "/srv/app/step{i}.py", line {10 + i}, in step{i}\n    step{i + 1}()\n'
        for i in range(depth)
    )
    return f"Traceback (most recent call last):\n{frames}{kind}: {message}\n"


def error(
    *,
    fingerprint: str,
    type: str,
    value: str,
    timestamp: float,
    run_id: str,
    producer_id: str,
    seq: int,
    context: str = "shop-sync",
    host: str = "host-1",
    suppressed: int = 0,
    sample_rate: float | None = None,
    metadata: dict[str, Any] | None = None,
) -> Record:
    """An error record as dxtrack writes it (schema fields, id last)."""
    record: Record = {
        "context": context,
        "stage": "test",
        "run_id": run_id,
        "metadata": metadata or {},
        "timestamp": timestamp,
        "exception": {
            "type": type,
            "value": value,
            "traceback": traceback_text(type, value, 3),
            "handled": True,
            "mechanism": "error",
        },
        "fingerprint": fingerprint,
        "log": None,
        "host": host,
        "producer_id": producer_id,
        "seq": seq,
        "suppressed": suppressed,
    }
    if sample_rate is not None:
        record["sample_rate"] = sample_rate
    return with_id(record)


def metric(
    *,
    name: str,
    value: float,
    timestamp: float,
    run_id: str,
    producer_id: str,
    seq: int,
    context: str = "shop-sync",
    host: str = "host-1",
    metadata: dict[str, Any] | None = None,
) -> Record:
    """A metric record as dxtrack writes it."""
    return with_id(
        {
            "context": context,
            "metric_name": name,
            "value": value,
            "stage": "test",
            "metadata": metadata or {},
            "run_id": run_id,
            "timestamp": timestamp,
            "host": host,
            "producer_id": producer_id,
            "seq": seq,
        }
    )


def write_jsonl(path: Path, records: list[Record], codec: str = "none") -> Path:
    """``records`` as JSON lines, plain, gzip (two concatenated members, as Firehose makes
    objects) or zstd (two frames)."""
    lines = [orjson.dumps(r) + b"\n" for r in records]
    half = len(lines) // 2
    parts = [b"".join(lines[:half]), b"".join(lines[half:])]
    if codec == "gzip":
        data = b"".join(gzip.compress(p) for p in parts)
    elif codec == "zstd":
        import zstandard

        data = b"".join(zstandard.ZstdCompressor().compress(p) for p in parts)
    else:
        data = b"".join(parts)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def quantile(values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (what DuckDB's quantile_cont computes)."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


@dataclass
class Dataset:
    """Records from several runs and producers over several days, with their expected answers."""

    errors: list[Record] = field(default_factory=list)
    metrics: list[Record] = field(default_factory=list)

    @classmethod
    def generate(
        cls, seed: int = 7, runs: int = 4, per_run: int = 60, start: float = START
    ) -> Dataset:
        rng = random.Random(seed)
        data = cls()
        kinds = [
            ("fp-price", "ValueError", "bad price"),
            ("fp-sku", "KeyError", "'sku'"),
            ("fp-timeout", "TimeoutError", "shop did not answer"),
            ("fp-rare", "ZeroDivisionError", "division by zero"),
        ]
        for run in range(runs):
            run_id = f"run{run:02d}" + "0" * 27
            producer = f"{run:02d}" + "a" * 30
            context = "shop-sync" if run % 2 == 0 else "price-import"
            clock = start + run * DAY * 0.7
            for seq in range(1, per_run + 1):
                clock += rng.uniform(1, 600)
                if rng.random() < 0.4:
                    fingerprint, kind, message = rng.choices(
                        kinds, weights=[6, 3, 2, 1 if run == 3 else 0]
                    )[0]
                    suppressed = rng.choice([0, 0, 0, 7]) if fingerprint == "fp-timeout" else 0
                    data.errors.append(
                        error(
                            fingerprint=fingerprint,
                            type=kind,
                            value=f"{message} #{seq}",
                            timestamp=clock,
                            run_id=run_id,
                            producer_id=producer,
                            seq=seq,
                            context=context,
                            suppressed=suppressed,
                            sample_rate=0.5 if fingerprint == "fp-sku" else None,
                            metadata={"shop": rng.choice("abc")},
                        )
                    )
                else:
                    name = rng.choice(["products.downloaded", "sync.seconds"])
                    data.metrics.append(
                        metric(
                            name=name,
                            value=round(rng.lognormvariate(3, 1), 3),
                            timestamp=clock,
                            run_id=run_id,
                            producer_id=producer,
                            seq=seq,
                            context=context,
                            metadata={"shop": rng.choice("abc")},
                        )
                    )
        return data

    # ---- answers ------------------------------------------------------------------------------

    def unique(self, records: list[Record]) -> list[Record]:
        seen: dict[str, Record] = {}
        for record in records:
            seen.setdefault(record["id"], record)
        return list(seen.values())

    def groups(self) -> dict[str, dict[str, Any]]:
        """Per fingerprint: occurrences, first and last seen, contexts, runs, latest message."""
        answer: dict[str, dict[str, Any]] = {}
        for record in sorted(self.unique(self.errors), key=lambda r: r["timestamp"]):
            group = answer.setdefault(
                record["fingerprint"],
                {
                    "occurrences": 0.0,
                    "first_seen": record["timestamp"],
                    "contexts": set(),
                    "runs": set(),
                },
            )
            group["occurrences"] += (1 + record["suppressed"]) / record.get("sample_rate", 1.0)
            group["last_seen"] = record["timestamp"]
            group["contexts"].add(record["context"])
            group["runs"].add(record["run_id"])
            group["message"] = record["exception"]["value"]
            group["traceback"] = record["exception"]["traceback"]
        for group in answer.values():
            group["occurrences"] = round(group["occurrences"])
            group["contexts"] = sorted(group["contexts"])
            group["runs"] = len(group["runs"])
        return answer

    def metric_stats(self, split: Any = None) -> dict[tuple[str, Any], dict[str, float]]:
        """Per (metric name, split value): records, min, p50, p95, max, last."""
        values: dict[tuple[str, Any], list[Record]] = defaultdict(list)
        for record in self.unique(self.metrics):
            values[(record["metric_name"], split(record) if split else None)].append(record)
        answer = {}
        for key, records in values.items():
            numbers = [r["value"] for r in records]
            answer[key] = {
                "records": len(records),
                "min": min(numbers),
                "p50": quantile(numbers, 0.5),
                "p95": quantile(numbers, 0.95),
                "max": max(numbers),
                "last": max(records, key=lambda r: r["timestamp"])["value"],
            }
        return answer

    def holes(self) -> list[tuple[str, int, int]]:
        """(producer_id, first missing, last missing) of every hole in seq."""
        seqs: dict[str, set[int]] = defaultdict(set)
        for record in self.errors + self.metrics:
            seqs[record["producer_id"]].add(record["seq"])
        holes = []
        for producer, found in sorted(seqs.items()):
            expected = 1
            for seq in sorted(found):
                if seq > expected:
                    holes.append((producer, expected, seq - 1))
                expected = seq + 1
        return holes

    def drop(self, producer_seq: set[tuple[str, int]]) -> None:
        """Delete the records with these (producer_id, seq): records lost on the way."""

        def kept(r: Record) -> bool:
            return (r["producer_id"], r["seq"]) not in producer_seq

        self.errors = [r for r in self.errors if kept(r)]
        self.metrics = [r for r in self.metrics if kept(r)]

    def write(self, directory: Path, codec: str = "none") -> Path:
        """The stage-test layout: error.jsonl and metric.jsonl (with the codec's extension)."""
        suffix = {"none": "", "gzip": ".gz", "zstd": ".zst"}[codec]
        write_jsonl(directory / f"error.jsonl{suffix}", self.errors, codec)
        write_jsonl(directory / f"metric.jsonl{suffix}", self.metrics, codec)
        return directory
