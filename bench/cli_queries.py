"""How fast the dxtrack command and the dashboard answer, against DuckDB itself in the same run.

1. ``dxtrack errors`` over 1,000,000 error records in local JSON Lines files (10 frames of
   traceback each, as dxtrack writes them), beside a bare DuckDB ``GROUP BY fingerprint`` over
   the same files: both in-process (the query only) and as whole commands in fresh processes
   (``dxtrack errors --json`` beside ``python -c`` running the bare query). Goal: at most 2x.
2. The dashboard's first page with 100,000 records (errors and metrics): from the browser's
   request for the page until the groups are drawn, in headless Chromium. Goal: within 1 s.

    python bench/cli_queries.py [--records 1000000] [--dashboard-records 100000] [--reps 3]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

FRAMES = 10
BARE = (
    "import duckdb, sys\n"
    "from dxtrack import sql\n"
    "con = duckdb.connect()\n"
    "con.execute(sql.duckdb_views([sys.argv[1]], [sys.argv[1]]))\n"
    "con.sql('SELECT fingerprint, count(*) FROM errors GROUP BY 1').fetchall()\n"
)
"""The fastest bare query as a whole command: the views' declared schema, GROUP BY fingerprint."""


def traceback_text(kind: str, message: str, shape: int) -> str:
    frames = "".join(
        f'  File "/srv/app/module{shape}_{i}.py", line {10 + i * 7}, in step_{i}\n'
        f"    result = step_{i + 1}(payload, retries=3)\n"
        for i in range(FRAMES)
    )
    return f"Traceback (most recent call last):\n{frames}{kind}: {message}\n"


def write_errors(directory: Path, records: int, files: int = 10, metrics: int = 0) -> None:
    """``records`` error records (200 fingerprints) and ``metrics`` metric records."""
    rng = random.Random(1)
    shapes = [
        (f"{i:016x}", rng.choice(["ValueError", "KeyError", "TimeoutError"])) for i in range(200)
    ]
    texts = {fp: traceback_text(kind, "{message}", n) for n, (fp, kind) in enumerate(shapes)}
    directory.mkdir(parents=True, exist_ok=True)
    per_file = records // files
    seq = 0
    clock = 1_790_000_000.0
    for f in range(files):
        lines = []
        producer = f"{f:032x}"
        for _ in range(per_file):
            seq += 1
            clock += 0.5
            fp, kind = shapes[min(int(rng.paretovariate(1.2)) - 1, 199)]
            message = f"order {seq} failed"
            record = {
                "context": "bench",
                "stage": "prod",
                "run_id": f"run{f}",
                "metadata": {"shop": "a"},
                "timestamp": clock,
                "exception": {
                    "type": kind,
                    "value": message,
                    "traceback": texts[fp].replace("{message}", message),
                    "handled": True,
                    "mechanism": "error",
                },
                "fingerprint": fp,
                "log": None,
                "host": "h",
                "producer_id": producer,
                "seq": seq,
                "suppressed": 0,
                "id": f"{seq:032x}",
            }
            lines.append(orjson.dumps(record))
        (directory / f"error-{f:02d}.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    if metrics:
        lines = [
            orjson.dumps(
                {
                    "context": "bench",
                    "metric_name": f"m{i % 20}",
                    "value": rng.random(),
                    "stage": "prod",
                    "metadata": {},
                    "run_id": "run0",
                    "timestamp": clock + i,
                    "host": "h",
                    "producer_id": "f" * 32,
                    "seq": i + 1,
                    "id": f"m{i:031x}",
                }
            )
            for i in range(metrics)
        ]
        (directory / "metric.jsonl").write_bytes(b"\n".join(lines) + b"\n")


def best(times: list[float]) -> float:
    return min(times)


def bench_errors(directory: Path, reps: int) -> None:
    import duckdb

    from dxtrack import sql
    from dxtrack.cli.sources import Source
    from dxtrack.cli.store import Store

    glob = str(directory / "*.jsonl")
    # Two bare forms: what one types (schema detected), and the fastest one found (every
    # column declared, as dxtrack's views do: DuckDB then skips what the query doesn't use).
    typed = sql.duckdb_views([glob], [glob]).split("CREATE OR REPLACE VIEW metrics")[0]
    bare_forms = {
        "detected schema": f"SELECT fingerprint, count(*) FROM '{glob}' GROUP BY 1",
        "declared schema": "SELECT fingerprint, count(*) FROM errors GROUP BY 1",
    }
    times: dict[str, list[float]] = {name: [] for name in [*bare_forms, "dxtrack"]}
    for _ in range(reps):
        for name, query in bare_forms.items():
            start = time.perf_counter()
            con = duckdb.connect()
            con.execute(typed)
            con.sql(query).fetchall()
            times[name].append(time.perf_counter() - start)
        start = time.perf_counter()
        groups = Store(Source(str(directory))).error_groups()
        times["dxtrack"].append(time.perf_counter() - start)
    total = sum(g["occurrences"] for g in groups)
    ours = best(times["dxtrack"])
    print(
        f"in-process, best of {reps}: dxtrack errors (Store.error_groups: {len(groups)} "
        f"groups, {total:,} errors, latest tracebacks) {ours:.2f} s"
    )
    for name in bare_forms:
        bare = best(times[name])
        print(
            f"  bare DuckDB GROUP BY fingerprint, {name}: {bare:.2f} s -> dxtrack "
            f"{ours / bare:.2f}x (goal: at most 2x)"
        )

    bare_cmd = [sys.executable, "-c", BARE, glob]
    ours_cmd = [sys.executable, "-m", "dxtrack", "errors", "--json", "--source", str(directory)]
    bare_times, ours_times = [], []
    for _ in range(reps):
        for command, times in ((bare_cmd, bare_times), (ours_cmd, ours_times)):
            start = time.perf_counter()
            subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
            times.append(time.perf_counter() - start)
    bare, ours = best(bare_times), best(ours_times)
    print(
        f"whole commands, best of {reps}: python -c <bare query, declared schema> {bare:.2f} s; "
        f"dxtrack errors --json {ours:.2f} s: {ours / bare:.2f}x (goal: at most 2x)"
    )


def bench_dashboard(directory: Path, reps: int) -> None:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    server = subprocess.Popen(
        [sys.executable, "-m", "dxtrack", "ui", "--port", "0", "--source", str(directory)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        started = time.perf_counter()
        assert server.stdout is not None
        url = server.stdout.readline().split()[2]
        ready = time.perf_counter() - started
        options = webdriver.ChromeOptions()
        options.binary_location = "/usr/bin/chromium"
        for flag in (
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--window-size=1400,1600",
        ):
            options.add_argument(flag)
        driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
        try:
            loads = []
            for _ in range(reps):
                start = time.perf_counter()
                driver.get(url)
                WebDriverWait(driver, 30).until(
                    ec.presence_of_element_located((By.CSS_SELECTOR, "[data-fingerprint]"))
                )
                loads.append(time.perf_counter() - start)
            snapshot_seconds = driver.execute_script(
                "return fetch('/api/snapshot').then(r => r.json()).then(d => d.seconds)"
            )
        finally:
            driver.quit()
    finally:
        server.terminate()
        server.wait()
    print(
        f"dashboard over {directory}: listening {ready:.2f} s after start (snapshot queried "
        f"in {snapshot_seconds} s); first page drawn in {statistics.median(loads):.3f} s "
        f"(median of {reps}; max {max(loads):.3f} s; goal: within 1 s)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--dashboard-records", type=int, default=100_000)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="dxtrack-bench-cli-") as tmp:
        errors_dir = Path(tmp) / "errors"
        start = time.perf_counter()
        write_errors(errors_dir, args.records)
        size = sum(p.stat().st_size for p in errors_dir.iterdir())
        print(
            f"{args.records:,} error records, {size / 2**20:.0f} MiB of JSON Lines in 10 files "
            f"(written in {time.perf_counter() - start:.1f} s); {os.cpu_count()} CPUs"
        )
        bench_errors(errors_dir, args.reps)
        dashboard_dir = Path(tmp) / "dashboard"
        errors = args.dashboard_records // 2
        write_errors(dashboard_dir, errors, files=2, metrics=args.dashboard_records - errors)
        bench_dashboard(dashboard_dir, args.reps)


if __name__ == "__main__":
    main()
