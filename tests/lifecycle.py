"""Harness for the lifecycle tests: a moto server in another process, a TCP proxy in front of
it that the tests switch between ``up``, ``refuse`` and ``blackhole``, child Python programs
that report progress on stdout, and counts of what landed in S3 and what sits in the spool.

Children talk to AWS through the proxy (``AWS_ENDPOINT_URL``); the tests read S3 from the moto
server directly, so that an outage made with the proxy never hides what landed.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import textwrap
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import orjson

ROOT = Path(__file__).resolve().parents[1]
REGION = "eu-west-1"
CONTEXT = "lifecycle"
STAGE = "prod"
_KEEP_DXTRACK = ("DXTRACK_PURE_PYTHON",)  # the test run's own choice, passed on to children


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(
    condition: Callable[[], bool], timeout: float, what: str, interval: float = 0.05
) -> None:
    """Poll ``condition`` until it holds; fail with ``what`` once ``timeout`` has passed."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.1f}s waiting for {what}")
        time.sleep(interval)


# ---- moto in another process -----------------------------------------------------------------


class MotoProcess:
    """``python -m moto.server`` on a free port of its own."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        wait_until(self._answers, timeout, f"moto.server on port {self.port}", interval=0.1)

    def _answers(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"moto.server exited with {self.process.returncode}")
        try:
            with urllib.request.urlopen(f"{self.url}/moto-api/", timeout=1) as answer:
                return bool(answer.status == 200)
        except (OSError, urllib.error.URLError):
            return False

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)

    def client(self, service: str) -> Any:
        """A boto3 client that talks to the moto server directly (never through the proxy)."""
        return boto3.client(
            service,
            region_name=REGION,
            endpoint_url=self.url,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )


# ---- the proxy -------------------------------------------------------------------------------

MODES = ("up", "refuse", "blackhole")


def _reset(sock: socket.socket) -> None:
    """Close ``sock`` with a TCP RST instead of a FIN."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.close()


class Proxy:
    """A TCP proxy in front of ``target``, in threads of the test process.

    ``up`` forwards; ``refuse`` answers every connection, new and existing, with a RST;
    ``blackhole`` accepts and reads, but never forwards or answers (what AWS timing out looks
    like). A switch reaches existing connections within 0.1 s; connections that were
    blackholed are reset when the proxy comes back up (their request was swallowed).
    """

    def __init__(self, target_port: int) -> None:
        self.target = ("127.0.0.1", target_port)
        self.mode = "up"
        self.counts: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(256)
        self._listener.settimeout(0.1)
        self.port = int(self._listener.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._accept_loop, name="proxy-accept", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join(5)
        self._listener.close()

    def set_mode(self, mode: str) -> None:
        assert mode in MODES, mode
        self.mode = mode

    def reset_counts(self) -> None:
        with self._lock:
            self.counts.clear()

    def _count(self, name: str) -> None:
        with self._lock:
            self.counts[name] += 1

    def _accept_loop(self) -> None:
        while not self._stopped.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.setblocking(True)
            if self.mode == "refuse":
                self._count("refused")
                _reset(client)
                continue
            self._count("accepted")
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        upstream: socket.socket | None = None
        blackholed = False
        graceful = False
        try:
            while not self._stopped.is_set():
                mode = self.mode
                if mode == "refuse":
                    self._count("reset")
                    break
                if mode == "blackhole":
                    if not blackholed:
                        self._count("blackholed")
                    blackholed = True
                    if upstream is not None:
                        _reset(upstream)
                        upstream = None
                    readable, _, _ = select.select([client], [], [], 0.1)
                    if readable and not client.recv(65536):
                        graceful = True
                        break
                    continue
                if blackholed:  # its request was swallowed: let the client find out at once
                    self._count("reset")
                    break
                if upstream is None:
                    upstream = socket.create_connection(self.target, timeout=10)
                readable, _, _ = select.select([client, upstream], [], [], 0.1)
                for sock in readable:
                    data = sock.recv(65536)
                    if not data:
                        graceful = True
                        break
                    (upstream if sock is client else client).sendall(data)
                if graceful:
                    break
        except OSError:
            pass
        finally:
            if upstream is not None:
                with contextlib.suppress(OSError):
                    upstream.close()
            if graceful:
                with contextlib.suppress(OSError):
                    client.close()
            else:
                _reset(client)


# ---- streams on the moto server --------------------------------------------------------------


@dataclass
class Lake:
    """A bucket and the two DirectPut streams that write to it, on the moto server."""

    moto: MotoProcess
    bucket: str
    error_stream: str
    metric_stream: str

    @classmethod
    def create(
        cls, moto: MotoProcess, error_stream: str | None = None, metric_stream: str | None = None
    ) -> Lake:
        suffix = uuid.uuid4().hex[:10]
        lake = cls(
            moto, f"lc-{suffix}", error_stream or f"err-{suffix}", metric_stream or f"met-{suffix}"
        )
        moto.client("s3").create_bucket(
            Bucket=lake.bucket, CreateBucketConfiguration={"LocationConstraint": REGION}
        )
        firehose = moto.client("firehose")
        for kind, name in (("error", lake.error_stream), ("metric", lake.metric_stream)):
            firehose.create_delivery_stream(
                DeliveryStreamName=name,
                DeliveryStreamType="DirectPut",
                ExtendedS3DestinationConfiguration={
                    "RoleARN": "arn:aws:iam::123456789012:role/firehose",
                    "BucketARN": f"arn:aws:s3:::{lake.bucket}",
                    "Prefix": f"{kind}/",
                },
            )
        return lake

    def delete_streams(self) -> None:
        """moto allows 50 streams per account and region: give them back after a test."""
        firehose = self.moto.client("firehose")
        for name in (self.error_stream, self.metric_stream):
            with contextlib.suppress(Exception):
                firehose.delete_delivery_stream(DeliveryStreamName=name)

    def env(self) -> dict[str, str]:
        return {
            "DXTRACK_ERROR_STREAM": self.error_stream,
            "DXTRACK_METRIC_STREAM": self.metric_stream,
        }

    def records(self, kind: str | None = None) -> list[dict[str, Any]]:
        """Every record that landed (of ``kind``, else of both kinds), one per copy."""
        s3 = self.moto.client("s3")
        records: list[dict[str, Any]] = []
        for prefix in (f"{kind}/",) if kind else ("error/", "metric/"):
            for page in s3.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=prefix
            ):
                for obj in page.get("Contents", []):
                    body = s3.get_object(Bucket=self.bucket, Key=obj["Key"])["Body"].read()
                    codec = {b"\x1f\x8b": ".gz", b"\x28\xb5": ".zst"}.get(body[:2], "")
                    body, damage = decompressed(f"object.jsonl{codec}", body)
                    assert not damage, f"{obj['Key']}: {damage}"
                    records.extend(orjson.loads(line) for line in body.splitlines() if line)
        return records


class NewObjects:
    """The records of a bucket prefix, reading only the objects not read before: cheap enough
    to poll while records arrive."""

    def __init__(self, s3: Any, bucket: str, prefix: str) -> None:
        self.s3, self.bucket, self.prefix = s3, bucket, prefix
        self.seen: set[str] = set()
        self.records: list[dict[str, Any]] = []

    def poll(self) -> int:
        for page in self.s3.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self.prefix
        ):
            for obj in page.get("Contents", []):
                if obj["Key"] not in self.seen:
                    self.seen.add(obj["Key"])
                    body = self.s3.get_object(Bucket=self.bucket, Key=obj["Key"])["Body"].read()
                    self.records.extend(orjson.loads(line) for line in body.splitlines() if line)
        return len(self.records)


# ---- the spool -------------------------------------------------------------------------------


@dataclass
class SpoolScan:
    """Every line of every ``seg-*.jsonl`` under a spool directory (symlinks not followed)."""

    files: list[Path] = field(default_factory=list)
    records: list[dict[str, Any]] = field(default_factory=list)
    torn: list[str] = field(default_factory=list)
    """A segment's unterminated last line, or a line that is not one JSON object."""

    @property
    def lines(self) -> int:
        return len(self.records)


def decompressed(name: str, data: bytes) -> tuple[bytes, str]:
    """A segment's lines, read by gzip's or zstd's own reader when its name says it is
    compressed (every member or frame), and what was wrong with its end, if anything."""
    if name.endswith(".jsonl"):
        return data, ""
    if name.endswith(".gz"):
        reader: Any = gzip.GzipFile(fileobj=io.BytesIO(data))
    else:
        import zstandard  # not in the other Pythons' venvs, which load this module as a plugin

        reader = zstandard.ZstdDecompressor().stream_reader(
            io.BytesIO(data), read_across_frames=True
        )
    chunks: list[bytes] = []
    try:
        while chunk := reader.read(1 << 16):
            chunks.append(chunk)
    except Exception as exc:  # EOFError, BadGzipFile, zlib.error, ZstdError
        return b"".join(chunks), f"damaged or cut short: {exc}"
    return b"".join(chunks), ""


def read_spool(spool_dir: Path) -> SpoolScan:
    scan = SpoolScan()
    if not os.path.isdir(spool_dir):
        return scan
    for directory, _, names in os.walk(spool_dir):
        for name in sorted(names):
            if name.startswith("seg-") and name.endswith((".jsonl", ".jsonl.gz", ".jsonl.zst")):
                path = Path(directory) / name
                if path.is_symlink():
                    continue
                scan.files.append(path)
                try:
                    data = path.read_bytes()
                except FileNotFoundError:  # deleted by a replayer meanwhile
                    continue
                data, damage = decompressed(name, data)
                if damage:
                    scan.torn.append(f"{path}: {damage}")
                *lines, tail = data.split(b"\n")
                if tail:
                    scan.torn.append(f"{path}: unterminated last line of {len(tail)} bytes")
                for number, line in enumerate(lines, 1):
                    try:
                        record = orjson.loads(line)
                    except orjson.JSONDecodeError:
                        record = None
                    if isinstance(record, dict):
                        scan.records.append(record)
                    else:
                        scan.torn.append(f"{path}:{number}: not a JSON object: {line[:80]!r}")
    return scan


def all_files(directory: Path) -> list[Path]:
    """Every file and directory under ``directory`` (symlinks listed, not followed)."""
    found: list[Path] = []
    for root, dirs, names in os.walk(directory):
        found.extend(Path(root) / name for name in [*dirs, *names])
    return found


# ---- counting --------------------------------------------------------------------------------


@dataclass
class Tally:
    """What became of ``tracked`` records: landed in S3, in the spool, lost, duplicated."""

    name: str
    tracked: int
    landed: int
    landed_unique: int
    landed_duplicates: int
    spooled: int
    spooled_unique: int
    spooled_duplicates: int
    in_both: int
    unique: int
    lost: int
    producers: int
    seq_gaps: dict[str, int]
    extra: dict[str, Any]

    @property
    def copies_beyond_one(self) -> int:
        """Copies of a record past its first, in S3 and the spool together."""
        return self.landed + self.spooled - self.unique

    @property
    def gaps(self) -> int:
        return sum(self.seq_gaps.values())

    def line(self) -> str:
        more = " ".join(f"{k}={v}" for k, v in self.extra.items())
        return (
            f"[lifecycle] {self.name}: tracked={self.tracked} landed={self.landed} "
            f"(unique {self.landed_unique}, dup {self.landed_duplicates}) "
            f"spool={self.spooled} (unique {self.spooled_unique}, dup {self.spooled_duplicates}) "
            f"in_both={self.in_both} lost={self.lost} producers={self.producers} "
            f"seq_gaps={self.gaps} {more}".rstrip()
        )


def tally(
    name: str,
    tracked: int,
    landed: Iterable[dict[str, Any]],
    spooled: Iterable[dict[str, Any]] = (),
    *,
    select: Callable[[dict[str, Any]], bool] | None = None,
    **extra: Any,
) -> Tally:
    """Count and print (``pytest -s`` shows it). ``select`` keeps the records of interest."""
    keep = select or (lambda _record: True)
    in_s3 = [r for r in landed if keep(r)]
    in_spool = [r for r in spooled if keep(r)]
    s3_ids = Counter(r["id"] for r in in_s3)
    spool_ids = Counter(r["id"] for r in in_spool)
    unique = set(s3_ids) | set(spool_ids)
    seqs: dict[str, set[int]] = {}
    for record in [*in_s3, *in_spool]:
        seqs.setdefault(record["producer_id"], set()).add(int(record["seq"]))
    gaps = {producer[:8]: max(s) - len(s) for producer, s in seqs.items() if max(s) > len(s)}
    result = Tally(
        name=name,
        tracked=tracked,
        landed=len(in_s3),
        landed_unique=len(s3_ids),
        landed_duplicates=len(in_s3) - len(s3_ids),
        spooled=len(in_spool),
        spooled_unique=len(spool_ids),
        spooled_duplicates=len(in_spool) - len(spool_ids),
        in_both=len(set(s3_ids) & set(spool_ids)),
        unique=len(unique),
        lost=max(tracked - len(unique), 0),
        producers=len(seqs),
        seq_gaps=gaps,
        extra=extra,
    )
    print("\n" + result.line(), flush=True)
    return result


def seqs_of(records: Iterable[dict[str, Any]]) -> dict[str, set[int]]:
    """The sequence numbers present, per producer."""
    found: dict[str, set[int]] = {}
    for record in records:
        found.setdefault(record["producer_id"], set()).add(int(record["seq"]))
    return found


# ---- child programs --------------------------------------------------------------------------

PRELUDE = '''\
import atexit, json, logging, os, signal, sys, threading, time


def say(*parts: object) -> None:
    """A progress line for the test, on stdout, at once."""
    print(*parts, flush=True)


class _LogLines(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage().replace("\\n", "\\\\n")
        sys.stderr.write(f"LOG {record.levelname} {text}\\n")
        sys.stderr.flush()


logging.getLogger("dxtrack").addHandler(_LogLines())
logging.getLogger("dxtrack").setLevel(logging.INFO)


def stats_at_exit() -> None:
    """Print dxtrack.stats() once every other exit handler (dxtrack's included) has run:
    atexit runs the last registered first, so call this before importing dxtrack."""

    def report() -> None:
        import dxtrack

        say("final-stats " + json.dumps(dxtrack.stats()))

    atexit.register(report)


def steady_load(rate: float, report_every: float = 0.25, name: str = "steady") -> None:
    """Track metrics at ``rate`` a second, for ever, printing "tracked N at T" (T from
    time.monotonic(), the clock the test reads too) every ``report_every`` seconds."""
    import dxtrack

    n = 0
    start = next_report = time.monotonic()
    while True:
        for _ in range(200):
            n += 1
            dxtrack.metric(name, n)
        now = time.monotonic()
        if now >= next_report:
            say(f"tracked {n} at {now:.6f}")
            next_report += report_every
        ahead = start + n / rate - now
        if ahead > 0:
            time.sleep(ahead)
'''


class Child:
    """A child Python program; its stdout and stderr lines are collected as they come."""

    def __init__(
        self,
        path: Path,
        env: dict[str, str],
        cwd: Path,
        args: Iterable[str] = (),
    ) -> None:
        self.path = path
        self.process = subprocess.Popen(
            [sys.executable, str(path), *args],
            env=env,
            cwd=cwd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        self.out: list[tuple[float, str]] = []
        self.err: list[str] = []
        self._changed = threading.Condition()
        self._readers = [
            threading.Thread(target=self._read, args=(self.process.stdout, True), daemon=True),
            threading.Thread(target=self._read, args=(self.process.stderr, False), daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    @property
    def pid(self) -> int:
        return self.process.pid

    def _read(self, stream: Any, is_stdout: bool) -> None:
        for line in stream:
            with self._changed:
                if is_stdout:
                    self.out.append((time.monotonic(), line.rstrip("\n")))
                else:
                    self.err.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def describe(self) -> str:
        out = "\n".join(line for _, line in self.out[-15:])
        err = "\n".join(self.err[-30:])
        return f"{self.path.name} (pid {self.pid}, rc {self.process.poll()})\n{out}\n--\n{err}"

    def wait_for(
        self, prefix: str, timeout: float, accept: Callable[[str], bool] | None = None
    ) -> str:
        """The first stdout line that starts with ``prefix`` (and that ``accept`` takes)."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for _, line in self.out:
                    if line.startswith(prefix) and (accept is None or accept(line)):
                        return line
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no {prefix!r} within {timeout}s: {self.describe()}")
                if self.process.poll() is not None and not any(r.is_alive() for r in self._readers):
                    raise AssertionError(f"exited before {prefix!r}: {self.describe()}")
                self._changed.wait(min(left, 0.1))

    def lines(self, prefix: str) -> list[str]:
        with self._changed:
            return [line for _, line in self.out if line.startswith(prefix)]

    def value(self, prefix: str) -> Any:
        """The JSON after ``prefix`` on the last line that starts with it."""
        found = self.lines(prefix + " ")
        assert found, f"no {prefix!r} line: {self.describe()}"
        return json.loads(found[-1][len(prefix) + 1 :])

    def log_lines(self, containing: str) -> list[str]:
        """The ``dxtrack`` logger's lines (on stderr) that contain ``containing``."""
        with self._changed:
            return [line for line in self.err if line.startswith("LOG ") and containing in line]

    def send(self, text: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(text + "\n")
        self.process.stdin.flush()

    def signal(self, signum: int) -> None:
        os.kill(self.pid, signum)

    def rss_kib(self) -> int:
        """VmRSS of the child now, in KiB."""
        with open(f"/proc/{self.pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise AssertionError("no VmRSS")

    def wait(self, timeout: float) -> int:
        """Wait for the exit and for the last output; the return code."""
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"still running after {timeout}s: {self.describe()}") from None
        for reader in self._readers:
            reader.join(5)
        return code

    def kill(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
            self.process.wait(10)


class Runner:
    """Starts the children of one test, with the environment of the scenario, and kills any
    still running when the test ends."""

    def __init__(self, directory: Path, proxy: Proxy, spool_dir: Path, lake: Lake | None) -> None:
        self.directory = directory
        self.proxy = proxy
        self.spool_dir = spool_dir
        self.lake = lake
        self.children: list[Child] = []
        self._programs = 0

    def env(self, overrides: dict[str, str | None] | None = None) -> dict[str, str]:
        base = {
            k: v
            for k, v in os.environ.items()
            if not (k.startswith("DXTRACK_") and k not in _KEEP_DXTRACK)
            and not k.startswith("AWS_")
        }
        base.update(
            PYTHONPATH=str(ROOT),
            PYTHONUNBUFFERED="1",
            AWS_ENDPOINT_URL=self.proxy.url,
            AWS_ACCESS_KEY_ID="testing",
            AWS_SECRET_ACCESS_KEY="testing",
            AWS_DEFAULT_REGION=REGION,
            AWS_CONFIG_FILE=os.devnull,
            AWS_SHARED_CREDENTIALS_FILE=os.devnull,
            AWS_EC2_METADATA_DISABLED="true",
            DXTRACK_CONTEXT=CONTEXT,
            DXTRACK_STAGE=STAGE,
            DXTRACK_SPOOL_DIR=str(self.spool_dir),
        )
        if self.lake is not None:
            base.update(self.lake.env())
        for key, value in (overrides or {}).items():
            if value is None:
                base.pop(key, None)
            else:
                base[key] = value
        return base

    def start(
        self,
        code: str,
        env: dict[str, str | None] | None = None,
        args: Iterable[str] = (),
        name: str = "child",
    ) -> Child:
        self._programs += 1
        path = self.directory / f"{name}_{self._programs}.py"
        path.write_text(PRELUDE + "\n" + textwrap.dedent(code))
        child = Child(path, self.env(env), self.directory, args)
        self.children.append(child)
        return child

    def run(
        self,
        code: str,
        env: dict[str, str | None] | None = None,
        args: Iterable[str] = (),
        timeout: float = 20.0,
        name: str = "child",
    ) -> Child:
        """Start a child and wait for its exit; it must exit with 0."""
        child = self.start(code, env, args, name=name)
        code_ = child.wait(timeout)
        assert code_ == 0, f"exit status {code_}: {child.describe()}"
        return child

    def stop_all(self) -> None:
        for child in self.children:
            child.kill()


@contextlib.contextmanager
def outage(proxy: Proxy, mode: str = "refuse") -> Iterator[None]:
    """The proxy in ``mode`` for the block; up again after it."""
    proxy.set_mode(mode)
    try:
        yield
    finally:
        proxy.set_mode("up")
