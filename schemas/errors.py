"""Errors of the `schemas` package.

Every error the registry and the codec raise is a `SchemaError`, under printfleet's
root `PrintfleetError` (common/errors.py); each leaf says whether retrying the same call
can succeed (`retriable`). None can: the same bytes or the same record fail the same way
every time, so callers dead-letter the message or fix the code.

    PrintfleetError                      common/errors.py
    └── SchemaError
        ├── SchemaLoadError              a kept .avsc file is unreadable or inconsistent
        ├── UnknownSchemaError           no such kind, or no such version of a kind
        ├── RecordEncodeError            a record does not fit its writer schema
        └── DecodeError                  bytes that are not a record this registry can read
            ├── NotSingleObjectError     no C3 01 marker, or shorter than the 10-byte header
            ├── UnknownFingerprintError  the writer schema is none of the kept versions
            ├── UnexpectedKindError      a typed batch holds a message of another kind
            └── CorruptBodyError         the Avro body does not decode
                ├── TruncatedBodyError   the body ends inside the record
                └── TrailingBytesError   bytes are left over after the record

fastavro's own exceptions never leave the package: `codec.py` translates them at its
single boundary with fastavro.
"""

from __future__ import annotations

from common.errors import PrintfleetError


class SchemaError(PrintfleetError):
    """Root of every error raised by `schemas`."""

    retriable: bool = False


class SchemaLoadError(SchemaError):
    """A kept schema file is missing, unparsable, misnamed, or collides with another.

    Raised while a `SchemaRegistry` is built (at process start); it means the package
    itself is broken, never the data.
    """

    retriable = False


class UnknownSchemaError(SchemaError):
    """The caller asked for a kind, or a version of a kind, that the registry lacks."""

    retriable = False

    def __init__(self, kind: str, version: int | None = None) -> None:
        self.kind = kind
        self.version = version
        what = f"kind {kind!r}" if version is None else f"version {version} of kind {kind!r}"
        super().__init__(f"no schema for {what}")


class RecordEncodeError(SchemaError):
    """A record does not fit the writer schema: a field missing, of the wrong type, or
    an enum symbol the schema does not list. The producer has a bug; nothing was encoded.
    """

    retriable = False

    def __init__(self, kind: str, version: int, reason: str) -> None:
        self.kind = kind
        self.version = version
        self.reason = reason
        super().__init__(f"cannot encode {kind} v{version}: {reason}")


class DecodeError(SchemaError):
    """Bytes that this registry cannot turn into a record. Dead-letter the message."""

    retriable = False


class NotSingleObjectError(DecodeError):
    """The bytes are not Avro single-object encoded: the `C3 01` marker is missing or the
    message is shorter than the 10-byte header (marker and fingerprint).
    """

    retriable = False


class UnknownFingerprintError(DecodeError):
    """The message names a writer schema whose fingerprint no kept version has.

    `fingerprint` holds the 8 bytes as they are on the wire (little-endian); the message
    shows them as hex in wire order and as the spec's 64-bit CRC-64-AVRO value.
    """

    retriable = False

    def __init__(self, fingerprint: bytes) -> None:
        self.fingerprint = fingerprint
        value = int.from_bytes(fingerprint, "little")
        super().__init__(
            f"unknown writer schema fingerprint {fingerprint.hex()} "
            f"(CRC-64-AVRO 0x{value:016x}); it is none of the versions kept in schemas/"
        )

    @property
    def fingerprint_hex(self) -> str:
        """The fingerprint as hex in wire order, as a hex dump of the message shows it."""
        return self.fingerprint.hex()


class UnexpectedKindError(DecodeError):
    """A message in a batch decoded for one kind (`decode_records`) is of another kind:
    something produced to the wrong topic.
    """

    retriable = False

    def __init__(self, expected: str, actual: str) -> None:
        self.expected = expected
        self.actual = actual
        super().__init__(f"expected a {expected} record, got a {actual} record")


class CorruptBodyError(DecodeError):
    """The Avro body after the header does not decode under its writer schema."""

    retriable = False


class TruncatedBodyError(CorruptBodyError):
    """The body ended before the record did."""

    retriable = False


class TrailingBytesError(CorruptBodyError):
    """The record decoded, but bytes were left over after it: the message is not what
    its writer schema says, so the decoded values cannot be trusted.
    """

    retriable = False
