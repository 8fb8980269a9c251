"""Records the gateway refused on their own and the collector keeps aside to send again.

The gateway answers a batch 200 and lists the records it refused (producers/gateway/
gateway.py). Those refused for a reason that can pass (`foreign_device`: the printer is not
enrolled yet; `unknown_fingerprint`: the gateway does not know the schema yet) wait here,
in `kept/` beside the spool, one file per device, until the uploader sends them again;
the rest of the site's records flow meanwhile. The uploader writes them here (fsynced)
before it acks their batch in the spool, so a crash between loses nothing; a record is
known by the spool sequence number it was refused under, so the same batch answered
twice (its ack lost to a crash) keeps it once.

Sending again: the gateway's mark has passed the old numbers (they would be taken for
repeats), so the records are appended to the spool again, with new numbers, in three
steps that survive a crash at any point:

    1. `take`: rename `<device>.jsonl` to `<device>.resending`, then write
       `<device>.resending.mark` holding the spool's next sequence number N
    2. the uploader appends the records to the spool (one KEEP write, under the lock
       that keeps the pollers out, so they get N, N+1, ...)
    3. `done`: delete both files

On start, `open` returns what a crash left between 1 and 3; `appended_already` says how
many of its records the spool already holds (from N, the spool's next number and what
is pending), and `requeue` keeps the rest again, for the next resend. Heartbeats come back as KEEP records: the
store has bounded them already.

Bounded: past `max_records` or `max_bytes` (payload bytes), the oldest kept records move
to `rejected/kept-<device>-<first seq>-<last seq>.jsonl` (the same lines, with why they
moved), and that is logged; nothing is dropped unseen.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, unquote

log = logging.getLogger(__name__)

_KEPT, _RESENDING, _MARK = ".jsonl", ".resending", ".resending.mark"


@dataclass(frozen=True, slots=True)
class KeptRecord:
    """One refused record: the spool number it was refused under, whose it is, why, when."""

    seq: int
    device_id: str
    reason: str  # the gateway's error code
    message: str
    kept_at: float
    payload: bytes

    def line(self) -> bytes:
        return json.dumps({"seq": self.seq, "device_id": self.device_id, "reason": self.reason,
                           "message": self.message, "kept_at": self.kept_at,
                           "payload": base64.b64encode(self.payload).decode()}).encode() + b"\n"

    @classmethod
    def parse(cls, line: bytes) -> KeptRecord:
        raw = json.loads(line)
        return cls(int(raw["seq"]), str(raw["device_id"]), str(raw["reason"]), str(raw["message"]),
                   float(raw["kept_at"]), base64.b64decode(raw["payload"]))


@dataclass(frozen=True, slots=True)
class Taken:
    """A device's kept records on their way back into the spool (`KeptStore.take`).
    `next_seq`: the spool's next number when they were taken; None when the crash came
    before the mark was written (then nothing of them was appended)."""

    device_id: str
    records: tuple[KeptRecord, ...]
    next_seq: int | None


@dataclass
class KeptCounters:
    """Since start: records kept aside, appended to the spool again, and moved to
    `rejected/` because the store was full. Plain numbers for the metrics."""

    kept: int = 0
    resent: int = 0
    evicted: int = 0


def appended_already(taken: Taken, next_seq: int, acked_seq: int, pending: Iterable[int]) -> int:
    """How many of `taken`'s records (a prefix: a torn append loses a suffix) the spool
    holds already, from its next number, its acked number and its pending numbers now."""
    if taken.next_seq is None or next_seq <= taken.next_seq:
        return 0  # nothing was numbered from the mark on
    if acked_seq >= taken.next_seq:
        return len(taken.records)  # some were uploaded: the append had returned
    end = taken.next_seq + len(taken.records)
    return sum(1 for seq in pending if taken.next_seq <= seq < end)


class KeptStore:
    """The `kept/` directory. Blocking file I/O: call it through `asyncio.to_thread`,
    from one task (the uploader)."""

    def __init__(self, directory: Path, rejected_dir: Path, *, max_records: int, max_bytes: int) -> None:
        if max_records < 1 or max_bytes < 1:
            raise ValueError("the kept-aside store needs room for at least one record")
        self.directory, self.rejected_dir = directory, rejected_dir
        self.max_records, self.max_bytes = max_records, max_bytes
        self.counters = KeptCounters()
        self._by_device: dict[str, list[KeptRecord]] = {}
        self._resending: dict[str, Taken] = {}
        self._seqs: set[int] = set()  # every number held here, resending included

    # --- reading ---------------------------------------------------------------------

    def open(self) -> list[Taken]:
        """Load the store; return what a crash left on its way back into the spool."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self._by_device.clear()
        self._resending.clear()
        self._seqs.clear()
        for path in sorted(self.directory.glob("*" + _KEPT)):
            records = self._read(path)
            if records:
                self._by_device[records[0].device_id] = records
                self._seqs.update(r.seq for r in records)
        for path in sorted(self.directory.glob("*" + _RESENDING)):
            records = self._read(path)
            mark = path.with_name(path.name[: -len(_RESENDING)] + _MARK)
            next_seq = int(mark.read_text()) if mark.exists() else None
            device = unquote(path.name[len("d-"): -len(_RESENDING)])
            taken = Taken(device, tuple(records), next_seq)
            self._resending[device] = taken
            self._seqs.update(r.seq for r in records)
        return list(self._resending.values())

    def _read(self, path: Path) -> list[KeptRecord]:
        out = []
        for number, line in enumerate(path.read_bytes().splitlines(), 1):
            try:
                out.append(KeptRecord.parse(line))
            except (ValueError, KeyError, TypeError) as exc:
                # A line cut by a crash during its append: its batch was not acked then,
                # so the spool still holds the record and will send it again.
                log.warning("event=kept_line_unreadable path=%s line=%d error=%r", path, number, exc)
        return out

    @property
    def records(self) -> int:
        return sum(len(v) for v in self._by_device.values())

    @property
    def bytes(self) -> int:
        return sum(len(r.payload) for v in self._by_device.values() for r in v)

    def counts(self) -> dict[str, dict[str, int]]:
        """Kept records per device and reason (waiting, and on their way back)."""
        out: dict[str, dict[str, int]] = {}
        for records in [*self._by_device.values(), *(t.records for t in self._resending.values())]:
            for r in records:
                by_reason = out.setdefault(r.device_id, {})
                by_reason[r.reason] = by_reason.get(r.reason, 0) + 1
        return out

    def devices(self) -> list[str]:
        return sorted(self._by_device)

    # --- keeping ---------------------------------------------------------------------

    def add(self, records: Sequence[KeptRecord]) -> int:
        """Keep `records` durably (appended and fsynced when this returns); a record whose
        number is here already is not kept twice. Then make room past the bounds. Returns
        how many were new."""
        new = [r for r in records if r.seq not in self._seqs]
        by_device: dict[str, list[KeptRecord]] = {}
        for r in new:
            by_device.setdefault(r.device_id, []).append(r)
        for device, group in by_device.items():
            with open(self._path(device, _KEPT), "ab") as f:
                f.write(b"".join(r.line() for r in group))
                f.flush()
                os.fsync(f.fileno())
            self._by_device.setdefault(device, []).extend(group)
            self._seqs.update(r.seq for r in group)
        if by_device:
            _fsync_dir(self.directory)
        self.counters.kept += len(new)
        self._evict()
        return len(new)

    def _evict(self) -> None:
        """Move the oldest kept records to `rejected/` until the store is within bounds."""
        records, size = self.records, self.bytes
        if records <= self.max_records and size <= self.max_bytes:
            return
        oldest = sorted((r for v in self._by_device.values() for r in v), key=lambda r: (r.kept_at, r.seq))
        victims: list[KeptRecord] = []
        for r in oldest:
            if records <= self.max_records and size <= self.max_bytes:
                break
            victims.append(r)
            records, size = records - 1, size - len(r.payload)
        gone = {r.seq for r in victims}
        by_device: dict[str, list[KeptRecord]] = {}
        for r in victims:
            by_device.setdefault(r.device_id, []).append(r)
        why = f"the kept-aside store was full ({self.max_records} records, {self.max_bytes} bytes)"
        for device, moved in by_device.items():
            # First where the operator finds them (one file a round, each line a record
            # with its reason), then out of the store.
            name = f"kept-{quote(device, safe='') or 'unknown'}-{moved[0].seq}-{moved[-1].seq}.jsonl"
            self.rejected_dir.mkdir(parents=True, exist_ok=True)
            _write_synced(self.rejected_dir / name, b"".join(
                json.dumps({**json.loads(r.line()), "moved": why}).encode() + b"\n" for r in moved))
            _fsync_dir(self.rejected_dir)
            self._rewrite(device, [r for r in self._by_device[device] if r.seq not in gone])
            log.error("event=kept_records_rejected device=%s records=%d file=%s: the kept-aside store is full; "
                      "the oldest records moved to rejected/", device or "-", len(moved), self.rejected_dir / name)
        self._seqs -= gone
        self.counters.evicted += len(victims)

    def _rewrite(self, device: str, records: list[KeptRecord]) -> None:
        path = self._path(device, _KEPT)
        if not records:
            path.unlink(missing_ok=True)
            self._by_device.pop(device, None)
        else:
            tmp = path.with_suffix(".tmp")
            with open(tmp, "wb") as f:
                f.write(b"".join(r.line() for r in records))
                f.flush()
                os.fsync(f.fileno())
            tmp.replace(path)
            self._by_device[device] = records
        _fsync_dir(self.directory)

    # --- sending again ---------------------------------------------------------------

    def take(self, device: str, next_seq: int) -> Taken:
        """Step 1: the device's kept records leave the store for the spool, whose next
        number is `next_seq` (the caller keeps other appends out until `done`)."""
        records = tuple(self._by_device.get(device, ()))
        os.replace(self._path(device, _KEPT), self._path(device, _RESENDING))
        try:
            _fsync_dir(self.directory)
            _write_synced(self._path(device, _MARK), str(next_seq).encode())
        except OSError:
            # Without its mark a resending file counts as never appended (`open`).
            os.replace(self._path(device, _RESENDING), self._path(device, _KEPT))
            raise
        del self._by_device[device]
        taken = Taken(device, records, next_seq)
        self._resending[device] = taken
        return taken

    def done(self, taken: Taken) -> None:
        """Step 3: the spool holds every record of `taken`."""
        self._path(taken.device_id, _RESENDING).unlink(missing_ok=True)
        self._path(taken.device_id, _MARK).unlink(missing_ok=True)
        _fsync_dir(self.directory)
        self._resending.pop(taken.device_id, None)
        self._seqs -= {r.seq for r in taken.records}
        self.counters.resent += len(taken.records)

    def requeue(self, taken: Taken, rest: Sequence[KeptRecord]) -> None:
        """After a crash: `taken` (from `open`) is done except `rest`, which the spool does
        not hold; `rest` is kept again (durably, first), then the resend's files go. A
        crash between leaves both, and the next `open` comes to the same `rest`, which
        is not kept twice (known by its numbers)."""
        self._resending.pop(taken.device_id, None)
        held = {r.seq for records in self._by_device.values() for r in records}
        self._seqs -= {r.seq for r in taken.records} - held
        kept_before = self.counters.kept
        self.add(rest)
        self.counters.kept = kept_before  # kept once already, before the crash
        self._path(taken.device_id, _RESENDING).unlink(missing_ok=True)
        self._path(taken.device_id, _MARK).unlink(missing_ok=True)
        _fsync_dir(self.directory)
        self.counters.resent += len(taken.records) - len(rest)

    def undo(self, taken: Taken) -> None:
        """The append failed (the spool refused it, nothing written): back into the store."""
        self._path(taken.device_id, _MARK).unlink(missing_ok=True)
        os.replace(self._path(taken.device_id, _RESENDING), self._path(taken.device_id, _KEPT))
        _fsync_dir(self.directory)
        self._resending.pop(taken.device_id, None)
        self._by_device[taken.device_id] = [*taken.records, *self._by_device.get(taken.device_id, [])]

    def _path(self, device: str, suffix: str) -> Path:
        # Quoted: a device id may hold "/" or be ".."; "d-" keeps "" a valid name.
        return self.directory / ("d-" + quote(device, safe="") + suffix)


def write_rejected(directory: Path, stem: str, payload: bytes, info: dict[str, object]) -> None:
    """One record the gateway will never take, where the operator finds it: the record as
    sent (`<stem>.record`) and why (`<stem>.json`), both fsynced."""
    directory.mkdir(parents=True, exist_ok=True)
    _write_synced(directory / f"{stem}.record", payload)
    _write_synced(directory / f"{stem}.json", json.dumps({**info, "at": time.time()}, indent=2).encode())
    _fsync_dir(directory)


def _write_synced(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(path)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
