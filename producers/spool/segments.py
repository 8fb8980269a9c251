"""The spool's segment chains: one append-only chain of segment files per RecordClass.

Owns the segment files, their in-memory accounts (`Segment`), the open write fds and the
byte count on disk. `producers.spool.spool.Spool` is the only caller and holds its lock around
every call; OSError propagates to it, and it translates.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Generator, Sequence
from pathlib import Path

from producers.spool import index
from producers.spool.files import OPEN_FLAGS, Segment, fsync_dir, segment_path
from producers.spool.frames import Frame, read_frames, read_header
from producers.spool.types import ClassDepth, Location, RecordClass

log = logging.getLogger("producers.spool.spool")
# segment, its size and its index's size before the append, created by it
Undo = tuple[Segment, int, int, bool]
Read = tuple[Frame, bytes, Segment]


class SegmentChains:
    """Segments of both classes, oldest first, as recovery left them plus what came since."""

    def __init__(
        self,
        directory: Path,
        segments: dict[RecordClass, list[Segment]],
        *,
        segment_bytes: int,
        fsync: bool,
    ) -> None:
        self._dir = directory
        self._segment_bytes = segment_bytes
        self._fsync = fsync
        self._chains = {cls: list(segments.get(cls, ())) for cls in RecordClass}
        self._index = {(s.record_class, s.base): s for c in self._chains.values() for s in c}
        self._write_fds: dict[RecordClass, tuple[int, Segment, int]] = {}  # segment fd, segment, index fd
        self.disk_bytes = sum(s.size for s in self._index.values())
        self._records = {c: sum(s.pending_records for s in v) for c, v in self._chains.items()}
        self._bytes = {c: sum(s.pending_bytes for s in v) for c, v in self._chains.items()}

    @property
    def count(self) -> int:
        return len(self._index)

    def head(self, cls: RecordClass) -> Segment | None:
        """The oldest segment of the class with pending records."""
        return next((s for s in self._chains[cls] if s.pending_records), None)

    def depth(self, cls: RecordClass) -> ClassDepth:
        head = self.head(cls)
        oldest = head.head_ms / 1000 if head is not None and head.head_ms is not None else None
        return ClassDepth(self._records[cls], self._bytes[cls], oldest)

    # --- append ----------------------------------------------------------------------

    def droppable_to_free(self, needed: int, max_bytes: int) -> list[Segment] | None:
        """The oldest DROPPABLE segments whose deletion makes `needed` bytes fit, [] when
        they fit already, None when even deleting all of them would not be enough."""
        free = max_bytes - self.disk_bytes
        chosen: list[Segment] = []
        for segment in self._chains[RecordClass.DROPPABLE]:
            if free >= needed:
                break
            chosen.append(segment)
            free += segment.size
        return chosen if free >= needed else None

    def write(self, cls: RecordClass, first_seq: int, data: bytes, entries: bytes, undo: list[Undo]) -> None:
        """Append `data` (whole frames) to the class's active segment, starting a new
        segment named `first_seq` when it would grow past `segment_bytes`, then their
        index `entries` to its index (`producers.spool.index`); fsync both (and the
        directory for a new file). Records what to undo in `undo` before writing."""
        chain = self._chains[cls]
        last = chain[-1] if chain else None
        created = last is None or (last.size > 0 and last.size + len(data) > self._segment_bytes)
        if created:
            self._close_fd(cls)
            path = segment_path(self._dir, cls, first_seq)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | OPEN_FLAGS, 0o644)
            last = Segment(cls, first_seq, path, 0, 0, 0, 0, None, None)
            chain.append(last)
            self._index[(cls, first_seq)] = last
            self._write_fds[cls] = (fd, last, self._open_index(path))
        assert last is not None
        if cls not in self._write_fds:
            fd = os.open(last.path, os.O_WRONLY | os.O_APPEND | OPEN_FLAGS)
            self._write_fds[cls] = (fd, last, self._open_index(last.path))
        fd, _, index_fd = self._write_fds[cls]
        undo.append((last, last.size, os.fstat(index_fd).st_size, created))
        _write_all(fd, data)
        if self._fsync:
            os.fsync(fd)
        # After the frames are durable: an entry always names a frame the spool held.
        _write_all(index_fd, entries)
        if self._fsync:
            os.fsync(index_fd)
            if created:
                fsync_dir(self._dir)

    @staticmethod
    def _open_index(segment: Path) -> int:
        return os.open(index.index_path(segment), os.O_WRONLY | os.O_CREAT | os.O_APPEND | OPEN_FLAGS, 0o644)

    def commit(self, undo: Undo, first_seq: int, appended_ms: int, data: bytes, n: int) -> None:
        """Account for `n` frames (`data`) that `write` made durable."""
        segment, old_size, _, _ = undo
        if segment.pending_records == 0:
            segment.head_offset = old_size
            segment.head_seq = first_seq
            segment.head_ms = appended_ms
        segment.size += len(data)
        segment.pending_records += n
        segment.pending_bytes += len(data)
        self.disk_bytes += len(data)
        self._records[segment.record_class] += n
        self._bytes[segment.record_class] += len(data)

    def rollback(self, undo: Sequence[Undo]) -> None:
        """Cut the segments back to their size before a failed append (OSError if not)."""
        for segment, old_size, old_index_size, created in undo:
            if created:
                self.delete(segment)
            else:
                os.truncate(segment.path, old_size)
                os.truncate(index.index_path(segment.path), old_index_size)
                if self._fsync:
                    fd, _, index_fd = self._write_fds[segment.record_class]
                    os.fsync(fd)
                    os.fsync(index_fd)
        if self._fsync:
            fsync_dir(self._dir)

    # --- read and acknowledge --------------------------------------------------------

    def pending_frames(self, chunk: int) -> Generator[Read]:
        """Pending frames of both classes merged in sequence order, with their segment.
        Reads lazily, `chunk` bytes at most per read; close() it to release the files.
        FrameError if a file no longer holds what was written."""
        keep = self._frames(RecordClass.KEEP, chunk)
        drop = self._frames(RecordClass.DROPPABLE, chunk)
        try:
            x, y = next(keep, None), next(drop, None)
            while x is not None and y is not None:
                if x[0].seq < y[0].seq:
                    yield x
                    x = next(keep, None)
                else:
                    yield y
                    y = next(drop, None)
            rest, tail = (x, keep) if x is not None else (y, drop)
            if rest is not None:
                yield rest
                yield from tail
        finally:
            keep.close()
            drop.close()

    def _frames(self, cls: RecordClass, chunk: int) -> Generator[Read]:
        for segment in list(self._chains[cls]):
            if segment.pending_records:
                start, end = segment.head_offset, segment.size
                for frame, payload in read_frames(segment.path, start, end, cls.value, chunk):
                    yield frame, payload, segment

    def advance(self, locations: Sequence[Location]) -> int:
        """Move segment heads past acked frames, delete segments left with nothing
        pending; return how many frames were still pending. FrameError/OSError when a
        new head cannot be read back."""
        touched: dict[int, Segment] = {}
        count = 0
        for loc in locations:
            segment = self._index.get((loc.record_class, loc.segment))
            if segment is None or loc.offset < segment.head_offset:
                continue  # dropped while the batch was uploading, or acked before
            segment.head_offset = loc.offset + loc.length
            segment.pending_records -= 1
            segment.pending_bytes -= loc.length
            self._records[loc.record_class] -= 1
            self._bytes[loc.record_class] -= loc.length
            touched[id(segment)] = segment
            count += 1
        for segment in touched.values():
            if segment.pending_records == 0:
                self.delete(segment)
            else:
                segment.head_seq, segment.head_ms = read_header(segment.path, segment.head_offset)
        return count

    def delete(self, segment: Segment) -> None:
        """Forget a segment and unlink its file (a failed unlink is redone at open)."""
        cls = segment.record_class
        if cls in self._write_fds and self._write_fds[cls][1] is segment:
            self._close_fd(cls)
        self._chains[cls].remove(segment)
        del self._index[(cls, segment.base)]
        self.disk_bytes -= segment.size
        self._records[cls] -= segment.pending_records
        self._bytes[cls] -= segment.pending_bytes
        try:
            # The index first: a segment without one is recovered whole, an index without
            # its segment would count the segment's records as lost.
            index.index_path(segment.path).unlink(missing_ok=True)
            segment.path.unlink()
        except OSError as exc:
            log.warning("spool could not delete segment path=%s error=%s", segment.path, exc)

    def close(self) -> None:
        """Close the write fds; the accounts stay readable for stats()."""
        for cls in list(self._write_fds):
            self._close_fd(cls)

    def _close_fd(self, cls: RecordClass) -> None:
        entry = self._write_fds.pop(cls, None)
        if entry is not None:
            for fd in (entry[0], entry[2]):
                try:
                    os.close(fd)
                except OSError:
                    pass


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
