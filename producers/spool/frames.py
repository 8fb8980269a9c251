"""The spool's on-disk record frame: encoding, validation, recovery scan, and reading.

Pure functions over bytes plus one reader over a segment file; `producers.spool.spool` and
`producers.spool.recovery` call them. All integers are little-endian.

    offset  size  field
    0       4     magic  D3 50 46 53  ("\\xd3PFS"), marks a frame start for resync
    4       4     crc    zlib.crc32 of bytes 8 .. end of payload
    8       4     length payload length
    12      8     seq    sequence number, unique and increasing within the spool
    20      8     appended_at, milliseconds since the Unix epoch
    28      1     class  RecordClass code (1 KEEP, 2 DROPPABLE)
    29      n     payload, opaque (an Avro single-object message)

The CRC covers the length, so a damaged length field fails the check instead of sending
the reader astray.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Final, NamedTuple

from producers.errors import FrameError as FrameError  # defined there; importable here too

MAGIC: Final = b"\xd3PFS"
HEADER_BYTES: Final = 29
MAX_PAYLOAD: Final = 2**32 - 1
_HEAD: Final = struct.Struct("<4sI")
_BODY: Final = struct.Struct("<IQQB")
_FULL: Final = struct.Struct("<4sIIQQB")
_READ_CHUNK: Final = 1024 * 1024
_FIRST_CHUNK: Final = 32 * 1024


class Frame(NamedTuple):
    """A valid frame at `offset`; `length` is the whole frame, header included.
    (A NamedTuple: recovery and peek make one per record.)"""

    offset: int
    length: int
    seq: int
    appended_ms: int
    record_class: int

    @property
    def end(self) -> int:
        return self.offset + self.length


@dataclass(frozen=True, slots=True)
class ScanResult:
    """Valid frames of one segment and the byte runs that were not valid frames.

    `corrupt` runs lie between valid frames; `tail` is the run from the last valid frame
    to the end of the file (torn write or garbage), None when the file ends cleanly.
    `dropped_records` counts frame markers seen in dropped runs, at least one per run.
    """

    frames: list[Frame]
    corrupt: list[tuple[int, int]]
    tail: tuple[int, int] | None
    dropped_records: int

    @property
    def dropped_bytes(self) -> int:
        runs = self.corrupt + ([self.tail] if self.tail else [])
        return sum(end - start for start, end in runs)


def encode_frames(
    entries: Sequence[tuple[int, int, bytes]], appended_ms: int
) -> tuple[bytes, list[int]]:
    """Frames for `(seq, class code, payload)` entries, joined, and each frame's length."""
    parts: list[bytes] = []
    lengths: list[int] = []
    pack_body = _BODY.pack
    pack_head = _HEAD.pack
    crc32 = zlib.crc32
    for seq, code, payload in entries:
        body = pack_body(len(payload), seq, appended_ms, code)
        parts.append(pack_head(MAGIC, crc32(payload, crc32(body))))
        parts.append(body)
        parts.append(payload)
        lengths.append(HEADER_BYTES + len(payload))
    return b"".join(parts), lengths


def parse_at(data: bytes | memoryview, pos: int, min_seq: int, code: int) -> Frame | None:
    """The frame at `pos` if it is complete, has a valid CRC, the expected class code and
    a sequence number of at least `min_seq`; None otherwise."""
    n = len(data)
    if n - pos < HEADER_BYTES:
        return None
    magic, crc, length, seq, appended_ms, got_code = _FULL.unpack_from(data, pos)
    end = pos + HEADER_BYTES + length
    if magic != MAGIC or end > n or got_code != code or seq < min_seq:
        return None
    if zlib.crc32(memoryview(data)[pos + 8 : end]) != crc:
        return None
    return Frame(pos, HEADER_BYTES + length, seq, appended_ms, got_code)


def scan(data: bytes, base_seq: int, code: int) -> ScanResult:
    """Every valid frame of a segment's bytes, resynchronising after bad bytes.

    Called by recovery on open. A frame that fails validation is skipped by searching
    forward for the next magic marker that starts a valid frame with a higher sequence
    number; if none is found, everything from the bad frame on is the torn tail.
    """
    frames: list[Frame] = []
    corrupt: list[tuple[int, int]] = []
    tail: tuple[int, int] | None = None
    dropped_records = 0
    view = memoryview(data)
    n = len(data)
    pos = 0
    min_seq = base_seq
    while pos < n:
        frame = parse_at(view, pos, min_seq, code)
        if frame is not None:
            frames.append(frame)
            min_seq = frame.seq + 1
            pos = frame.end
            continue
        nxt = _resync(view, data, pos + 1, min_seq, code)
        stop = n if nxt is None else nxt
        dropped_records += max(1, data.count(MAGIC, pos, stop))
        if nxt is None:
            tail = (pos, n)
            break
        corrupt.append((pos, nxt))
        pos = nxt
    return ScanResult(frames, corrupt, tail, dropped_records)


def _resync(view: memoryview, data: bytes, start: int, min_seq: int, code: int) -> int | None:
    """Offset of the next valid frame at or after `start`, or None."""
    while True:
        candidate = data.find(MAGIC, start)
        if candidate < 0:
            return None
        if parse_at(view, candidate, min_seq, code) is not None:
            return candidate
        start = candidate + 1


def read_frames(
    path: Path, start: int, end: int, code: int, chunk: int = _READ_CHUNK
) -> Iterator[tuple[Frame, bytes]]:
    """Frames and payloads of `path` between `start` and `end`, read in chunks.

    Called by `Spool.peek()` on regions that recovery or `append_many()` validated;
    raises `FrameError` if the bytes changed under it (disk corruption, another writer).
    """
    unpack = _FULL.unpack_from
    crc32 = zlib.crc32
    step = min(_FIRST_CHUNK, chunk)  # doubles up to `chunk`: short peeks read little
    with open(path, "rb") as f:
        f.seek(start)
        buf = b""
        view = memoryview(buf)
        base = start  # file offset of buf[0]
        pos = start
        while pos < end:
            rel = pos - base
            if len(buf) - rel < HEADER_BYTES:
                buf, base, rel = _refill(f, buf, rel, pos, HEADER_BYTES, end, step)
                view = memoryview(buf)
                step = min(2 * step, chunk)
            magic, crc, length, seq, appended_ms, got = unpack(buf, rel)
            length += HEADER_BYTES
            if len(buf) - rel < length:
                buf, base, rel = _refill(f, buf, rel, pos, length, end, step)
                view = memoryview(buf)
                step = min(2 * step, chunk)
            if (
                magic != MAGIC
                or got != code
                or pos + length > end
                or crc32(view[rel + 8 : rel + length]) != crc
            ):
                raise FrameError(f"{path}: no valid frame at offset {pos}")
            yield Frame(pos, length, seq, appended_ms, code), buf[rel + HEADER_BYTES : rel + length]
            pos += length


def _refill(
    f: BinaryIO, buf: bytes, rel: int, pos: int, need: int, end: int, chunk: int
) -> tuple[bytes, int, int]:
    """Keep the unread part of `buf` (from `rel`, file offset `pos`) and read on until
    at least `need` bytes are buffered, up to a chunk but never past `end`."""
    if end - pos < need:
        raise FrameError(f"segment region ends inside a frame at offset {pos}")
    chunks = [buf[rel:]]
    have = len(chunks[0])
    want = min(max(need, chunk), end - pos)
    while have < want:
        more = f.read(want - have)
        if not more:
            break
        chunks.append(more)
        have += len(more)
    if have < need:
        raise FrameError(f"file ends inside a frame at offset {pos}")
    return b"".join(chunks), pos, 0


def read_header(path: Path, offset: int) -> tuple[int, int]:
    """(seq, appended_ms) of the frame header at `offset` of `path`."""
    with open(path, "rb") as f:
        f.seek(offset)
        raw = f.read(HEADER_BYTES)
    if len(raw) < HEADER_BYTES or raw[:4] != MAGIC:
        raise FrameError(f"{path}: no frame header at offset {offset}")
    _, _, _, seq, appended_ms, _ = _FULL.unpack_from(raw)
    return seq, appended_ms
