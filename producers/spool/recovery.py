"""Recovery of a spool directory on open: what survived a crash, and what did not.

Called by `Spool.open()` after it took the directory lock, before anything else touches
the files. For each segment file it keeps every complete frame with a valid CRC, cuts a
torn tail back to the last valid frame, rewrites the file without bad runs found between
valid frames (resynchronising on the frame marker, see `producers.spool.frames.scan`), skips frames
at or below the acked watermark, and deletes segments with nothing pending. It returns
the segments and a `RecoveryReport`, and logs one line saying what it dropped. Each
segment's index (`producers.spool.index`) says which records the segment was given: those
above the watermark without a valid frame are counted as lost, exactly, with their kind's
prefix; then the index is written anew from the frames that survived.
"""

from __future__ import annotations

import builtins
import logging
import os
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from producers.spool import index

from producers.spool.files import (
    TMP_SUFFIX,
    Segment,
    fsync_dir,
    parse_segment_name,
    read_state,
)
from producers.spool.frames import HEADER_BYTES, Frame, scan
from producers.spool.types import RecordClass, RecoveryReport

log = logging.getLogger("producers.spool.spool")


@dataclass(frozen=True, slots=True)
class Recovered:
    """What `recover` found: live segments per class in base order, and the counters."""

    segments: dict[RecordClass, list[Segment]]
    acked_seq: int
    next_seq: int
    report: RecoveryReport


@dataclass(slots=True)
class _Tally:
    records: int = 0
    bytes: int = 0
    acked_skipped: int = 0
    dropped_records: int = 0
    dropped_bytes: int = 0
    torn_tails: int = 0
    corrupt_regions: int = 0
    max_seq: int = 0
    dir_changed: bool = False
    lost: Counter[builtins.bytes] = field(default_factory=Counter)  # payload prefix -> records lost


def recover(directory: Path, *, fsync: bool) -> Recovered:
    """Scan and repair `directory`; see the module docstring. OSError propagates."""
    started = time.perf_counter()
    for tmp in directory.glob("*" + TMP_SUFFIX):
        tmp.unlink()
    acked, floor, reset = read_state(directory)
    tally = _Tally()
    found: list[tuple[RecordClass, int, Path]] = []
    for path in directory.iterdir():
        parsed = parse_segment_name(path.name)
        if parsed is not None:
            found.append((parsed[0], parsed[1], path))
        elif path.name.endswith(index.SUFFIX) and not path.with_name(path.name.removesuffix(index.SUFFIX)).exists():
            _orphan_index(path, acked, tally)
    segments: dict[RecordClass, list[Segment]] = {c: [] for c in RecordClass}
    max_base = 0
    for cls, base, path in sorted(found, key=lambda f: (f[0], f[1])):
        max_base = max(max_base, base)
        segment = _recover_segment(cls, base, path, acked, tally, fsync=fsync)
        if segment is not None:
            segments[cls].append(segment)
    if tally.dir_changed and fsync:
        fsync_dir(directory)
    next_seq = max(floor, acked + 1, tally.max_seq + 1, max_base)
    report = RecoveryReport(
        segments=sum(len(s) for s in segments.values()),
        records=tally.records,
        bytes=tally.bytes,
        acked_skipped=tally.acked_skipped,
        dropped_records=tally.dropped_records,
        dropped_bytes=tally.dropped_bytes,
        torn_tails=tally.torn_tails,
        corrupt_regions=tally.corrupt_regions,
        state_reset=reset,
        lost_by_prefix=tuple(sorted(tally.lost.items())),
        acked_seq=acked,
        next_seq=next_seq,
        duration_s=time.perf_counter() - started,
    )
    _log_report(directory, report)
    return Recovered(segments, acked, next_seq, report)


def _recover_segment(
    cls: RecordClass, base: int, path: Path, acked: int, tally: _Tally, *, fsync: bool
) -> Segment | None:
    data = path.read_bytes()
    result = scan(data, base, int(cls))
    frames = result.frames
    entries = index.read(index.index_path(path))
    if entries is None:
        tally.dropped_records += result.dropped_records
    else:
        survived = {f.seq for f in frames}
        lost = [prefix for seq, prefix in entries.items() if seq > acked and seq not in survived]
        tally.dropped_records += len(lost)
        tally.lost.update(lost)
        tally.max_seq = max(tally.max_seq, max(entries, default=0))
    tally.dropped_bytes += result.dropped_bytes
    if frames:
        tally.max_seq = max(tally.max_seq, frames[-1].seq)
    pending = [f for f in frames if f.seq > acked]
    tally.acked_skipped += len(frames) - len(pending)
    if not pending:
        index.index_path(path).unlink(missing_ok=True)
        path.unlink()
        tally.dir_changed = True
        return None
    if entries is None or len(entries) != len(frames) or set(entries) != {f.seq for f in frames}:
        rebuilt = index.encode((f.seq, data[f.offset + HEADER_BYTES : f.end]) for f in frames)
        index.write(index.index_path(path), rebuilt, fsync=fsync)
        tally.dir_changed = True
    if result.corrupt:
        tally.corrupt_regions += len(result.corrupt)
        tally.torn_tails += result.tail is not None
        frames = _rewrite(path, data, frames, fsync=fsync)
        tally.dir_changed = True
        pending = [f for f in frames if f.seq > acked]
    elif result.tail is not None:
        tally.torn_tails += 1
        with open(path, "r+b") as f:
            f.truncate(result.tail[0])
            if fsync:
                os.fsync(f.fileno())
    size = frames[-1].end
    head = pending[0]
    pending_bytes = size - head.offset
    tally.records += len(pending)
    tally.bytes += pending_bytes
    return Segment(
        record_class=cls,
        base=base,
        path=path,
        size=size,
        head_offset=head.offset,
        pending_records=len(pending),
        pending_bytes=pending_bytes,
        head_seq=head.seq,
        head_ms=head.appended_ms,
    )


def _orphan_index(path: Path, acked: int, tally: _Tally) -> None:
    """An index whose segment is gone (a crash between their deletions, or a lost file):
    its records above the watermark are lost."""
    entries = index.read(path) or {}
    lost = [prefix for seq, prefix in entries.items() if seq > acked]
    tally.dropped_records += len(lost)
    tally.lost.update(lost)
    tally.max_seq = max(tally.max_seq, max(entries, default=0))
    path.unlink()
    tally.dir_changed = True


def _rewrite(path: Path, data: bytes, frames: list[Frame], *, fsync: bool) -> list[Frame]:
    """Replace `path` by its valid frames only (tmp, fsync, rename); their new offsets."""
    tmp = path.with_name(path.name + TMP_SUFFIX)
    moved: list[Frame] = []
    offset = 0
    with open(tmp, "wb") as f:
        for frame in frames:
            f.write(data[frame.offset : frame.end])
            moved.append(
                Frame(offset, frame.length, frame.seq, frame.appended_ms, frame.record_class)
            )
            offset += frame.length
        f.flush()
        if fsync:
            os.fsync(f.fileno())
    os.replace(tmp, path)
    return moved


def _log_report(directory: Path, r: RecoveryReport) -> None:
    level = logging.INFO if r.clean else logging.WARNING
    log.log(
        level,
        "spool recovered dir=%s segments=%d records=%d bytes=%d acked_skipped=%d "
        "dropped_records=%d dropped_bytes=%d torn_tails=%d corrupt_regions=%d "
        "state_reset=%s acked_seq=%d next_seq=%d duration_ms=%.1f",
        directory,
        r.segments,
        r.records,
        r.bytes,
        r.acked_skipped,
        r.dropped_records,
        r.dropped_bytes,
        r.torn_tails,
        r.corrupt_regions,
        r.state_reset,
        r.acked_seq,
        r.next_seq,
        r.duration_s * 1000,
    )
