"""The upload body between a site collector and the gateway.

A batch is the concatenation of frames `u32 big-endian length | message`, each message an
Avro single-object record; the whole body is gzip-compressed, and the media type says so
(`Content-Type: application/vnd.printfleet.batch+gzip`). Not `Content-Encoding: gzip`:
aiohttp would inflate that before the gateway could bound the inflated size. Length-prefixed frames let the gateway split a batch without
decoding it, and compressing the batch as a whole is what makes small heartbeats cheap:
their envelopes repeat from record to record.
"""

from __future__ import annotations

import gzip
import hashlib
import struct
import zlib
from collections.abc import Iterable

from producers.errors import FramingError as FramingError  # defined there; importable here too
from producers.errors import TooLarge as TooLarge

CONTENT_TYPE = "application/vnd.printfleet.batch+gzip"
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


def batch_digest(frames: bytes) -> bytes:
    """A digest naming a batch by its decompressed frames, for recognising a retry."""
    return hashlib.blake2b(frames, digest_size=16).digest()
