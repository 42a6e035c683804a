"""The built sdist and wheel as a new user meets them.

    python .ci/check_package.py DIST_DIR

- the sdist holds the tests with their helpers, infra/, examples/, the C sources with their
  headers and the LICENSE, and no build output;
- the wheel holds the package data (schemas, SQL, the dashboard's files), the compiled modules
  and the LICENSE;
- installed into a fresh venv without extras, a small job records in stage test, and the
  `dxtrack` command says how to get the `cli` extra; with the extra, the command reads what the
  job wrote and writes a report.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import tempfile
import venv
import zipfile
from pathlib import Path

JOB = """
import dxtrack
dxtrack.configure()
for i in range(5):
    try:
        raise ValueError(f"bad row {i}")
    except ValueError:
        dxtrack.error()
    dxtrack.metric("rows", i)
"""


def check(condition: bool, message: str) -> None:
    if not condition:
        sys.exit(f"package check failed: {message}")


def main() -> None:
    dist = Path(sys.argv[1])
    [sdist] = dist.glob("*.tar.gz")
    [wheel] = dist.glob("*.whl")
    with tarfile.open(sdist) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    for needed in (
        "LICENSE",
        "tests/conftest.py",
        "tests/aws.py",
        "tests/cli_data.py",
        "infra/dxtrack.yaml",
        "examples/job.py",
        "dxtrack/sql/duckdb/views.sql",
        "dxtrack/dashboard/static/app.js",
        "dxtrack/_hotpath.c",
        "dxtrack/_event_buffer.c",
        "dxtrack/_event_buffer.h",
        "dxtrack/_build.c",
        "dxtrack/vendor/xxhash.h",
        "Makefile",
    ):
        check(needed in names, f"the sdist lacks {needed}")
    check(not any(n.endswith(".so") or "__pycache__" in n for n in names), "build output in sdist")
    with zipfile.ZipFile(wheel) as archive:
        members = set(archive.namelist())
    for needed in (
        "dxtrack/schemas/error.schema.json",
        "dxtrack/sql/duckdb/error_groups.sql",
        "dxtrack/sql/athena/tables_json.sql",
        "dxtrack/dashboard/static/index.html",
        "dxtrack/py.typed",
    ):
        check(needed in members, f"the wheel lacks {needed}")
    for module in ("_hotpath", "_build"):  # optional at install: a missing header skips them
        check(
            any(m.startswith(f"dxtrack/{module}.") and m.endswith(".so") for m in members),
            f"the wheel lacks the compiled dxtrack.{module}",
        )
    check(any(m.endswith(".dist-info/licenses/LICENSE") for m in members), "no LICENSE in wheel")

    with tempfile.TemporaryDirectory(prefix="dxtrack-package-") as tmp:
        root = Path(tmp)
        venv.create(root / "venv", with_pip=True)
        python = str(root / "venv" / "bin" / "python")
        pip = [python, "-m", "pip", "install", "-q"]
        subprocess.run([*pip, str(wheel)], check=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DXTRACK_", "VIRTUAL_ENV"))}
        env.update(
            DXTRACK_STAGE="test",
            DXTRACK_CONTEXT="package-check",
            DXTRACK_OUTPUT_DIR=str(root / "out"),
        )
        subprocess.run([python, "-c", JOB], check=True, env=env, cwd=root)
        lines = (root / "out" / "error.jsonl").read_text().splitlines()
        check(len(lines) == 5, f"the job wrote {len(lines)} error records, not 5")
        command = str(root / "venv" / "bin" / "dxtrack")
        bare = subprocess.run([command, "errors"], capture_output=True, text=True, env=env)
        check(
            bare.returncode == 2 and "pip install 'dxtrack[cli]'" in bare.stderr,
            f"without the extra, the command says: {bare.stderr!r}",
        )
        subprocess.run([*pip, f"{wheel}[cli]"], check=True)
        shown = subprocess.run(
            [command, "errors", "--json", "--source", str(root / "out")],
            capture_output=True,
            text=True,
            env=env,
            check=True,
        )
        groups = json.loads(shown.stdout)
        check([g["occurrences"] for g in groups] == [5], f"dxtrack errors gave {groups}")
        report = root / "report.html"
        subprocess.run(
            [command, "report", "--source", str(root / "out"), "--out", str(report)],
            check=True,
            env=env,
            capture_output=True,
        )
        check("dxtrack-snapshot" in report.read_text(), "the report holds no data")
    print(f"package check: {sdist.name} and {wheel.name} are complete, install and run")


if __name__ == "__main__":
    main()
