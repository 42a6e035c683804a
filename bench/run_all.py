"""Run every benchmark in bench/, one after another, and print their reports.

    python bench/run_all.py            # about 10 minutes
    python bench/run_all.py --quick    # shorter runs, for a smoke test

Each benchmark reports ratios against a baseline measured in the same run (these machines are
shared and noisy); see each script's docstring for its method.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    outage_seconds = "3" if args.quick else "30"
    runs = [
        ["import_time.py", "--runs", "5" if args.quick else "21"],
        ["hot_path.py"]
        + (["--reps", "3", "--calls", "30000", "--error-calls", "10000"] if args.quick else []),
        ["firehose_cost.py"] + (["--records", "20000"] if args.quick else []),
        ["firehose_cost.py", "--compression", "gzip"]
        + (["--records", "20000"] if args.quick else []),
        ["firehose_cost.py", "--compression", "zstd"]
        + (["--records", "20000"] if args.quick else []),
        ["whole_process.py"]
        + (["--reps", "1", "--calls", "200000", "--errors", "20000"] if args.quick else []),
        ["whole_process.py", "--compression", "zstd"]
        + (["--reps", "1", "--calls", "200000", "--errors", "20000"] if args.quick else []),
        ["caller_latency.py"]
        + (["--calls", "40000", "--sustained", "300000"] if args.quick else []),
        ["throughput.py", "--seconds", "3" if args.quick else "10"],
        ["cli_queries.py"] + (["--records", "100000", "--reps", "1"] if args.quick else []),
        # Twice: with the default spool bound (1 GiB, about 3 million such records: the rest
        # is dropped and counted), and with one sized for 30 s at 200,000 records a second.
        ["throughput.py", "--outage", "--seconds", outage_seconds],
        ["throughput.py", "--outage", "--max-spool-gib", "4", "--seconds", outage_seconds],
    ]
    for script, *extra in runs:
        print(f"\n### {script} {' '.join(extra)}", flush=True)
        subprocess.run([sys.executable, str(HERE / script), *extra], check=True)


if __name__ == "__main__":
    main()
