"""Wall-clock cost of `import dxtrack` in a fresh interpreter, against `pass` in the same run.

Also checks that importing dxtrack does not import boto3 (it is loaded when a Firehose sink
starts). Prints the median over --runs fresh processes of each.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time


def wall(code: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=21)
    args = parser.parse_args()
    base, dx = [], []
    for _ in range(args.runs):  # interleaved, so both see the same machine load
        base.append(wall("pass"))
        dx.append(wall("import dxtrack"))
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, dxtrack; print('boto3' in sys.modules)"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    cost = (statistics.median(dx) - statistics.median(base)) * 1000
    print(f"interpreter start (pass): {statistics.median(base) * 1000:.1f} ms")
    print(f"import dxtrack:           {statistics.median(dx) * 1000:.1f} ms")
    print(f"cost of import dxtrack:   {cost:.1f} ms (goal: at most 30 ms)")
    print(f"boto3 imported by `import dxtrack`: {loaded}")


if __name__ == "__main__":
    main()
