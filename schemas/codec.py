"""Avro single-object encoding: pure functions over parsed schemas.

A message is `C3 01`, then the 8-byte little-endian CRC-64-AVRO fingerprint of the
writer schema's Parsing Canonical Form, then the Avro binary body (Avro specification,
"Single object encoding"). The registry calls these functions; producers and agents call
the registry.

This module is the single boundary with fastavro's reader and writer: whatever fastavro
raises for a bad record or bad bytes leaves here as a `schemas.errors` type. Flat schemas
take faster paths first (`schemas.flat_writer`, `schemas.columns`), which hand fastavro
whatever they do not vouch for.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from io import BytesIO
from typing import TYPE_CHECKING, Any, Final, Iterable, Mapping, NamedTuple

from fastavro import schemaless_reader, schemaless_writer
from fastavro.read import SchemaResolutionError
from fastavro.schema import fingerprint as _fastavro_fingerprint

from schemas.columns import FlatReader, Refused
from schemas.errors import (
    CorruptBodyError,
    NotSingleObjectError,
    RecordEncodeError,
    TrailingBytesError,
    TruncatedBodyError,
    UnexpectedKindError,
    UnknownFingerprintError,
)

if TYPE_CHECKING:
    from schemas.loader import SchemaVersion

MARKER: Final = b"\xc3\x01"
HEADER_SIZE: Final = 10
# From this many messages on, a flat schema's batch is read column by column
# (`schemas.columns`): below it, the fixed cost of its array operations is more than
# what it saves (measured on heartbeats: even at about 100 a batch, twice as fast at 2,000).
COLUMNS_FROM: Final = 128

# What fastavro's writer raises for a record that does not fit the schema.
_ENCODE_FAILURES: Final = (
    ValueError,
    TypeError,
    KeyError,
    AttributeError,
    IndexError,
    OverflowError,
    struct.error,
)
# What fastavro's reader raises for bytes that are not a body of the writer schema.
# StopIteration: its varint reader signals end of input that way.
_TRUNCATED: Final = (EOFError, StopIteration)
_CORRUPT: Final = (
    ValueError,  # includes UnicodeDecodeError
    IndexError,  # enum or union index out of range
    KeyError,
    TypeError,
    OverflowError,
    MemoryError,
    SchemaResolutionError,
)
_BODY_FAILURES: Final = _TRUNCATED + _CORRUPT


def fingerprint(canonical_form: str) -> bytes:
    """CRC-64-AVRO of a Parsing Canonical Form, as the 8 bytes that go on the wire.

    fastavro returns the hex of the value's little-endian bytes (for the schema `"null"`
    it returns `8a8f25cce724dd63`, the spec's 0x63dd24e7cc258f8a), which is exactly the
    single-object header's byte order; the unit tests check it against the spec vectors.
    """
    return bytes.fromhex(_fastavro_fingerprint(canonical_form, "CRC-64-AVRO"))


def encode(schema: SchemaVersion, record: Mapping[str, Any]) -> bytes:
    """One record as a single-object message. Raises `RecordEncodeError`."""
    if schema.write is not None:
        try:
            return schema.write(record)
        except _ENCODE_FAILURES:
            pass  # fastavro writes it, or says what is wrong with it
    buffer = BytesIO()
    buffer.write(schema.header)
    try:
        schemaless_writer(buffer, schema.parsed, record)
    except _ENCODE_FAILURES as exc:
        raise RecordEncodeError(schema.kind, schema.version, _reason(exc)) from exc
    return buffer.getvalue()


def encode_many(schema: SchemaVersion, records: Iterable[Mapping[str, Any]]) -> list[bytes]:
    """Many records of one schema; one buffer whose header is written once and kept.

    Raises `RecordEncodeError` for the first record that does not fit; the reason names
    its position in the batch.
    """
    header_size = len(schema.header)
    parsed = schema.parsed
    buffer = BytesIO()
    buffer.write(schema.header)
    out: list[bytes] = []
    append = out.append
    index = 0
    write = schema.write
    try:
        for index, record in enumerate(records):
            if write is not None:
                try:
                    append(write(record))
                    continue
                except _ENCODE_FAILURES:
                    pass  # as in `encode`
            schemaless_writer(buffer, parsed, record)
            append(buffer.getvalue())
            buffer.seek(header_size)
            buffer.truncate()
    except _ENCODE_FAILURES as exc:
        raise RecordEncodeError(
            schema.kind, schema.version, f"record {index} of the batch: {_reason(exc)}"
        ) from exc
    return out


class Decoded(NamedTuple):
    """A decoded message: the record, the schema it was written with, and the schema it
    was read as (the same object unless the writer is an older or newer version).
    """

    record: dict[str, Any]
    writer: SchemaVersion
    reader: SchemaVersion

    @property
    def kind(self) -> str:
        return self.writer.kind

    @property
    def version(self) -> int:
        """The writer's version."""
        return self.writer.version


class DecodePlan(NamedTuple):
    """How to read messages of one writer schema; the registry builds one per writer."""

    writer: SchemaVersion
    reader: SchemaVersion
    # None when the reader is the writer: fastavro then skips schema resolution entirely,
    # which is the common and fast case.
    reader_parsed: dict[str, Any] | None
    # Reads a batch column by column: a flat schema read as itself, else None.
    columns: FlatReader | None


def plan(writer: SchemaVersion, reader: SchemaVersion) -> DecodePlan:
    """The plan that reads `writer`'s messages as `reader` (same kind, any versions)."""
    if writer is reader:
        return DecodePlan(writer, reader, None, FlatReader.of(writer.parsed))
    return DecodePlan(writer, reader, reader.parsed, None)


def read_fingerprint(data: bytes) -> bytes:
    """The writer fingerprint a message names. Raises `NotSingleObjectError`."""
    if len(data) < HEADER_SIZE:
        raise NotSingleObjectError(
            f"message of {len(data)} bytes is shorter than the {HEADER_SIZE}-byte header"
        )
    if data[:2] != MARKER:
        raise NotSingleObjectError(f"marker is {bytes(data[:2]).hex()}, expected c301")
    return bytes(data[2:HEADER_SIZE])


def decode(data: bytes, how: DecodePlan) -> Decoded:
    """The record in a message whose header named `how.writer`.

    Raises `TruncatedBodyError`, `TrailingBytesError` or `CorruptBodyError`.
    """
    return _new_decoded(Decoded, (_body(data, how.writer, how.reader_parsed), how.writer, how.reader))


def decode_many(messages: Iterable[bytes], plans: Mapping[bytes, DecodePlan]) -> list[Decoded]:
    """Decode a batch, each message by the plan of its fingerprint.

    Raises, at the first bad message, what `read_fingerprint` and `decode` raise, or
    `UnknownFingerprintError`.
    """
    return _decode_batch(messages, plans, None)


def decode_records(
    messages: Iterable[bytes], plans: Mapping[bytes, DecodePlan], kind: str
) -> list[dict[str, Any]]:
    """The records of a batch that must all be of `kind` (a typed topic's poll).

    Raises what `decode_many` raises, and `UnexpectedKindError` for a message of
    another kind. Skipping the `Decoded` wrapper saves about 6 % per heartbeat. A batch
    of one flat writer schema is read column by column (`schemas.columns`); whatever
    that path refuses is read again record by record, which raises the precise error.
    """
    if isinstance(messages, Sequence) and len(messages) >= COLUMNS_FROM:
        header = messages[0][:HEADER_SIZE]
        how = plans.get(header[2:]) if header[:2] == MARKER else None
        if how is not None and how.columns is not None and how.writer.kind == kind:
            try:
                return how.columns.read(messages, header)
            except Refused:
                pass
    return _decode_batch(messages, plans, kind)


def _decode_batch(
    messages: Iterable[bytes], plans: Mapping[bytes, DecodePlan], kind: str | None
) -> list[Any]:
    # `read_fingerprint` + `decode` per message, inlined: the per-message overhead is
    # all that separates this codec from bare fastavro. With `kind`, bare records.
    out: list[Any] = []
    append = out.append
    # Batches are nearly always one writer schema, so the last header is kept: when the
    # next message starts with the same 10 bytes, marker, length, fingerprint and kind
    # are all known good and the plan is already in locals.
    last_header: bytes | None = None  # never equal to a header, not even an empty message's
    # Globals bound to locals: each global lookup in this loop costs about 1 % of a heartbeat.
    new_stream, read, new_decoded, decoded, header_size = (
        BytesIO, schemaless_reader, _new_decoded, Decoded, HEADER_SIZE
    )
    # Set from the first message's plan before any use (that header never equals None).
    writer: Any = None
    reader: Any = None
    writer_parsed: Any = None
    reader_parsed: Any = None
    for data in messages:
        stream = new_stream(data)
        header = stream.read(header_size)  # also leaves the stream at the body
        if header != last_header:
            how = plans.get(read_fingerprint(data))
            if how is None:
                raise UnknownFingerprintError(header[2:])
            if kind is not None and how.writer.kind != kind:
                raise UnexpectedKindError(kind, how.writer.kind)
            writer, reader, reader_parsed, _ = how
            writer_parsed = writer.parsed
            last_header = header
        try:
            record = read(stream, writer_parsed, reader_parsed)
        except _BODY_FAILURES as exc:
            raise _body_error(writer, exc) from exc
        if stream.tell() != len(data):
            raise _trailing(writer, len(data) - stream.tell())
        append(record if kind is not None else new_decoded(decoded, (record, writer, reader)))
    return out


def _body(data: bytes, writer: SchemaVersion, reader_parsed: dict[str, Any] | None) -> dict[str, Any]:
    stream = BytesIO(data)
    stream.seek(HEADER_SIZE)
    try:
        record = schemaless_reader(stream, writer.parsed, reader_parsed)
    except _BODY_FAILURES as exc:
        raise _body_error(writer, exc) from exc
    if stream.tell() != len(data):
        raise _trailing(writer, len(data) - stream.tell())
    return record  # type: ignore[return-value]  # a record schema always yields a dict


def _body_error(writer: SchemaVersion, exc: BaseException) -> CorruptBodyError:
    if isinstance(exc, _TRUNCATED):
        return TruncatedBodyError(
            f"{writer.kind} v{writer.version}: body ends inside the record ({_reason(exc)})"
        )
    return CorruptBodyError(f"{writer.kind} v{writer.version}: {_reason(exc)}")


def _trailing(writer: SchemaVersion, extra: int) -> TrailingBytesError:
    return TrailingBytesError(f"{writer.kind} v{writer.version}: {extra} bytes left after the record")


# tuple.__new__ builds a NamedTuple without its Python-level __new__: 0.15 µs instead of
# 0.45 µs, a tenth of the framing budget per message.
_new_decoded: Final = tuple.__new__


def _reason(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
