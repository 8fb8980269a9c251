"""The site collector's durable spool: encoded records wait here until the gateway has them.

The collector appends records it polled (`append_many`); the uploader takes the oldest
pending ones (`peek`), sends them, and after the gateway's acknowledgement calls `ack`.
Records survive kill -9 and power loss (with `fsync=True`) from the moment `append_many`
returned until they were acked; acked records never come back. After a crash a batch may
be uploaded twice; downstream deduplicates by record id. See docs/spool.md.

Each RecordClass has its own chain of append-only segment files, so that heartbeats can
be dropped a whole segment at a time when the spool is full, and KEEP records never.
Sequence numbers are global, so `peek` merges both chains into one order.

All calls do blocking file I/O; one lock serialises them, so a Spool can be shared by the
poller and the uploader threads (`asyncio.to_thread`). One process per directory: `open`
takes an exclusive flock on `spool.lock`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Final

from producers.errors import (
    InvalidAck,
    RecordTooLarge,
    SpoolBroken,
    SpoolClosed,
    SpoolConfigError,
    SpoolFull,
    SpoolWriteFailed,
)
from producers.spool import index
from producers.spool.files import acquire_lock, fsync_dir, release_lock, write_state
from producers.spool.frames import HEADER_BYTES, MAX_PAYLOAD, FrameError, encode_frames
from producers.spool.recovery import recover
from producers.spool.segments import SegmentChains, Undo
from producers.spool.types import (
    Batch,
    ClassDepth,
    Location,
    RecordClass,
    RecoveryReport,
    SpooledRecord,
    SpoolStats,
)

__all__ = [
    "Batch",
    "ClassDepth",
    "RecordClass",
    "RecoveryReport",
    "Spool",
    "SpooledRecord",
    "SpoolStats",
    "DEFAULT_SEGMENT_BYTES",
]

DEFAULT_SEGMENT_BYTES: Final = 1024 * 1024
log = logging.getLogger(__name__)


class Spool:
    """A durable, bounded, two-class FIFO of encoded records in one directory.

    Lifecycle: `Spool(...)`, then `open()` (or `with` / `async with`), then `close()`;
    close is safe before open and safe twice. Every other call before open or after close
    raises `SpoolClosed`; after an I/O error it could not undo, `SpoolBroken`.
    """

    def __init__(
        self,
        directory: Path,
        *,
        max_bytes: int,
        segment_bytes: int | None = None,
        fsync: bool = True,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """`max_bytes` bounds the segment files' total size and must hold two segments;
        `segment_bytes` defaults to 1 MiB, or max_bytes / 8 when that is smaller.
        `fsync=False` survives a killed process but not a power cut (tests, tmpfs).
        Raises SpoolConfigError for impossible sizes. Does no I/O."""
        if segment_bytes is None:
            segment_bytes = min(DEFAULT_SEGMENT_BYTES, max_bytes // 8)
        if segment_bytes < 2 * HEADER_BYTES:
            raise SpoolConfigError(f"segment_bytes={segment_bytes} is too small")
        if max_bytes < 2 * segment_bytes:
            raise SpoolConfigError(
                f"max_bytes={max_bytes} must be at least 2 * segment_bytes={segment_bytes}"
            )
        self._dir = Path(directory)
        self._max_bytes = max_bytes
        self._segment_bytes = segment_bytes
        self._fsync = fsync
        self._clock = clock
        self._mutex = threading.Lock()
        self._lock_fd: int | None = None
        self._broken = False
        self._token = 0
        self._chains = SegmentChains(self._dir, {}, segment_bytes=segment_bytes, fsync=fsync)
        self._acked_seq = 0
        self._next_seq = 1
        self._appended = self._acked = self._dropped = self._dropped_bytes = 0
        self._rejections = 0
        self._report = RecoveryReport()
        self._publish()

    # --- lifecycle -------------------------------------------------------------------

    def open(self) -> RecoveryReport:
        """Lock the directory (creating it), recover it, and return what recovery found.

        Called once at collector start, before the pollers and the uploader. Raises
        SpoolLocked when another process has it open, SpoolBroken when recovery hit an
        I/O error. Opening an open spool returns the same report.
        """
        with self._mutex:
            if self._lock_fd is not None:
                return self._report
            try:
                self._dir.mkdir(parents=True, exist_ok=True)
                lock_fd = acquire_lock(self._dir)
            except OSError as exc:
                raise SpoolBroken(f"cannot open spool directory {self._dir}: {exc}") from exc
            try:
                recovered = recover(self._dir, fsync=self._fsync)
            except OSError as exc:
                release_lock(lock_fd)
                raise SpoolBroken(f"recovery of {self._dir} failed: {exc}") from exc
            self._lock_fd = lock_fd
            self._broken = False
            self._token = int.from_bytes(os.urandom(8), "little")
            self._chains = SegmentChains(
                self._dir, recovered.segments, segment_bytes=self._segment_bytes, fsync=self._fsync
            )
            self._acked_seq = recovered.acked_seq
            self._next_seq = recovered.next_seq
            self._appended = self._acked = self._dropped = self._dropped_bytes = 0
            self._rejections = 0
            self._report = recovered.report
            self._publish()
            return recovered.report

    def close(self) -> None:
        """Release the files and the lock. Idempotent; stats() still answers afterwards.

        Nothing needs flushing: every append was written (and fsynced) before it returned.
        """
        with self._mutex:
            self._chains.close()
            if self._lock_fd is not None:
                release_lock(self._lock_fd)
                self._lock_fd = None

    def __enter__(self) -> Spool:
        self.open()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    async def __aenter__(self) -> Spool:
        await asyncio.to_thread(self.open)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await asyncio.to_thread(self.close)

    @property
    def directory(self) -> Path:
        return self._dir

    @property
    def recovery(self) -> RecoveryReport:
        """The report of the last `open()`."""
        return self._report

    # --- append ----------------------------------------------------------------------

    def append_many(self, items: Sequence[tuple[RecordClass, bytes]]) -> int:
        """Append records durably, in order; return the last sequence number assigned.

        Called by the collector after each poll. One write per class present, then one
        fsync each (at most two). When the records do not fit in `max_bytes`, the oldest
        DROPPABLE segments are deleted first. Raises SpoolFull (nothing written, nothing
        dropped) when dropping every DROPPABLE record would not make room; RecordTooLarge
        when the records could never fit; SpoolWriteFailed when the file system refused
        the write (it was undone). An empty `items` returns the last assigned number.
        """
        with self._mutex:
            self._check_open()
            if not items:
                return self._next_seq - 1
            try:
                return self._append(items)
            finally:
                self._publish()

    def _append(self, items: Sequence[tuple[RecordClass, bytes]]) -> int:
        """append_many without the lock and the snapshot: encode, make room, write."""
        appended_ms = int(self._clock() * 1000)
        lanes: dict[RecordClass, list[tuple[int, int, bytes]]] = {}
        seq = self._next_seq
        limit = min(MAX_PAYLOAD, self._max_bytes - HEADER_BYTES)
        for record_class, payload in items:
            cls = RecordClass(record_class)
            if len(payload) > limit:
                raise RecordTooLarge(HEADER_BYTES + len(payload), self._max_bytes)
            lanes.setdefault(cls, []).append((seq, cls.value, payload))
            seq += 1
        encoded = {cls: encode_frames(entries, appended_ms) for cls, entries in lanes.items()}
        entries = {cls: index.encode((seq, payload) for seq, _, payload in lane) for cls, lane in lanes.items()}
        needed = sum(len(data) for data, _ in encoded.values())
        if needed > self._max_bytes:
            raise RecordTooLarge(needed, self._max_bytes)
        self._make_room(needed)
        self._next_seq = seq
        undo: list[Undo] = []
        try:
            for cls, (data, _) in encoded.items():
                self._chains.write(cls, lanes[cls][0][0], data, entries[cls], undo)
        except OSError as exc:
            self._rollback(undo, exc)
            raise SpoolWriteFailed(str(exc), exc.errno) from exc
        for step, (cls, (data, lengths)) in zip(undo, encoded.items()):
            self._chains.commit(step, lanes[cls][0][0], appended_ms, data, len(lengths))
        self._appended += len(items)
        return seq - 1

    def _make_room(self, needed: int) -> None:
        """Drop the oldest DROPPABLE segments until `needed` bytes fit, or raise SpoolFull
        without dropping anything when even all of them would not be enough."""
        victims = self._chains.droppable_to_free(needed, self._max_bytes)
        if victims is None:
            self._rejections += 1
            free = self._max_bytes - self._chains.disk_bytes
            raise SpoolFull(needed, free, self._max_bytes)
        if not victims:
            return
        records = sum(s.pending_records for s in victims)
        freed = sum(s.size for s in victims)
        for segment in victims:
            self._dropped += segment.pending_records
            self._dropped_bytes += segment.pending_bytes
            self._chains.delete(segment)
        try:
            if self._fsync:
                fsync_dir(self._dir)
        except OSError as exc:  # the deletions are done; only their durability is unsure
            log.warning("spool fsync of directory failed dir=%s error=%s", self._dir, exc)
        log.warning(
            "spool full dir=%s dropped_segments=%d dropped_records=%d freed_bytes=%d",
            self._dir, len(victims), records, freed,
        )

    def _rollback(self, undo: list[Undo], cause: OSError) -> None:
        """Undo a failed append's writes; if that fails too, the spool is broken."""
        try:
            self._chains.rollback(undo)
        except OSError as exc:
            self._broken = True
            raise SpoolBroken(f"append failed ({cause}) and could not be undone: {exc}") from exc

    # --- upload ----------------------------------------------------------------------

    def peek(self, max_records: int = 1000, max_bytes: int = 1024 * 1024) -> Batch:
        """The oldest pending records in sequence order, up to `max_records` and
        `max_bytes` of payload (at least one record, however large). Removes nothing.

        Called by the uploader; the same spool content and limits always give the same
        batch. Raises SpoolBroken if a segment no longer reads back as it was written.
        """
        if max_records < 1 or max_bytes < 1:
            raise SpoolConfigError("peek needs max_records >= 1 and max_bytes >= 1")
        with self._mutex:
            self._check_open()
            chunk = min(max(max_bytes + max_records * HEADER_BYTES, 4096), 4 * 1024 * 1024)
            frames = self._chains.pending_frames(chunk)
            records: list[SpooledRecord] = []
            locations: list[Location] = []
            total = 0
            try:
                for frame, payload, segment in frames:
                    if len(records) == max_records or (
                        records and total + len(payload) > max_bytes
                    ):
                        break
                    cls = segment.record_class
                    records.append(SpooledRecord(frame.seq, cls, payload, frame.appended_ms / 1000))
                    locations.append(Location(cls, segment.base, frame.offset, frame.length))
                    total += len(payload)
            except (FrameError, OSError) as exc:
                self._broken = True
                raise SpoolBroken(f"reading the spool failed: {exc}") from exc
            finally:
                frames.close()
            return Batch(tuple(records), total, self._token, tuple(locations))

    def ack(self, batch: Batch) -> int:
        """Delete a batch's records durably; return how many of them were still pending.

        Called by the uploader only after the gateway acknowledged the whole batch. The
        acked watermark (the batch's last seq) is persisted (tmp, fsync, rename) before
        anything else changes, then fully acked segments are deleted. Acking the same
        batch again does nothing. Raises InvalidAck (nothing changed) when the batch is
        not from this open spool or older records are still pending; SpoolWriteFailed
        when the state file could not be written (nothing acked; ack again later).
        """
        with self._mutex:
            self._check_open()
            if batch.spool_token != self._token:
                raise InvalidAck("the batch was peeked from another Spool object or before reopen")
            last = batch.last_seq
            if last is None or last <= self._acked_seq:
                return 0
            seqs = {r.seq for r in batch.records}
            for cls in RecordClass:
                head = self._chains.head(cls)
                first = head.head_seq if head is not None else None
                if first is not None and first <= last and first not in seqs:
                    raise InvalidAck(f"record {first} is pending and older than batch end {last}")
            try:
                write_state(self._dir, last, self._next_seq, fsync=self._fsync)
            except OSError as exc:
                raise SpoolWriteFailed(f"ack state: {exc}", exc.errno) from exc
            self._acked_seq = last
            try:
                count = self._chains.advance(batch.locations)
                self._acked += count
                return count
            except (FrameError, OSError) as exc:
                self._broken = True
                raise SpoolBroken(f"reading the spool failed: {exc}") from exc
            finally:
                self._publish()

    def number_past(self, seq: int) -> None:
        """Number every record appended from now on above `seq`, durably.

        The uploader calls it at start with the highest number it ever sent: records lost
        from the spool after they were sent (a cut or torn tail) leave no number free for
        reuse, which the gateway would take for a repeat. Raises SpoolWriteFailed.
        """
        with self._mutex:
            self._check_open()
            if seq < self._next_seq:
                return
            try:
                write_state(self._dir, self._acked_seq, seq + 1, fsync=self._fsync)
            except OSError as exc:
                raise SpoolWriteFailed(f"ack state: {exc}", exc.errno) from exc
            self._next_seq = seq + 1
            self._publish()

    # --- metrics ---------------------------------------------------------------------

    def stats(self) -> SpoolStats:
        """A snapshot for metrics and logs. Never blocks: it reads the snapshot the last
        open/append/ack published, and adds the oldest record's age. Works before open
        and after close too; safe to call from the event loop."""
        snapshot = self._snapshot
        times = [
            t for t in (snapshot.keep.oldest_appended_at, snapshot.droppable.oldest_appended_at)
            if t is not None
        ]
        age = max(0.0, self._clock() - min(times)) if times else None
        return dataclasses.replace(snapshot, oldest_age_s=age)

    def _publish(self) -> None:
        """Rebuild the stats snapshot; called under the lock after every change."""
        self._snapshot = SpoolStats(
            keep=self._chains.depth(RecordClass.KEEP),
            droppable=self._chains.depth(RecordClass.DROPPABLE),
            disk_bytes=self._chains.disk_bytes,
            max_bytes=self._max_bytes,
            segments=self._chains.count,
            next_seq=self._next_seq,
            acked_seq=self._acked_seq,
            appended_records=self._appended,
            acked_records=self._acked,
            dropped_records=self._dropped,
            dropped_bytes=self._dropped_bytes,
            full_rejections=self._rejections,
            oldest_age_s=None,
            recovery=self._report,
        )

    def _check_open(self) -> None:
        if self._lock_fd is None:
            raise SpoolClosed(f"spool {self._dir} is not open")
        if self._broken:
            raise SpoolBroken(f"spool {self._dir} hit an I/O error earlier; close and reopen it")

