"""Values that cross the spool's public API: record classes, batches, reports, stats.

All of them are immutable; `producers.spool.spool` re-exports them, so callers import from
there. Timestamps are seconds since the Unix epoch (wall clock, millisecond precision),
taken when `Spool.append_many()` wrote the record.
"""

from __future__ import annotations

import builtins
import enum
from dataclasses import dataclass, field
from typing import NamedTuple


class RecordClass(enum.IntEnum):
    """What the spool may do with a record when it is full. The value is the on-disk code.

    KEEP: events, jobs, counters, consumables, identity, logs; never dropped.
    DROPPABLE: heartbeats; dropped oldest-first (a whole segment at a time) when full.
    """

    KEEP = 1
    DROPPABLE = 2


class SpooledRecord(NamedTuple):
    """One record as `Spool.peek()` returns it; `payload` is exactly what was appended.
    (A NamedTuple rather than a dataclass: peek makes a thousand per batch.)"""

    seq: int
    record_class: RecordClass
    payload: bytes
    appended_at: float


class Location(NamedTuple):
    """Where a record's frame sits: segment (class, base seq), offset, frame length."""

    record_class: RecordClass
    segment: int
    offset: int
    length: int


@dataclass(frozen=True, slots=True)
class Batch:
    """The oldest pending records, in sequence order across classes, from `Spool.peek()`.

    The uploader sends `records` to the gateway and, only after the gateway acknowledged
    them, hands the same object to `Spool.ack()`. An empty batch means nothing is pending.
    `payload_bytes` is the sum of the payload sizes (what the upload body carries).
    """

    records: tuple[SpooledRecord, ...]
    payload_bytes: int
    spool_token: int = field(repr=False)
    locations: tuple[Location, ...] = field(repr=False)

    def __len__(self) -> int:
        return len(self.records)

    @property
    def first_seq(self) -> int | None:
        return self.records[0].seq if self.records else None

    @property
    def last_seq(self) -> int | None:
        return self.records[-1].seq if self.records else None


@dataclass(frozen=True, slots=True)
class RecoveryReport:
    """What `Spool.open()` found on disk and what it had to throw away.

    records/bytes: pending (un-acked) records kept, and their frame bytes.
    acked_skipped: records found on disk that were already acknowledged (a crash between
      writing the ack state and deleting the segment, or a partly acked segment); never
      returned again, deleted with their segment.
    dropped_records/dropped_bytes: pending records lost to a cut, a torn write or
      corruption, and the bytes skipped. Records are exact where the segment's index
      knows them (`producers.spool.index`: every segment written by this version);
      otherwise the frame starts seen in the dropped bytes, at least one per run.
    lost_by_prefix: the lost records the indexes know, as (first 10 payload bytes,
      count) pairs: for Avro records the schema fingerprint, so the caller can say of
      which kind.
    torn_tails: segments whose tail was cut back to the last valid frame.
    corrupt_regions: runs of bad bytes between valid frames that were skipped by
      resynchronising on the next frame marker; those segments were rewritten.
    state_reset: the ack state file was unreadable, acked records may be uploaded again.
    """

    segments: int = 0
    records: int = 0
    bytes: int = 0
    acked_skipped: int = 0
    dropped_records: int = 0
    dropped_bytes: int = 0
    torn_tails: int = 0
    corrupt_regions: int = 0
    state_reset: bool = False
    lost_by_prefix: tuple[tuple[builtins.bytes, int], ...] = ()
    acked_seq: int = 0
    next_seq: int = 1
    duration_s: float = 0.0

    @property
    def clean(self) -> bool:
        """True when nothing was lost or reset: the previous run shut down or crashed
        between appends."""
        return self.dropped_bytes == 0 and not self.state_reset


@dataclass(frozen=True, slots=True)
class ClassDepth:
    """Pending records of one class: count, frame bytes, append time of the oldest."""

    records: int = 0
    bytes: int = 0
    oldest_appended_at: float | None = None


@dataclass(frozen=True, slots=True)
class SpoolStats:
    """A snapshot of the spool for metrics and logs, from `Spool.stats()`.

    Counters (`appended_records`, `acked_records`, `dropped_*`, `full_rejections`) count
    since `open()`. `disk_bytes` is what the segment files hold, acknowledged records not
    yet deleted included; it is what `max_bytes` bounds. `oldest_age_s` is the age of the
    oldest pending record, None when nothing is pending.
    """

    keep: ClassDepth
    droppable: ClassDepth
    disk_bytes: int
    max_bytes: int
    segments: int
    next_seq: int
    acked_seq: int
    appended_records: int
    acked_records: int
    dropped_records: int
    dropped_bytes: int
    full_rejections: int
    oldest_age_s: float | None
    recovery: RecoveryReport

    @property
    def pending_records(self) -> int:
        return self.keep.records + self.droppable.records

    @property
    def pending_bytes(self) -> int:
        return self.keep.bytes + self.droppable.bytes

    def depth(self, record_class: RecordClass) -> ClassDepth:
        return self.keep if record_class is RecordClass.KEEP else self.droppable
