"""Each segment's index: what was appended to it, kept apart from its frames.

`<segment>.idx` beside each segment file holds one 24-byte entry per frame the segment
was given, little-endian:

    offset  size  field
    0       8     seq     the frame's sequence number
    8       10    prefix  the first 10 bytes of its payload (for an Avro single-object
                          record: the marker and the schema fingerprint, which names the
                          kind)
    18      2     -       zero
    20      4     crc     zlib.crc32 of bytes 0..20

Entries are appended after the frames they describe were written (and fsynced), so an
entry names a frame the spool once held. When frames are lost (a file cut short, a torn
write, bad storage), recovery counts the entries above the acked watermark that have no
valid frame any more: the exact number of records lost, and of which kind. Recovery then
writes the index anew from the surviving frames.
"""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Iterable
from pathlib import Path
from typing import Final

ENTRY: Final = struct.Struct("<Q10s2xI")
PREFIX_BYTES: Final = 10
SUFFIX: Final = ".idx"


def index_path(segment: Path) -> Path:
    return segment.with_name(segment.name + SUFFIX)


def encode(entries: Iterable[tuple[int, bytes]]) -> bytes:
    """Entries for `(seq, payload)` pairs, joined."""
    parts = []
    for seq, payload in entries:
        head = struct.pack("<Q10s2x", seq, payload[:PREFIX_BYTES])
        parts.append(head + zlib.crc32(head).to_bytes(4, "little"))
    return b"".join(parts)


def read(path: Path) -> dict[int, bytes] | None:
    """seq -> payload prefix of every valid entry of `path`; None when there is no such
    file (a segment written before indexes, or its index lost). Entries with a bad CRC
    and a torn last entry are left out."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    out = {}
    for at in range(0, len(data) - ENTRY.size + 1, ENTRY.size):
        seq, prefix, crc = ENTRY.unpack_from(data, at)
        if zlib.crc32(data[at : at + ENTRY.size - 4]) == crc:
            out[seq] = prefix
    return out


def write(path: Path, data: bytes, *, fsync: bool) -> None:
    """Replace `path` with `data` (tmp, fsync, rename)."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        if fsync:
            os.fsync(f.fileno())
    os.replace(tmp, path)
