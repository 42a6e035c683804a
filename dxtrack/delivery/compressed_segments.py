"""Reading compressed spool segments: gzip members or zstd frames of whole JSON lines, one after
the other, read back as far as they can be.

A whole member is kept only once it has ended with its checksum verified. A damaged one is
skipped up to the next member's first bytes, and its records are counted by an estimate; a member
cut short at the end of the file (a write torn by a crash) gives the lines it holds (zstd: those
of its whole blocks).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from dxtrack.delivery.compression import Codec, codec

SUFFIXES: Final = {"none": ".jsonl", "gzip": ".jsonl.gz", "zstd": ".jsonl.zst"}
"""The file name endings of spool segments, by codec: ``zcat`` or ``zstdcat`` reads a compressed
one as JSON lines."""
PIECE: Final = 16 * 1024
"""Input is fed in pieces this large: what follows a member's end is copied once, within its
piece, so reading many small members costs in proportion to their number, not to it squared."""
BYTES_PER_RECORD: Final = 40
"""About what a metric record takes in a compressed segment: the estimate of a damaged one's
records when no other member in its segment tells better."""


class TooLarge(ValueError):
    """A segment that holds more than the reader's limit of records: not one dxtrack wrote."""


@dataclass
class Member:
    """One member or frame read back."""

    data: bytes
    """Its JSON lines."""
    raw: bytes | None
    """Its bytes in the file; None when it was cut short (a torn write)."""


@dataclass
class Decoded:
    """What a segment holds."""

    members: list[Member]
    """The members read, whole or the last one cut short; damaged ones left out ..."""
    damaged: int = 0
    """... their compressed bytes ..."""
    stretches: int = 0
    """... in this many places."""
    whole: int = 0
    """Compressed bytes of the members read whole."""

    def damaged_records(self, lines: int) -> int:
        """An estimate of the records lost to damage: the damaged bytes at the rate of lines
        per byte of the rest (``lines`` of ``whole`` bytes), else at ``BYTES_PER_RECORD``; at
        least one per stretch."""
        if not self.stretches:
            return 0
        if self.whole and lines:
            return max(self.stretches, round(self.damaged * lines / self.whole))
        return max(self.stretches, self.damaged // BYTES_PER_RECORD)


def codec_of_file(name: str) -> Codec | None:
    """The codec of a segment by its name's ending (None: plain lines); ``ValueError`` when the
    codec can't be had (zstd without the zstandard package)."""
    for codec_name, suffix in SUFFIXES.items():
        if codec_name != "none" and name.endswith(suffix):
            return codec(codec_name)
    return None


def decode_all(codec: Codec, data: bytes, limit: int) -> Decoded:
    """Every member of ``data`` that can be read; ``TooLarge`` past ``limit`` bytes of lines."""
    found = Decoded([])
    start = 0
    view = memoryview(data)
    while start < len(data):
        chunks, end = _member(codec, view, start, limit)
        following = -1
        if end is None or end < 0:  # damaged, or cut short: is another member behind it?
            following = data.find(codec.magic, start + 1)
        if end is None or (end < 0 and following >= 0):
            following = len(data) if following < 0 else following
            found.damaged += following - start
            found.stretches += 1
            start = following
            continue
        limit -= sum(len(chunk) for chunk in chunks)
        if end < 0:
            found.members.append(Member(b"".join(chunks), None))
            break
        found.members.append(Member(b"".join(chunks), data[start:end]))
        found.whole += end - start
        start = end
    return found


def _member(
    codec: Codec, view: memoryview, start: int, limit: int
) -> tuple[list[bytes], int | None]:
    """The output of the member at ``start`` and where it ends: -1 when the data ends first,
    None when it is damaged (then no output); ``TooLarge`` past ``limit`` bytes of output."""
    decoder = codec.decoder()
    chunks: list[bytes] = []
    position = start
    while position < len(view):
        piece = view[position : position + PIECE]
        position += len(piece)
        try:
            chunks.append(decoder.decompress(piece))
        except Exception:  # zlib.error, zstandard.ZstdError: a bad header, data or checksum
            return [], None
        limit -= len(chunks[-1])
        if limit < 0:
            raise TooLarge("holds more records than a spool segment of dxtrack's")
        if decoder.eof:
            return chunks, position - len(decoder.unused_data)
    return chunks, -1
