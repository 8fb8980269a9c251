"""The spool directory's files other than frames: names, the lock, the ack state.

Used by `producers.spool.spool` and `producers.spool.recovery` only.

    <dir>/spool.lock                      flock(LOCK_EX) while a Spool has it open; holds the pid
    <dir>/ack.state                       acked watermark and next sequence number (28 bytes)
    <dir>/keep-<base seq, 20 digits>.seg  KEEP segments, frames in sequence order
    <dir>/drop-<base seq, 20 digits>.seg  DROPPABLE segments
    <dir>/*.tmp                           a write in progress; removed on open

`ack.state` is replaced atomically (write tmp, fsync, rename, fsync the directory):
magic "PFSACK01", acked_seq u64, next_seq u64, crc32 of the preceding 24 bytes.
"""

from __future__ import annotations

import fcntl
import os
import re
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from producers.errors import SpoolLocked
from producers.spool.types import RecordClass

LOCK_NAME: Final = "spool.lock"
STATE_NAME: Final = "ack.state"
TMP_SUFFIX: Final = ".tmp"
_PREFIX: Final = {RecordClass.KEEP: "keep", RecordClass.DROPPABLE: "drop"}
_SEGMENT_RE: Final = re.compile(r"^(keep|drop)-(\d{20})\.seg$")
_STATE: Final = struct.Struct("<8sQQ")
_STATE_MAGIC: Final = b"PFSACK01"


@dataclass(slots=True)
class Segment:
    """In-memory account of one segment file; mutated only by `Spool` under its lock.

    `size` is the length of the file (all valid frames). Frames before `head_offset` are
    acknowledged; `pending_*` describe the frames from `head_offset` to `size`, and
    `head_seq`/`head_ms` the first of them (None when none is pending).
    """

    record_class: RecordClass
    base: int
    path: Path
    size: int
    head_offset: int
    pending_records: int
    pending_bytes: int
    head_seq: int | None
    head_ms: int | None


def segment_path(directory: Path, record_class: RecordClass, base: int) -> Path:
    return directory / f"{_PREFIX[record_class]}-{base:020d}.seg"


def parse_segment_name(name: str) -> tuple[RecordClass, int] | None:
    """(class, base seq) of a segment file name, None for any other file."""
    m = _SEGMENT_RE.match(name)
    if m is None:
        return None
    cls = RecordClass.KEEP if m.group(1) == "keep" else RecordClass.DROPPABLE
    return cls, int(m.group(2))


def fsync_dir(directory: Path) -> None:
    """Make creations, renames and deletions in `directory` durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def acquire_lock(directory: Path) -> int:
    """Take the directory's exclusive lock and write our pid into it; return its fd.

    The lock lives as long as the fd (and dies with the process, even on kill -9).
    Raises SpoolLocked when another open file description holds it.
    """
    fd = os.open(directory / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or None
        os.close(fd)
        raise SpoolLocked(directory, holder) from None
    except BaseException:
        os.close(fd)
        raise
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


def release_lock(fd: int) -> None:
    """Drop the lock taken by `acquire_lock` (closing the fd releases the flock)."""
    os.close(fd)


def read_state(directory: Path) -> tuple[int, int, bool]:
    """(acked_seq, next_seq floor, reset) from ack.state; (0, 1, False) when absent.

    `reset` is True when the file exists but is unreadable: the caller then starts from
    zero, so acknowledged records still on disk will be uploaded again.
    """
    try:
        raw = (directory / STATE_NAME).read_bytes()
    except FileNotFoundError:
        return 0, 1, False
    if len(raw) != _STATE.size + 4 or zlib.crc32(raw[:-4]) != int.from_bytes(raw[-4:], "little"):
        return 0, 1, True
    magic, acked, next_seq = _STATE.unpack_from(raw)
    if magic != _STATE_MAGIC:
        return 0, 1, True
    return acked, next_seq, False


def write_state(directory: Path, acked_seq: int, next_seq: int, *, fsync: bool) -> None:
    """Replace ack.state atomically; durable on return when `fsync`."""
    body = _STATE.pack(_STATE_MAGIC, acked_seq, next_seq)
    raw = body + zlib.crc32(body).to_bytes(4, "little")
    tmp = directory / (STATE_NAME + TMP_SUFFIX)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    try:
        os.write(fd, raw)
        if fsync:
            os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, directory / STATE_NAME)
    if fsync:
        fsync_dir(directory)
