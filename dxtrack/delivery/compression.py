"""Compressed items: each one complete gzip member or zstd frame of whole JSON lines.

Firehose concatenates the records of a stream into S3 objects, and concatenated gzip members
(or zstd frames) decode as one stream, so an object reads as plain JSON lines to any consumer
that knows the codec (Athena and DuckDB pick it by file extension). Compressing is fast levels
only: JSON lines of records compress well at any level, and the shipper's CPU counts.
"""

from __future__ import annotations

import threading
import zlib
from typing import Any, Final, Protocol

NAMES: Final = ("none", "gzip", "zstd")
GZIP_LEVEL: Final = 1
ZSTD_LEVEL: Final = 1


class Codec(Protocol):
    """Compresses one item into one self-contained member or frame, and back."""

    name: str
    magic: bytes
    """The bytes every member or frame begins with."""

    def compress(self, data: bytes) -> bytes:
        """``data`` as one complete member or frame."""
        ...

    def decompress(self, data: bytes) -> bytes:
        """What ``compress`` was given."""
        ...

    def decoder(self) -> Decoder:
        """A new decoder of one member or frame, fed in pieces."""
        ...


class Decoder(Protocol):
    """zlib's decompress object, and zstandard's, which has the same shape."""

    @property
    def eof(self) -> bool:
        """Whether the member or frame has ended."""
        ...

    @property
    def unused_data(self) -> bytes:
        """What was fed past its end."""
        ...

    def decompress(self, data: bytes | memoryview) -> bytes:
        """The output of one more piece of the member or frame."""
        ...


class Gzip:
    """gzip members: from python-isal (Intel's ISA-L, about five times faster) when it is
    installed (``dxtrack[isal]``), else from the standard library's zlib."""

    name = "gzip"
    magic = b"\x1f\x8b\x08"

    def __init__(self) -> None:
        try:
            from isal import isal_zlib

            self._isal: Any = isal_zlib
        except ImportError:
            self._isal = None

    def compress(self, data: bytes) -> bytes:
        """One gzip member."""
        if self._isal is not None:
            return self._isal.compress(data, GZIP_LEVEL, wbits=31)  # type: ignore[no-any-return]
        compressor = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 31)
        return compressor.compress(data) + compressor.flush()

    def decompress(self, data: bytes) -> bytes:
        """The data of one gzip member."""
        return zlib.decompress(data, 31)

    def decoder(self) -> Decoder:
        """A decoder of one gzip member."""
        return zlib.decompressobj(31)


class Zstd:
    """zstd frames with their content size and a checksum, from the zstandard package."""

    name = "zstd"
    magic = b"\x28\xb5\x2f\xfd"

    def __init__(self) -> None:
        import zstandard

        self._zstandard: Any = zstandard
        self._local = threading.local()  # a compressor is not for two threads at once

    def _contexts(self) -> tuple[Any, Any]:
        contexts = getattr(self._local, "contexts", None)
        if contexts is None:
            zstandard = self._zstandard
            contexts = (
                zstandard.ZstdCompressor(level=ZSTD_LEVEL, write_checksum=True),
                zstandard.ZstdDecompressor(),
            )
            self._local.contexts = contexts
        return contexts

    def compress(self, data: bytes) -> bytes:
        """One zstd frame."""
        return self._contexts()[0].compress(data)  # type: ignore[no-any-return]

    def decompress(self, data: bytes) -> bytes:
        """The data of one zstd frame."""
        return self._contexts()[1].decompress(data)  # type: ignore[no-any-return]

    def decoder(self) -> Decoder:
        """A decoder of one zstd frame, on this thread's decompression context: a
        ``decompress()`` on the same thread before it is done would reset it."""
        return self._contexts()[1].decompressobj()  # type: ignore[no-any-return]


def codec(name: str) -> Codec | None:
    """The codec called ``name`` (None for ``"none"``); ``ValueError`` when it can't be had."""
    if name == "none":
        return None
    if name == "gzip":
        return Gzip()
    if name == "zstd":
        try:
            return Zstd()
        except ImportError:
            raise ValueError(
                "compression='zstd' needs the zstandard package: pip install 'dxtrack[zstd]'"
            ) from None
    raise ValueError(f"compression must be one of {', '.join(NAMES)}, got {name!r}")
