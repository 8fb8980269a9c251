"""Errors of the `producers` package (printer simulator, site collector, gateway).

Every error a producers component raises on purpose is a `ProducerError`. Each leaf says
whether calling again later can succeed (`retriable`); callers decide on that attribute,
never on the type. Each component hangs its own subtree under the root:

    ProducerError                root of the package; not retriable unless a leaf says so
    └── SpoolError               the collector's durable spool (producers/spool/spool.py)
        ├── SpoolLocked          retriable  another process has the spool directory open
        ├── SpoolFull            retriable  no room, and only KEEP records are left
        ├── SpoolWriteFailed     retriable  the file system refused an append; undone
        ├── RecordTooLarge                  a record (or one append) can never fit
        ├── InvalidAck                      the batch is not this spool's oldest pending one
        ├── SpoolClosed                     used before open() or after close()
        ├── SpoolBroken                     files cannot be opened, or are in an unknown state
        └── SpoolConfigError                bad arguments to Spool(...) (also a ValueError)

To add a component's errors: one intermediate class under `ProducerError` named after the
component, leaves below it with an explicit `retriable`, and a branch in the tree above.
Library exceptions (OSError, aiohttp, aiokafka) are translated at one boundary per
component and never leave the package untranslated.
"""

from __future__ import annotations

from pathlib import Path


class ProducerError(Exception):
    """Root of every error raised by `producers`."""

    retriable: bool = False


# --- spool (producers/spool/spool.py) ------------------------------------------------------


class SpoolError(ProducerError):
    """Something the collector's durable spool refused or could not do."""

    retriable = False


class SpoolLocked(SpoolError):
    """Another process holds the exclusive lock on the spool directory.

    Raised by `Spool.open()`. Two collectors must never share a spool; when the other one
    is only shutting down, opening again after it exited succeeds, hence retriable.
    `holder` is the pid written into the lock file by the holder, if readable.
    """

    retriable = True

    def __init__(self, directory: Path, holder: str | None) -> None:
        self.directory = directory
        self.holder = holder
        who = f"process {holder}" if holder else "another process"
        super().__init__(f"spool {directory} is locked by {who}")


class SpoolFull(SpoolError):
    """An append does not fit in `max_bytes` even after dropping every DROPPABLE record.

    Raised by `Spool.append_many()` before anything was written or dropped: the spool is
    exactly as it was. The collector must stop advancing its cursors on the printers (they
    keep their history) and try again after the uploader acknowledged batches. The spool
    cannot know when that will be, so `retry_after` is None: use the poll interval.
    """

    retriable = True
    retry_after: float | None = None

    def __init__(self, needed: int, free: int, max_bytes: int) -> None:
        self.needed = needed
        self.free = free
        self.max_bytes = max_bytes
        super().__init__(
            f"spool full: append needs {needed} bytes, {free} of {max_bytes} free "
            "and no droppable records left"
        )


class SpoolWriteFailed(SpoolError):
    """The file system refused an append (ENOSPC, EIO, ...) and the spool undid it.

    Nothing of the failed append is on disk; the spool stays usable. Retrying may succeed
    once the disk has room again. `errno` is the OSError's errno.
    """

    retriable = True

    def __init__(self, reason: str, errno: int | None) -> None:
        self.errno = errno
        super().__init__(f"spool append failed and was rolled back: {reason}")


class RecordTooLarge(SpoolError):
    """One record's frame, or one `append_many()` call's frames together, are larger than
    `max_bytes` (or a payload is over the 4 GiB frame limit).

    It can never be spooled; the caller has to append fewer records at a time, or split
    or skip the record. Nothing was written.
    """

    retriable = False

    def __init__(self, frame_bytes: int, limit: int) -> None:
        self.frame_bytes = frame_bytes
        self.limit = limit
        super().__init__(f"record frame of {frame_bytes} bytes exceeds the limit of {limit}")


class InvalidAck(SpoolError):
    """`Spool.ack()` got a batch that it must not apply.

    Either the batch came from another `Spool` object (another directory, or before a
    reopen), or older records than the batch's are still pending (the batch was not
    taken by `peek()` from the oldest records). Acking it could lose records, so nothing
    was changed. Peek again.
    """

    retriable = False


class SpoolClosed(SpoolError):
    """The spool was used before `open()` or after `close()`. A bug in the caller."""

    retriable = False


class SpoolBroken(SpoolError):
    """The spool's files cannot be used as they are: `open()` could not create, lock or
    read the directory, or an I/O error (a failed rollback, a segment that no longer
    reads back) left them in a state this object can no longer vouch for. After the
    latter, every later call raises this too.

    Close the spool and open it again (once the disk is fixed): recovery rebuilds the
    state from the files and keeps every record whose append had returned.
    """

    retriable = False


class SpoolConfigError(SpoolError, ValueError):
    """`Spool(...)` got arguments that cannot work (e.g. `max_bytes` smaller than two
    segments). Raised by the constructor; a configuration bug."""

    retriable = False
