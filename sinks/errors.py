"""Errors of the `sinks` package (the ClickHouse sink, its migrations and queries).

Every error a sinks component raises on purpose is a `SinkError`, the package's branch
under printfleet's root `PrintfleetError` (common/errors.py draws the whole tree). Each
leaf says whether trying again later can succeed (`retriable`); the sink's retry loop
reads that attribute, never the type. Exceptions of clickhouse-connect are translated
in `sinks/client.py`, those of aiokafka in `sinks/clickhouse.py` and `sinks/deadletter.py`
as the Kafka layer's `common.kafka.errors.KafkaUnavailable` (retriable).

    SinkError                      root of the package; not retriable unless a leaf says so
    ├── SchemaMappingError         an Avro shape the table layout rules do not cover (a bug)
    ├── ConvertError               one record cannot become a row; it is dead-lettered
    ├── ClickHouseError            anything ClickHouse answered or failed to answer
    │   ├── ClickHouseUnavailable  retriable  no connection, timeout, server overloaded or
    │   │                                     restarting; carries `retry_after`
    │   └── ClickHouseRejected               the server refused the statement (bad SQL,
    │       │                                 type mismatch, unknown table): a bug or a
    │       │                                 schema drift that retrying cannot fix
    │       └── ClickHouseAccessDenied        the user may not do it (no such grant, a
    │                                         read-only user, a wrong password)
    ├── MigrationError             a migration could not be applied (wraps the cause)
    ├── QueryError                 `printfleet query`: unknown name, bad parameter
    └── WebhookError               `printfleet alerts forward` (sinks/webhook/errors.py)
"""

from __future__ import annotations

from common.errors import PrintfleetError


class SinkError(PrintfleetError):
    """Root of every error raised by `sinks`."""

    retriable: bool = False


class SchemaMappingError(SinkError):
    """A schema uses an Avro shape `sinks.layout` does not map to tables. Raised when the
    layouts are built (at start), never per record."""


class ConvertError(SinkError):
    """One record's value cannot be stored (e.g. a timestamp outside DateTime64's range).
    The converter dead-letters the record with this message as the reason."""


class ClickHouseError(SinkError):
    """ClickHouse failed or refused a statement."""


class ClickHouseUnavailable(ClickHouseError):
    """ClickHouse could not be reached or could not take the insert now. Nothing of a
    failed insert counts: the same insert with the same deduplication token is safe to
    repeat after `retry_after` seconds (None: the caller's backoff decides)."""

    retriable = True

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ClickHouseRejected(ClickHouseError):
    """ClickHouse answered with an error that repeating the statement will not change.
    `code` is ClickHouse's numeric error code when known."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


class ClickHouseAccessDenied(ClickHouseRejected):
    """The ClickHouse user lacks a right the statement needs (ACCESS_DENIED, READONLY,
    a failed login). The message names the user and the right; an administrator's
    GRANT (or another user) fixes it, not a retry."""


class MigrationError(SinkError):
    """A schema migration failed; the sink does not start. Migrations are idempotent, so
    running the sink again after fixing the cause resumes where this one stopped."""


class QueryError(SinkError):
    """`printfleet query` was asked for an unknown query or given a bad parameter."""
