"""Wall-clock cost of `import dxtrack` in a fresh interpreter, against `pass` in the same run.

Also checks that importing dxtrack does not import boto3 (it is loaded when a Firehose sink
starts). Prints the median over --runs fresh processes of each.

Both are timed with bytecode caches, as a wheel installed by pip has them: the caches go to a
temporary PYTHONPYCACHEPREFIX, written by one warm-up run, so an environment that sets
PYTHONDONTWRITEBYTECODE (or an editable install that was never compiled) does not time the
compiler. --no-bytecode times the compile from source instead.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time


def wall(code: str, env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, env=env)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=21)
    parser.add_argument("--no-bytecode", action="store_true", help="compile from source each run")
    args = parser.parse_args()
    env = dict(os.environ)
    with tempfile.TemporaryDirectory() as cache:
        if args.no_bytecode:
            env["PYTHONDONTWRITEBYTECODE"] = "1"
        else:
            env.pop("PYTHONDONTWRITEBYTECODE", None)
            env["PYTHONPYCACHEPREFIX"] = cache
            wall("import dxtrack", env)
        base, dx = [], []
        for _ in range(args.runs):  # interleaved, so both see the same machine load
            base.append(wall("pass", env))
            dx.append(wall("import dxtrack", env))
        loaded = subprocess.run(
            [sys.executable, "-c", "import sys, dxtrack; print('boto3' in sys.modules)"],
            check=True,
            capture_output=True,
            text=True,
            env=env,
        ).stdout.strip()
    print(f"bytecode: {'compiled from source each run' if args.no_bytecode else 'cached'}")
    cost = (statistics.median(dx) - statistics.median(base)) * 1000
    print(f"interpreter start (pass): {statistics.median(base) * 1000:.1f} ms")
    print(f"import dxtrack:           {statistics.median(dx) * 1000:.1f} ms")
    print(f"cost of import dxtrack:   {cost:.1f} ms (goal: at most 30 ms)")
    print(f"boto3 imported by `import dxtrack`: {loaded}")


if __name__ == "__main__":
    main()
