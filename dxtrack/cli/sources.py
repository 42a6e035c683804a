"""Where the command reads records: a stage-test directory, JSON Lines files (plain, gzip or
zstd, named anything), or ``s3://bucket/prefix`` (downloaded once into a local cache).

Each file is sorted into errors or metrics by its first record, and its codec is found from its
first bytes (Firehose objects have whatever extension the stream was given). DuckDB picks the
codec by file extension, so a file whose name says otherwise is read through a symbolic link
with the right one.
"""

from __future__ import annotations

import glob
import gzip
import io
import os
import shutil
import tempfile
import weakref
import zlib
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import orjson

Kind = Literal["error", "metric"]
DEFAULT_SOURCE = ".dxtrack_output"
SKIPPED_PREFIXES = ("delivery-errors/",)
"""Under the template's bucket: what Firehose could not deliver, which is not records."""

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
PARQUET_MAGIC = b"PAR1"
Progress = Callable[[int, int], None]
"""Called with (done, total) objects while an S3 source downloads."""


class SourceError(Exception):
    """The source can't be read: the message says why, for the user."""


def codec_of(head: bytes) -> str:
    """``gzip``, ``zstd``, ``parquet`` (the template's OutputFormat parquet) or ``none``, from
    a file's first bytes."""
    if head.startswith(GZIP_MAGIC):
        return "gzip"
    if head.startswith(ZSTD_MAGIC):
        return "zstd"
    if head.startswith(PARQUET_MAGIC):
        return "parquet"
    return "none"


def parquet_kind(path: Path) -> Kind | None:
    """Which record kind a Parquet file holds, by its columns."""
    import duckdb

    try:
        columns = {
            row[0]
            for row in duckdb.execute(
                "DESCRIBE SELECT * FROM read_parquet(?)", [str(path)]
            ).fetchall()
        }
    except duckdb.Error:
        return None
    return kind_of(dict.fromkeys(columns))


def open_lines(path: Path) -> Iterator[bytes]:
    """The lines of a file, decoded whatever its codec (concatenated members or frames too)."""
    with path.open("rb") as raw:
        codec = codec_of(raw.read(4))
        raw.seek(0)
        if codec == "gzip":
            with gzip.open(raw) as stream:
                yield from stream
        elif codec == "zstd":
            import zstandard

            reader = zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True)
            yield from io.BufferedReader(reader)
        else:
            yield from raw


def first_record(path: Path) -> dict[str, Any] | None:
    """The file's first record, or None when it has none (or is not JSON lines)."""
    try:
        for line in open_lines(path):
            if line.strip():
                value = orjson.loads(line)
                return value if isinstance(value, dict) else None
    except (OSError, ValueError, EOFError, zlib.error):
        return None
    except Exception as exc:  # zstandard's own errors
        if type(exc).__module__.startswith("zstandard"):
            return None
        raise
    return None


def kind_of(record: dict[str, Any]) -> Kind | None:
    """Which view a record belongs to."""
    if "exception" in record:
        return "error"
    if "metric_name" in record:
        return "metric"
    return None


@dataclass
class Files:
    """The files of a source, by kind, as DuckDB should read them."""

    error: list[Path] = field(default_factory=list)
    metric: list[Path] = field(default_factory=list)
    unknown: list[Path] = field(default_factory=list)
    parquet: set[Path] = field(default_factory=set)
    """The files of either kind that are Parquet, not JSON Lines."""

    def of(self, kind: Kind) -> list[Path]:
        """The files of one kind."""
        return self.error if kind == "error" else self.metric


class Source:
    """A place records are read from; ``files()`` looks again each time (new files appear while
    a job runs, new objects while a stream delivers)."""

    def __init__(self, spec: str, *, progress: Progress | None = None) -> None:
        self.spec = spec
        self.progress = progress
        self._scratch: Path | None = None
        self._kinds: dict[tuple[str, int, float], Kind | None] = {}
        """Each file's kind, by name, size and mtime (a file that grows is looked at again)."""
        self._s3: S3Source | None = S3Source(spec) if spec.startswith("s3://") else None

    def __repr__(self) -> str:
        return f"Source({self.spec!r})"

    @property
    def _links(self) -> Path:
        """A directory of this source's own for links and the empty file, removed with it."""
        if self._scratch is None:
            self._scratch = Path(tempfile.mkdtemp(prefix="dxtrack-source-"))
            weakref.finalize(self, shutil.rmtree, self._scratch, True)
        return self._scratch

    @property
    def is_s3(self) -> bool:
        """Whether the records come from a bucket."""
        return self._s3 is not None

    def paths(self) -> list[Path]:
        """Every candidate file, local (S3 objects after they are downloaded)."""
        if self._s3 is not None:
            return self._s3.download(self.progress)
        path = Path(self.spec).expanduser()
        if path.is_dir():
            return [p for p in sorted(path.rglob("*")) if p.is_file() and _is_records(p)]
        if path.is_file():
            return [path]
        if any(ch in self.spec for ch in "*?["):
            matched = glob.glob(os.path.expanduser(self.spec), recursive=True)
            return sorted(Path(p) for p in matched if Path(p).is_file())
        raise SourceError(f"no such file or directory: {self.spec}")

    def files(self) -> Files:
        """The source's files sorted by kind."""
        result = Files()
        for path in self.paths():
            try:
                info = path.stat()
            except OSError:
                continue
            codec = codec_of(_head(path))
            key = (str(path), info.st_size, info.st_mtime)
            if key not in self._kinds:
                self._kinds[key] = (
                    parquet_kind(path) if codec == "parquet" else kind_of(first_record(path) or {})
                )
            kind = self._kinds[key]
            if kind is None:
                result.unknown.append(path)
            elif codec == "parquet":
                result.of(kind).append(path)
                result.parquet.add(path)
            else:
                result.of(kind).append(self._readable(path, codec))
        return result

    def _readable(self, path: Path, codec: str) -> Path:
        """``path`` itself, or a link to it whose extension tells DuckDB the codec."""
        suffix = {"gzip": ".gz", "zstd": ".zst", "none": ""}[codec]
        if path.suffix == suffix or (codec == "none" and path.suffix not in (".gz", ".zst")):
            return path
        link = self._links / (f"{abs(hash(str(path))):x}-{path.name}{suffix or '.jsonl'}")
        if not link.is_symlink():
            link.symlink_to(path.resolve())
        return link

    def empty_file(self) -> Path:
        """An empty file, for a view whose kind has no files yet."""
        empty = self._links / "empty.jsonl"
        empty.touch()
        return empty

    def signature(self) -> tuple[tuple[str, int, int], ...]:
        """What changes when records are added: each file's name, size and mtime."""
        signature = []
        for path in self.paths():
            try:
                info = path.stat()
            except OSError:
                continue
            signature.append((str(path), info.st_size, info.st_mtime_ns))
        return tuple(signature)


def _head(path: Path) -> bytes:
    """A file's first bytes, enough for ``codec_of``."""
    try:
        with path.open("rb") as raw:
            return raw.read(4)
    except OSError:
        return b""


def _is_records(path: Path) -> bool:
    name = path.name
    if name.startswith("."):
        return False
    return (
        name.endswith((".jsonl", ".json", ".gz", ".zst", ".ndjson", ".parquet")) or "." not in name
    )


class S3Source:
    """``s3://bucket/prefix``: objects listed with boto3's usual configuration (credentials,
    region, ``AWS_ENDPOINT_URL``) and downloaded once into the user's cache directory."""

    def __init__(self, spec: str) -> None:
        bucket, _, prefix = spec[len("s3://") :].partition("/")
        if not bucket:
            raise SourceError(f"an S3 source needs a bucket: s3://bucket/prefix, not {spec}")
        self.bucket = bucket
        self.prefix = prefix
        import platformdirs

        root = os.environ.get("DXTRACK_CLI_CACHE") or platformdirs.user_cache_path("dxtrack")
        self.cache = Path(root) / "s3" / bucket

    def _client(self) -> Any:
        import boto3

        return boto3.client("s3")

    def objects(self) -> list[tuple[str, int]]:
        """(key, size) of each object under the prefix."""
        import botocore.exceptions

        try:
            client = self._client()
            pages = client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=self.prefix
            )
            return [
                (item["Key"], item["Size"])
                for page in pages
                for item in page.get("Contents", ())
                if not item["Key"].startswith(SKIPPED_PREFIXES) and not item["Key"].endswith("/")
            ]
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
            raise SourceError(f"cannot list s3://{self.bucket}/{self.prefix}: {exc}") from exc

    def download(self, progress: Progress | None) -> list[Path]:
        """The local copies of the objects, downloading those not yet in the cache (objects
        that Firehose writes never change, so name and size identify them)."""
        objects = self.objects()
        wanted = [(key, size, self.cache / key) for key, size in objects]
        missing = [(k, p) for k, size, p in wanted if not _has(p, size)]
        if missing:
            client = self._client()
            done = 0
            if progress:
                progress(0, len(missing))

            def fetch(item: tuple[str, Path]) -> None:
                key, path = item
                path.parent.mkdir(parents=True, exist_ok=True)
                partial = path.with_name(path.name + ".part")
                client.download_file(self.bucket, key, str(partial))
                partial.replace(path)

            with ThreadPoolExecutor(max_workers=8) as pool:
                for _ in pool.map(fetch, missing):
                    done += 1
                    if progress:
                        progress(done, len(missing))
        return [path for _, _, path in wanted]


def _has(path: Path, size: int) -> bool:
    try:
        return path.stat().st_size == size
    except OSError:
        return False
