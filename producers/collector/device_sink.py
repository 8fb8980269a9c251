"""What every driver hands its readings to: one `DeviceSink` per device, protocol-free.

A driver (producers/collector/drivers/) knows how to talk to a device: when to ask, what
to subscribe to, how to page. The sink does the rest, the same for every protocol:

- turns a payload of a record kind into a record (`RecordBuilder`: only what the schema
  has a field for, local ids pseudonymised) and encodes it; a payload that does not fit
  is kept aside in `state_dir/unmappable/<kind>.jsonl`, counted, never uploaded;
- does not spool a record twice: a stream record (event, job, log) whose id was pending
  in the spool at start or is listed in `SpooledIds`, nor a snapshot (heartbeat,
  counters, ...) that is the same observation as the last one spooled;
- appends to the spool, and moves a stream's cursor only after the records it covers are
  in the spool (`spool_page`), under the spool's commit lock;
- counts into the device's `PrinterStatus`, and spools an UNREACHABLE heartbeat when the
  device's heartbeat read fails, so the cloud knows why it went quiet.

Record ids derive from (device, kind, identity), where the driver chooses an identity
that is stable across re-reads (the printer API: endpoint and seq; OPC UA: an event's
own id): a re-read yields the same ids, and any repeat that still reaches the cloud is
recognisable there.

    sink.identify(device_id, name)                     # first: nothing is spooled without
    await sink.spool_one("heartbeat", payload, identity, RecordClass.DROPPABLE)
    items = [sink.encode("job", p, ("jobs", str(p["seq"]))) for p in page]
    await sink.spool_page("job", items, cursor=last_seq)   # one page, or one pushed event
    await sink.caught_up("job")                        # read to its end (after a reconnect)
    await sink.attempt(read, heartbeat=True)           # a read's failure -> status, UNREACHABLE
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common.logs import Throttle
from producers.collector.cursors import STREAM_OF_KIND, Cursor, CursorStore
from producers.collector.device_records import RecordBuilder
from producers.collector.spooled_ids import SpooledIds
from producers.errors import MappingError, PrinterUnavailable, SpoolFull
from producers.spool.async_spool import AsyncSpool
from producers.spool.spool import RecordClass
from schemas import RecordEncodeError, SchemaRegistry

log = logging.getLogger(__name__)


@dataclass
class PrinterStatus:
    """One device's health and counters: the status page's `printers` entries and the
    collector's metrics. `base_url` is the device's address as site.toml gives it."""

    base_url: str
    device_id: str = ""
    printer_name: str = ""
    reachable: bool = False
    last_ok_at: float | None = None
    last_error: str = ""
    records_spooled: int = 0
    spooled_by_kind: dict[str, int] = field(default_factory=dict)
    poll_failures: int = 0
    unmappable: int = 0
    lost_before_read: int = 0
    driver: str = "printer-api"


@dataclass(frozen=True, slots=True)
class SpoolItem:
    """One encoded record, ready to append."""

    kind: str
    record_class: RecordClass
    data: bytes


@dataclass(frozen=True)
class SinkShared:
    """What the sinks of one collector share: built once in `Collector.start`."""

    builder: RecordBuilder
    registry: SchemaRegistry
    spool: AsyncSpool
    cursors: CursorStore
    unmappable_dir: Path
    # Ids of KEEP records a previous run left in the spool, and the stream records among
    # them kept on disk until their stream was read again (`Collector._pending_record_ids`).
    pending_ids: frozenset[str] | set[str] = frozenset()
    spooled: SpooledIds | None = None


class DeviceSink:
    """The protocol-free bookkeeping of one device; its driver calls it.

    Not thread-safe: call it from the event loop. Raises `SpoolFull` from the spooling
    calls when the spool has no room (nothing appended, no cursor moved: read again later).
    """

    def __init__(self, address: str, driver: str, shared: SinkShared) -> None:
        self.status = PrinterStatus(address, driver=driver)
        self._shared = shared
        self._unavailable_log = Throttle(60.0)
        # Per kind, the id of the last snapshot spooled: a device whose clock has not
        # moved since the last read reports the same observation, which is not sent again.
        self._last_snapshot: dict[str, str] = {}

    @property
    def device_id(self) -> str:
        """The device's id once `identify` was called, else ""."""
        return self.status.device_id

    def identify(self, device_id: str, name: str) -> None:
        """The device said who it is; records are built for `device_id` from now on."""
        self.status.device_id, self.status.printer_name = device_id, name

    def encode(self, kind: str, payload: Mapping[str, Any], identity: tuple[str, ...],
               record_class: RecordClass = RecordClass.KEEP) -> SpoolItem | None:
        """The record of `kind` for `payload`, encoded; None when it was spooled already
        (before a restart, or the same snapshot as the last one) or does not fit its
        schema (then kept aside and counted). Call after `identify`."""
        try:
            record = self._shared.builder.build(kind, self.status.device_id, payload, identity)
            rid = record["record_id"]
            spooled = self._shared.spooled is not None and rid in self._shared.spooled
            if rid in self._shared.pending_ids or spooled or self._last_snapshot.get(kind) == rid:
                return None
            if kind not in STREAM_OF_KIND:
                self._last_snapshot[kind] = rid
            return SpoolItem(kind, record_class, self._shared.registry.encode(kind, record))
        except (MappingError, RecordEncodeError) as exc:
            self.status.unmappable += 1
            self._keep_unmappable(kind, payload, str(exc))
            return None

    async def spool(self, items: Sequence[SpoolItem | None]) -> None:
        """Append the items (None ones skipped) in one write; counted once appended."""
        kept = [item for item in items if item is not None]
        if kept:
            await self._shared.spool.append_many([(item.record_class, item.data) for item in kept])
            self.status.records_spooled += len(kept)
            for item in kept:
                self.status.spooled_by_kind[item.kind] = self.status.spooled_by_kind.get(item.kind, 0) + 1

    async def spool_one(self, kind: str, payload: Mapping[str, Any], identity: tuple[str, ...],
                        record_class: RecordClass = RecordClass.KEEP) -> None:
        """Encode and spool one snapshot (heartbeat, counters, identity, ...)."""
        await self.spool([self.encode(kind, payload, identity, record_class)])

    def cursor(self, kind: str) -> Cursor | None:
        """Where the stream of `kind` (an event, job or log kind) was read up to; None
        before its first page."""
        return self._shared.cursors.get(self.status.device_id, STREAM_OF_KIND[kind])

    async def spool_page(self, kind: str, items: Sequence[SpoolItem | None], cursor: Cursor) -> None:
        """Spool a page of the stream of `kind` (or one event pushed by the device), then
        move its cursor to `cursor`: a crash in between re-reads the page, whose records
        are then found pending and not spooled again. The cursor moves even when every
        record of the page was spooled before. Raises `SpoolFull` with nothing moved."""
        stream = STREAM_OF_KIND[kind]
        # Held from the append to the cursor move: the uploader peeks under it, so every
        # cursor covering a peeked record has moved, and is written before the ack
        # (`CursorSafeSpool`): a record never leaves the spool while its cursor could be lost.
        async with self._shared.spool.commit_lock:
            await self.spool(items)
            await self._shared.cursors.set(self.status.device_id, stream, cursor)

    async def caught_up(self, kind: str) -> None:
        """The stream of `kind` was read to its end and its cursor moved: the ids
        remembered from the last start for it are behind the cursor and can go (once the
        cursor is written)."""
        spooled, stream = self._shared.spooled, STREAM_OF_KIND[kind]
        if spooled is not None and spooled.holds(self.status.device_id, stream):
            await self._shared.cursors.flush()  # the ids go only once the cursor past them is on disk
            await spooled.confirm(self.status.device_id, stream)

    def lost_on_device(self, kind: str, count: int) -> None:
        """The device dropped `count` records of `kind` before they were read (its
        history is shorter than the time the collector was away)."""
        self.status.lost_before_read += count
        log.error("event=records_lost_on_printer printer=%s endpoint=%s count=%d",
                  self.status.device_id, STREAM_OF_KIND[kind], count)

    async def attempt(self, read: Callable[[], Awaitable[None]], *, heartbeat: bool = False) -> None:
        """Run one of the driver's reads and count its outcome. `PrinterUnavailable`
        marks the device unreachable (one log line a minute) and, for the `heartbeat`
        read of an identified device, spools an UNREACHABLE heartbeat; `SpoolFull` is
        logged (nothing was moved: the read is repeated next time). Neither is raised."""
        try:
            await read()
            self.answered()
        except PrinterUnavailable as exc:
            await self.unavailable(str(exc), heartbeat=heartbeat)
        except SpoolFull as exc:
            log.warning("event=spool_full printer=%s error=%s", self.status.base_url, exc)

    def answered(self) -> None:
        """A read got its answer: the device is reachable."""
        if not self.status.reachable and self.status.last_error:  # back after a failure
            log.warning("event=printer_reachable printer=%s", self.status.base_url)
        self._unavailable_log.reset()
        self.status.reachable = True
        self.status.last_ok_at = time.time()

    async def unavailable(self, reason: str, *, heartbeat: bool = False) -> None:
        """A read got no usable answer. With `heartbeat` (the read that stands for the
        device's liveness) and a known device, an UNREACHABLE heartbeat is spooled; a
        full spool skips it (a heartbeat is droppable anyway)."""
        self.status.poll_failures += 1
        self.status.reachable = False
        self.status.last_error = reason
        held = self._unavailable_log.allow(time.monotonic())
        if held is not None:
            log.warning("event=printer_unavailable printer=%s error=%s repeats_held_back=%d",
                        self.status.base_url, reason, held)
        if heartbeat and self.status.device_id:
            now_ms = int(time.time() * 1000)
            payload = {"event_time": now_ms, "status": "UNREACHABLE", "activity": "UNKNOWN"}
            try:
                await self.spool_one("heartbeat", payload, ("unreachable", str(now_ms)), RecordClass.DROPPABLE)
            except SpoolFull as exc:
                log.warning("event=spool_full printer=%s error=%s", self.status.base_url, exc)

    def _keep_unmappable(self, kind: str, payload: Mapping[str, Any], reason: str) -> None:
        # Kept at the site, not uploaded: the payload may hold private data.
        log.error("event=unmappable_record printer=%s kind=%s reason=%s", self.status.device_id, kind, reason)
        directory = self._shared.unmappable_dir
        directory.mkdir(parents=True, exist_ok=True)
        with open(directory / f"{kind}.jsonl", "a") as f:
            f.write(json.dumps({"device_id": self.status.device_id, "reason": reason, "payload": payload}) + "\n")
