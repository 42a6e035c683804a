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
        """A decoder of one zstd frame."""
        return self._zstandard.ZstdDecompressor().decompressobj()  # type: ignore[no-any-return]


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


SUFFIXES: Final = {"none": ".jsonl", "gzip": ".jsonl.gz", "zstd": ".jsonl.zst"}
"""The file name endings of spool segments, by codec: a compressed segment is its members or
frames one after the other, so ``zcat`` or ``zstdcat`` reads it as JSON lines."""
_PIECE = 1 << 16


def codec_of_file(name: str) -> Codec | None:
    """The codec of a segment by its name's ending (None: plain lines); ``ValueError`` when the
    codec can't be had (zstd without the zstandard package)."""
    for codec_name, suffix in SUFFIXES.items():
        if codec_name != "none" and name.endswith(suffix):
            return codec(codec_name)
    return None


def decode_all(codec: Codec, data: bytes) -> tuple[bytes, bool]:
    """The data of consecutive members or frames, and whether they end torn: the last one cut
    short, or a corrupt one (what it decoded before the damage is kept; nothing after it).

    Fed in pieces, so that thousands of small members cost no more than one large one."""
    out: list[bytes] = []
    view = memoryview(data)
    position, left = 0, b""
    piece: bytes | memoryview
    decoder: Decoder | None = None
    while left or position < len(data):
        if decoder is None:
            decoder = codec.decoder()
        if left:
            piece, left = left, b""
        else:
            piece = view[position : position + _PIECE]
            position += len(piece)
        try:
            out.append(decoder.decompress(piece))
        except Exception:  # zlib.error, zstandard.ZstdError: damaged from here on
            return b"".join(out), True
        if decoder.eof:
            left, decoder = decoder.unused_data, None
    return b"".join(out), decoder is not None
