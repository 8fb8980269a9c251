"""The upload body between a site collector and the gateway.

A batch is the concatenation of frames `u32 big-endian length | message`, each message an
Avro single-object record; the whole body is gzip-compressed, and the media type says so
(`Content-Type: application/vnd.printfleet.batch+gzip`). Not `Content-Encoding: gzip`:
aiohttp would inflate that before the gateway could bound the inflated size. Length-prefixed frames let the gateway split a batch without
decoding it, and compressing the batch as a whole is what makes small heartbeats cheap:
their envelopes repeat from record to record.

Two headers name what a batch is, so that any gateway recognises a batch sent again:
`Printfleet-Uploader` (the collector's id, made once per spool) and `Printfleet-Sequence`
(the spool's sequence number of each record, in order, as ranges: `7-9,12`). An
uploader's numbers only grow, so a record at or below the highest number a gateway
acknowledged for that uploader is a repeat (see producers/gateway/uploads.py).
"""

from __future__ import annotations

import gzip
import struct
import zlib
from collections.abc import Iterable

from producers.errors import FramingError as FramingError  # defined there; importable here too
from producers.errors import TooLarge as TooLarge
from producers.errors import UploadFormatError

CONTENT_TYPE = "application/vnd.printfleet.batch+gzip"
UPLOADER_HEADER = "Printfleet-Uploader"
SEQUENCE_HEADER = "Printfleet-Sequence"
# Record refusals (the `refused` list of a 200 answer) that can pass later: the collector
# keeps those records aside and sends them again; the rest are refused for good.
KEPT_ASIDE_ERRORS = frozenset({"foreign_device", "unknown_fingerprint"})
_UPLOADER_CHARS = frozenset("0123456789abcdefghijklmnopqrstuvwxyz-")
_LENGTH = struct.Struct(">I")


def encode_batch(messages: Iterable[bytes], compresslevel: int = 6) -> bytes:
    """Frame and gzip `messages`. Called by the collector's uploader."""
    frames = bytearray()
    for message in messages:
        frames += _LENGTH.pack(len(message))
        frames += message
    # mtime=0: the same batch always compresses to the same bytes, so its digest is stable.
    return gzip.compress(bytes(frames), compresslevel=compresslevel, mtime=0)


def decompress(body: bytes, max_bytes: int) -> bytes:
    """Gunzip `body`, refusing to expand past `max_bytes` (a compression bomb).

    Raises TooLarge, or FramingError for bytes that are not gzip.
    """
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(body, max_bytes + 1)
    except zlib.error as exc:
        raise FramingError(f"body is not gzip: {exc}") from None
    if len(out) > max_bytes:
        raise TooLarge(f"body expands to more than {max_bytes} bytes")
    if not inflater.eof:
        raise FramingError("gzip stream is truncated")
    return out


def split_frames(data: bytes, max_records: int) -> list[bytes]:
    """The messages of a decompressed batch. Raises FramingError."""
    messages: list[bytes] = []
    view = memoryview(data)
    offset, end = 0, len(data)
    while offset < end:
        if end - offset < _LENGTH.size:
            raise FramingError(f"truncated frame header at byte {offset}")
        (length,) = _LENGTH.unpack_from(view, offset)
        offset += _LENGTH.size
        if length == 0 or offset + length > end:
            raise FramingError(f"frame at byte {offset - _LENGTH.size} claims {length} bytes")
        messages.append(bytes(view[offset : offset + length]))
        offset += length
        if len(messages) > max_records:
            raise FramingError(f"more than {max_records} records in one batch")
    return messages


def format_sequence(seqs: Iterable[int]) -> str:
    """`[7, 8, 9, 12]` -> `"7-9,12"`: the header of a batch's sequence numbers (ascending)."""
    parts: list[str] = []
    start = previous = None
    for seq in seqs:
        if previous is not None and seq == previous + 1:
            previous = seq
            continue
        if start is not None:
            parts.append(str(start) if start == previous else f"{start}-{previous}")
        start = previous = seq
    if start is not None:
        parts.append(str(start) if start == previous else f"{start}-{previous}")
    return ",".join(parts)


def parse_sequence(text: str, count: int) -> list[int]:
    """The sequence numbers of a batch of `count` records, strictly ascending and positive.
    Raises UploadFormatError."""
    seqs: list[int] = []
    try:
        for part in text.split(","):
            first, _, last = part.strip().partition("-")
            low = int(first)
            high = int(last) if last else low
            if high < low or high - low >= count:
                raise ValueError(part)
            seqs.extend(range(low, high + 1))
            if len(seqs) > count:
                raise ValueError("too many")
    except ValueError:
        raise UploadFormatError(f"{SEQUENCE_HEADER} {text[:80]!r} does not give {count} sequence numbers") from None
    if len(seqs) != count or seqs[0] < 1 or any(b <= a for a, b in zip(seqs, seqs[1:])):
        raise UploadFormatError(f"{SEQUENCE_HEADER} must give {count} ascending numbers from 1 on, one per record")
    return seqs


def check_uploader(uploader: str) -> str:
    """An uploader id as the collector makes it (lowercase letters, digits, '-'; 8 to 64).
    Raises UploadFormatError."""
    if not 8 <= len(uploader) <= 64 or not set(uploader) <= _UPLOADER_CHARS:
        raise UploadFormatError(f"{UPLOADER_HEADER} must be 8 to 64 of a-z, 0-9 and '-'")
    return uploader
