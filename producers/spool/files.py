"""The spool directory's files other than frames: names, the lock, the ack state.

Used by `producers.spool.spool` and `producers.spool.recovery` only.

    <dir>/spool.lock                      locked while a Spool has it open; holds the pid
    <dir>/ack.state                       acked watermark and next sequence number (28 bytes)
    <dir>/keep-<base seq, 20 digits>.seg  KEEP segments, frames in sequence order
    <dir>/drop-<base seq, 20 digits>.seg  DROPPABLE segments
    <dir>/*.tmp                           a write in progress; removed on open

`ack.state` is replaced atomically (write tmp, fsync, rename, fsync the directory):
magic "PFSACK01", acked_seq u64, next_seq u64, crc32 of the preceding 24 bytes.

Portable to Windows (the site collector runs there): the lock is `msvcrt.locking` there
and `fcntl.flock` elsewhere, every file is opened with `OPEN_FLAGS`, and `fsync_dir` is
POSIX only (docs/spool.md, "Windows").
"""

from __future__ import annotations

import errno
import os
import re
import struct
import sys
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

if sys.platform == "win32":
    import msvcrt
else:
    import fcntl

# Flags for every os.open of a spool file. On Windows os.open opens in text mode unless
# told O_BINARY (b"\n" would be written as b"\r\n" and a 0x1A byte would end a read);
# O_CLOEXEC exists only on POSIX (Python's descriptors are non-inheritable anyway, PEP 446).
OPEN_FLAGS: Final[int] = getattr(os, "O_BINARY", 0) | getattr(os, "O_CLOEXEC", 0)
# Windows locks are mandatory: another process cannot read a locked byte. The lock covers
# one byte far past the pid, so a second process can still read who holds it.
_WINDOWS_LOCK_OFFSET: Final = 1 << 20


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
    """Make creations, renames and deletions in `directory` durable.

    POSIX only: Windows cannot open a directory as a file, and NTFS commits directory
    changes through its own journal; there this does nothing (docs/spool.md, "Windows").
    """
    if sys.platform != "win32":
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def acquire_lock(directory: Path) -> int:
    """Take the directory's exclusive lock and write our pid into it; return its fd.

    The lock lives as long as the fd (and dies with the process, even on kill -9).
    Raises SpoolLocked when another open file (this process's or another's) holds it.
    """
    fd = os.open(directory / LOCK_NAME, os.O_RDWR | os.O_CREAT | OPEN_FLAGS, 0o644)
    try:
        if not _try_lock(fd):
            os.lseek(fd, 0, os.SEEK_SET)
            holder = os.read(fd, 32).decode("ascii", "replace").strip() or None
            raise SpoolLocked(directory, holder)
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, f"{os.getpid()}\n".encode())
    except BaseException:
        os.close(fd)
        raise
    return fd


def _try_lock(fd: int) -> bool:
    """Lock the lock file `fd` without waiting; False when another open file holds it."""
    if sys.platform == "win32":
        os.lseek(fd, _WINDOWS_LOCK_OFFSET, os.SEEK_SET)
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError as exc:
            if exc.errno in (errno.EACCES, errno.EDEADLOCK):
                return False
            raise
        return True
    else:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True


def release_lock(fd: int) -> None:
    """Drop the lock taken by `acquire_lock` and close its fd.

    Closing releases a flock at once; Windows releases a lock left at close only "in time",
    so there it is unlocked first.
    """
    try:
        if sys.platform == "win32":
            os.lseek(fd, _WINDOWS_LOCK_OFFSET, os.SEEK_SET)
            msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
    finally:
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
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | OPEN_FLAGS, 0o644)
    try:
        os.write(fd, raw)
        if fsync:
            os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, directory / STATE_NAME)
    if fsync:
        fsync_dir(directory)
