"""An exclusive lock held across a read-modify-write of one file, between processes.

Used by `producers.gateway.enrolment`: two `printfleet sites` commands at once each read
the sites file, change it and replace it; without the lock the second replacement would
lose the first one's edit. The lock is a sibling file `<name>.lock` (the edited file
itself is replaced, so a lock on it would be a lock on an inode that goes away).

    with exclusive_lock(path):
        ... read path, write a temporary file, os.replace ...

Waits for the holder. The lock dies with its process (even on kill -9), so a crashed
command never leaves it taken. POSIX: `fcntl.flock`; Windows: `msvcrt.locking`, which
retries for about 10 s and then raises OSError (the gateway and its commands run on
Linux; this only keeps the module importable and working there).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

if sys.platform == "win32":
    import msvcrt
else:
    import fcntl

# Windows: os.open is text mode without O_BINARY; O_CLOEXEC exists only on POSIX.
_OPEN_FLAGS = os.O_RDWR | os.O_CREAT | getattr(os, "O_BINARY", 0) | getattr(os, "O_CLOEXEC", 0)


def lock_path(path: Path) -> Path:
    return path.with_name(path.name + ".lock")


@contextmanager
def exclusive_lock(path: Path) -> Iterator[None]:
    """Hold the lock of `path` (the file `<path>.lock`, created 0600 if absent) for the
    block; waits while another process or open file holds it. Raises OSError when the
    lock file cannot be created."""
    fd = os.open(lock_path(path), _OPEN_FLAGS, 0o600)
    try:
        if sys.platform == "win32":
            msvcrt.locking(fd, msvcrt.LK_LOCK, 1)
        else:
            fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            if sys.platform == "win32":
                os.lseek(fd, 0, os.SEEK_SET)
                msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
    finally:
        os.close(fd)
