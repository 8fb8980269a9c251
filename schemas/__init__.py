"""The record contract of printfleet: Avro schemas for every kind of record, every version
kept, and the single-object codec that every other package uses.

    from schemas import SchemaRegistry
    registry = SchemaRegistry.load_default()          # once per process, then pass it down
    data = registry.encode("heartbeat", record)       # bytes: C3 01 + fingerprint + body
    decoded = registry.decode(data)                   # Decoded(record, writer, reader)
    records = registry.decode_records("heartbeat", batch)   # a typed topic's hot path

Timestamps are int milliseconds since the epoch (UTC) and dates int days; see
`schemas.timestamps`. What must never be collected is in `schemas.privacy`; realistic
records for tests and demos in `schemas.samples`; the compatibility rules in
`schemas.compat`; the bench in `benchmarks.codec`.
"""

from schemas.codec import HEADER_SIZE, MARKER, Decoded
from schemas.errors import (
    CorruptBodyError,
    DecodeError,
    NotSingleObjectError,
    RecordEncodeError,
    SchemaError,
    SchemaLoadError,
    TrailingBytesError,
    TruncatedBodyError,
    UnexpectedKindError,
    UnknownFingerprintError,
    UnknownSchemaError,
)
from schemas.kinds import ANONYMOUS, CLOUD_KINDS, DEVICE_KINDS, ENVELOPE_FIELDS, KINDS, NAMESPACE
from schemas.loader import EnumType, SchemaVersion
from schemas.registry import SchemaRegistry

__all__ = [
    "ANONYMOUS",
    "CLOUD_KINDS",
    "DEVICE_KINDS",
    "ENVELOPE_FIELDS",
    "HEADER_SIZE",
    "KINDS",
    "MARKER",
    "NAMESPACE",
    "CorruptBodyError",
    "DecodeError",
    "Decoded",
    "EnumType",
    "NotSingleObjectError",
    "RecordEncodeError",
    "SchemaError",
    "SchemaLoadError",
    "SchemaRegistry",
    "SchemaVersion",
    "TrailingBytesError",
    "TruncatedBodyError",
    "UnexpectedKindError",
    "UnknownFingerprintError",
    "UnknownSchemaError",
]
