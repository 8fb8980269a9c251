"""Errors of the `producers` package (printer simulator, site collector, gateway).

Every error a producers component raises on purpose is a `ProducerError`, under
printfleet's root `PrintfleetError` (common/errors.py). Each leaf says whether calling
again later can succeed (`retriable`); callers decide on that attribute, never on the
type. Each component hangs its own subtree under the root:

    PrintfleetError                  common/errors.py
    └── ProducerError                root of the package; not retriable unless a leaf says so
        ├── SpoolError               the collector's durable spool (producers/spool/)
        │   ├── SpoolLocked          retriable  another process has the spool directory open
        │   ├── SpoolFull            retriable  no room, and only KEEP records are left
        │   ├── SpoolWriteFailed     retriable  the file system refused an append; undone
        │   ├── RecordTooLarge                  a record (or one append) can never fit
        │   ├── InvalidAck                      the batch is not this spool's oldest pending one
        │   ├── SpoolClosed                     used before open() or after close()
        │   ├── SpoolBroken                     files cannot be opened, or are in an unknown state
        │   ├── SpoolConfigError                bad arguments to Spool(...) (also a ValueError)
        │   └── FrameError                      a validated segment region no longer reads back;
        │                                       internal: the spool raises SpoolBroken for it
        ├── CollectorError           the collector's drivers (producers/collector/)
        │   ├── PrinterUnavailable   retriable  the printer refused, timed out, or did not
        │   │   │                               answer JSON; polled again next cycle
        │   │   └── OpcUaRefused     retriable  an OPC UA server refused this collector: password,
        │   │                                   untrusted certificate, changed server certificate,
        │   │                                   no secure endpoint; tried again (the site may fix it)
        │   ├── MappingError                    a printer's payload does not fit its record schema
        │   └── CollectorConfigError            site.toml unusable (also a ValueError)
        ├── UploadFormatError        the upload body format (producers/batch_format.py)
        │   ├── FramingError                    not gzip, or not a sequence of whole frames
        │   └── TooLarge                        decompresses past the allowed size
        ├── GatewayError             the cloud gateway (producers/gateway/)
        │   ├── Refused              by status  a batch the gateway answers with an HTTP error, or
        │   │                                   one record it refuses (listed in a 200 answer);
        │   │                                   retriable for 429 (busy) and 503 (no Kafka)
        │   └── EnrolmentError                  an edit of the sites file refused: bad or unknown
        │                                       id, duplicate, unreadable file (also a ValueError)
        ├── SimulatorError           the printer simulator (producers/simulator/errors.py)
        │   ├── NotFoundError                   no such thing on the simulator (HTTP 404)
        │   │   ├── UnknownPrinterError         no simulated printer has that id
        │   │   └── UnknownLogError             the printer has no (or no longer a) log with that id
        │   ├── BadRequestError                 a query or body the simulator cannot use (HTTP 400)
        │   └── ServerStartError     retriable  the HTTPS or OPC UA server could not listen
        └── OpcUaModelError          the shared OPC UA model (producers/opcua_model/errors.py)
            ├── NodesetLoadError                a vendored NodeSet file did not load into a server
            └── PkiError                        a key or certificate could not be made or read

To add a component's errors: one intermediate class under `ProducerError` named after the
component, leaves below it with an explicit `retriable`, and a branch in the tree above
(and in common/errors.py). The modules that raise these import them from here; the old
names (`producers.collector.device_records.MappingError`, ...) still import. Library
exceptions (OSError, aiohttp, aiokafka) are translated at one boundary per component and
never leave the package untranslated.
"""

from __future__ import annotations

from pathlib import Path

from common.errors import PrintfleetError


class ProducerError(PrintfleetError):
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


class FrameError(SpoolError):
    """A segment region that recovery had validated no longer holds valid frames (disk
    corruption, another writer). Raised by `producers.spool.frames.read_frames`; internal:
    `producers.spool.spool` turns it into `SpoolBroken`, so callers never see it."""

    retriable = False


# --- collector (producers/collector/) ------------------------------------------------------


class CollectorError(ProducerError):
    """Something a collector's driver could not get from a printer or make into a record."""

    retriable = False


class PrinterUnavailable(CollectorError):
    """No usable answer: refused, timed out, an HTTP error, or a body that is not JSON.

    Raised by a driver (producers/collector/drivers/) and caught by its `DeviceSink`
    (`attempt`, producers/collector/device_sink.py): it counts the failure, marks the
    printer unreachable, and the driver reads again next cycle, when the printer may be
    back (hence retriable). The printer keeps its history meanwhile.
    """

    retriable = True


class OpcUaRefused(PrinterUnavailable):
    """An OPC UA server refused this collector, for a reason the site has to fix: a wrong
    user name or password, this collector's certificate not trusted, a server certificate
    other than the pinned one, no Basic256Sha256 SignAndEncrypt endpoint. The message is
    one line naming the reason (and both thumbprints for a changed certificate). Raised
    by the OPC UA driver (producers/collector/drivers/opcua.py), counted like any
    unavailability; retriable: the driver tries again, and succeeds once the site fixed it."""

    retriable = True


class MappingError(CollectorError):
    """A payload lacks a field the schema requires, or has a value of the wrong shape.

    Raised by `RecordBuilder.build` (producers/collector/device_records.py). The same
    payload fails the same way again: the device's sink keeps it at the site, unmapped.
    """

    retriable = False


# --- upload body format (producers/batch_format.py) ----------------------------------------


class UploadFormatError(ProducerError):
    """An upload body that is not a gzipped sequence of frames the gateway accepts."""

    retriable = False


class FramingError(UploadFormatError):
    """The body is not gzip, or its decompressed bytes are not a sequence of complete
    frames (or hold more records than allowed). The gateway answers 400."""

    retriable = False


class TooLarge(UploadFormatError):
    """The body decompresses to more than the allowed size (a compression bomb, or a
    batch too large). The gateway answers 413; the same body is refused again."""

    retriable = False


# --- gateway (producers/gateway/) ----------------------------------------------------------


class GatewayError(ProducerError):
    """Something the gateway refused to produce to Kafka."""

    retriable = False


_RETRIABLE_STATUSES = frozenset({429, 503})


class Refused(GatewayError):
    """A batch the gateway will not produce, or, with `record` set, one record of a batch
    it refuses on its own; carries the HTTP answer: `status`, an error `code` for the
    body, and the index of the `record` when one is to blame.

    Raised inside `Gateway` (producers/gateway/gateway.py) and turned into the response
    there: a batch's into its error answer, a record's into a line of the 200 answer's
    `refused` list (the rest of the batch is produced). Retriable (the answer carries `Retry-After`) when `status` is 429 (busy) or
    503 (Kafka unavailable); every other status refuses the same batch again.
    """

    retriable = False  # the class's default; each instance's follows its status

    def __init__(self, status: int, code: str, message: str, record: int | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.record = status, code, record
        self.retriable = status in _RETRIABLE_STATUSES


class EnrolmentError(GatewayError, ValueError):
    """An edit of the gateway's sites file (`printfleet sites`, producers/gateway/enrolment.py)
    that is refused: an id the file cannot hold, a site that exists already or does not
    exist, a printer enrolled at another site, or a file that cannot be read or replaced.
    The file is left as it was. Not retriable: the same edit is refused again.
    """

    retriable = False


# --- collector settings (producers/collector/config.py) ------------------------------------


class CollectorConfigError(CollectorError, ValueError):
    """The collector's site.toml cannot be used: missing or unreadable, not TOML, or a key
    that is missing, unknown or of the wrong type. Raised by `CollectorSettings.load`; the
    message is one line naming the file, the key (`[cadence] heartbeat_s`) and what was
    expected. `path` is the file, `key` the key (None for the file as a whole). The same
    file fails the same way again."""

    retriable = False

    def __init__(self, path: Path, problem: str, key: str | None = None) -> None:
        self.path = path
        self.key = key
        super().__init__(f"config file {path}: {problem}")
