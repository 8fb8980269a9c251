"""Polls one printer over HTTPS and turns its answers into spooled records.

Heartbeats on a short cadence; counters, consumables and identity less often; events,
jobs and logs by cursor (`?after=<seq>`), so each is read once. A cursor moves only after
the records it covers are in the spool, so a crash or a full spool re-reads rather than
loses. The records' ids derive from (device, endpoint, seq), so a re-read yields the same
ids: records whose id is already pending in the spool (a kill between the append and the
cursor write) are not spooled again, nor are they once a later run uploaded them before
reading the page again (`SpooledIds`), and any repeat that still reaches the cloud is
recognisable there. A printer that does not answer (or answers garbage)
gets a heartbeat with status UNREACHABLE, so the cloud knows why it went quiet.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from common.logs import Throttle
from producers.collector.config import Cadence
from producers.collector.device_records import RecordBuilder
from producers.errors import MappingError, SpoolFull
from producers.errors import PrinterUnavailable as PrinterUnavailable  # defined there; importable here too
from producers.spool.spool import RecordClass
from producers.spool.async_spool import AsyncSpool
from schemas import RecordEncodeError, SchemaRegistry

log = logging.getLogger(__name__)

# Paged endpoints: (endpoint, record kind, page size). A job snapshot can be 0.3 MB of
# JSON (several times that once parsed), and a printer starts with a backlog of them: pages
# of 5 (the printers' own default) keep what one read holds small.
_PAGED = (("events", "system_event", 1000), ("jobs", "job", 5), ("logs", "device_log", 1000))
# Page reads in flight at once across all pollers of a collector (`page_reads`). What a
# read holds (the answer, parsed, and its records) is freed after it, but the allocator
# keeps the peak: bounding the reads at once keeps that peak from growing with printers.
PAGE_READS = 8
_PAGED_NAMES = frozenset(name for name, _, _ in _PAGED)
_ENDPOINT_OF = {kind: name for name, kind, _ in _PAGED}
_CONSUMABLES = ("cleaning_roll", "agent_system", "printhead_system", "build_unit")


@dataclass
class PrinterStatus:
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


class CursorStore:
    """Per printer and paged endpoint, the last seq that is safely in the spool.

    A JSON file replaced atomically: a crash leaves the old cursors, never a torn file.
    Shared by all pollers of a collector; the lock keeps their writes from interleaving.
    """

    def __init__(self, path: Path) -> None:
        self._path = path
        self._lock = asyncio.Lock()
        try:
            self._data: dict[str, dict[str, int]] = json.loads(path.read_text())
        except FileNotFoundError:
            self._data = {}

    def get(self, printer: str, endpoint: str) -> int:
        return self._data.get(printer, {}).get(endpoint, 0)

    async def set(self, printer: str, endpoint: str, seq: int) -> None:
        async with self._lock:
            self._data.setdefault(printer, {})[endpoint] = seq
            await asyncio.to_thread(self._write, json.dumps(self._data, sort_keys=True))

    def _write(self, text: str) -> None:
        _write_atomically(self._path, text)


def _write_atomically(path: Path, text: str) -> None:
    """Replace `path` with `text`, durably: a crash leaves the old file or the new one."""
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(path)


class SpooledIds:
    """Ids of paged records (events, jobs, logs) that were in the spool when a collector
    started, kept on disk per printer and endpoint until a read of that endpoint has
    moved its cursor past them (`confirm`).

    A crash between spooling a page and writing its cursor leaves the page's records in
    the spool with the cursor behind them, so the next run reads the page again and must
    not spool them twice. Their being pending at that start is not enough: the run may
    upload and ack them and be killed before its poller gets to the page, and the run
    after would find them neither pending nor behind the cursor, and spool them again.
    The file is replaced atomically, like the cursors.
    """

    def __init__(self, path: Path) -> None:
        self._path = path
        self._lock = asyncio.Lock()
        try:
            data: dict[str, dict[str, list[str]]] = json.loads(path.read_text())
        except FileNotFoundError:
            data = {}
        self._by_source = {(device, endpoint): set(ids) for device, endpoints in data.items() for endpoint, ids in endpoints.items()}
        self._ids = set().union(*self._by_source.values())

    def __contains__(self, record_id: object) -> bool:
        return record_id in self._ids

    def add(self, device_id: str, kind: str, record_id: str) -> None:
        """Remember a pending record of `kind`; kinds that are not paged are ignored.
        Call `save` before anything can upload."""
        endpoint = _ENDPOINT_OF.get(kind)
        if endpoint is not None:
            self._by_source.setdefault((device_id, endpoint), set()).add(record_id)
            self._ids.add(record_id)

    def save(self) -> None:
        data: dict[str, dict[str, list[str]]] = {}
        for (device, endpoint), ids in sorted(self._by_source.items()):
            data.setdefault(device, {})[endpoint] = sorted(ids)
        _write_atomically(self._path, json.dumps(data))

    async def confirm(self, device_id: str, endpoint: str) -> None:
        """The endpoint of this printer was read to its end and its cursor written: its
        remembered ids are behind the cursor now and can go."""
        async with self._lock:
            ids = self._by_source.pop((device_id, endpoint), None)
            if ids:
                self._ids -= ids
                await asyncio.to_thread(self.save)


@dataclass(frozen=True)
class _Page:
    """A page read and encoded: how many entries it had, their records (those not spooled
    before) and the seq of its last entry, where the cursor moves once they are spooled."""

    entries: int
    items: list[tuple[str, RecordClass, bytes]]
    last_seq: int
    more: bool


class PrinterPoller:
    def __init__(
        self,
        base_url: str,
        *,
        session: aiohttp.ClientSession,
        ssl_context: ssl.SSLContext | bool,
        builder: RecordBuilder,
        registry: SchemaRegistry,
        spool: AsyncSpool,
        cursors: CursorStore,
        cadence: Cadence,
        unmappable_dir: Path,
        pending_ids: set[str] | None = None,
        spooled: SpooledIds | None = None,
        page_reads: asyncio.Semaphore | None = None,
    ) -> None:
        """`page_reads` is shared by the pollers of one collector and bounds their page
        reads at once (`PAGE_READS`); None gives this poller a bound of its own."""
        self.status = PrinterStatus(base_url)
        self._unavailable_log = Throttle(60.0)
        self._session, self._ssl = session, ssl_context
        self._builder, self._registry, self._spool = builder, registry, spool
        self._cursors, self._cadence = cursors, cadence
        self._unmappable_dir = unmappable_dir
        self._pending_ids = pending_ids if pending_ids is not None else set()
        self._spooled = spooled
        self._page_reads = page_reads if page_reads is not None else asyncio.Semaphore(PAGE_READS)
        # Per kind, the id of the last snapshot spooled: a printer whose clock has not
        # moved since the last poll reports the same observation, which is not sent again.
        self._last_snapshot: dict[str, str] = {}

    async def run(self, stop: asyncio.Event) -> None:
        """Poll until `stop` is set. Each endpoint keeps its own cadence."""
        c = self._cadence
        tasks = {
            self._identity: c.identity_s,
            self._heartbeat: c.heartbeat_s,
            self._paged_all: min(c.events_s, c.jobs_s, c.logs_s),
            self._counters: c.counters_s,
            self._consumables: c.consumables_s,
        }
        due = dict.fromkeys(tasks, 0.0)
        while not stop.is_set():
            now = time.monotonic()
            if not self.status.device_id:
                due = dict.fromkeys(tasks, now)  # nothing without identity: ask again first
            for task, period in tasks.items():
                if due[task] <= now and (self.status.device_id or task == self._identity):
                    await self._guarded(task)
                    due[task] = now + period
            if not self.status.device_id:
                wait = min(5.0, c.heartbeat_s)
            else:
                wait = max(0.0, min(due.values()) - time.monotonic())
            try:
                await asyncio.wait_for(stop.wait(), wait)
            except asyncio.TimeoutError:
                pass

    async def _guarded(self, task: Any) -> None:
        try:
            await task()
            if not self.status.reachable and self.status.last_error:  # back after a failure
                log.warning("event=printer_reachable printer=%s", self.status.base_url)
            self._unavailable_log.reset()
            self.status.reachable = True
            self.status.last_ok_at = time.time()
        except PrinterUnavailable as exc:
            self.status.poll_failures += 1
            self.status.reachable = False
            self.status.last_error = str(exc)
            held = self._unavailable_log.allow(time.monotonic())
            if held is not None:
                log.warning("event=printer_unavailable printer=%s error=%s repeats_held_back=%d",
                            self.status.base_url, exc, held)
            if task != self._heartbeat and self.status.device_id:
                return
            if self.status.device_id:
                unreachable = self._encode("heartbeat", *self._unreachable())
                if unreachable is not None:
                    await self._spool_records([("heartbeat", RecordClass.DROPPABLE, unreachable)])
        except SpoolFull as exc:
            log.warning("event=spool_full printer=%s error=%s", self.status.base_url, exc)

    async def _get(self, path: str) -> Any:
        url = self.status.base_url + path
        try:
            async with self._session.get(url, ssl=self._ssl) as resp:
                if resp.status != 200:
                    raise PrinterUnavailable(f"{path}: HTTP {resp.status}")
                body = await resp.read()
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            raise PrinterUnavailable(f"{path}: {exc!r}") from None
        try:
            return json.loads(body)
        except ValueError:
            raise PrinterUnavailable(f"{path}: answer is not JSON ({body[:40]!r})") from None

    async def _identity(self) -> None:
        identity = await self._get("api/v1/identity")
        device_id = identity.get("printer_uuid") if isinstance(identity, Mapping) else None
        if not device_id:
            raise PrinterUnavailable("api/v1/identity: no printer_uuid")
        self.status.device_id, self.status.printer_name = device_id, identity.get("printer_name", "")
        await self._spool_one("device_identity", identity, ("identity", str(identity.get("event_time"))))

    async def _heartbeat(self) -> None:
        status = await self._get("api/v1/status")
        await self._spool_one("heartbeat", status, ("heartbeat", str(status.get("event_time"))), RecordClass.DROPPABLE)

    async def _counters(self) -> None:
        counters = await self._get("api/v1/counters")
        await self._spool_one("usage_counters", counters, ("counters", str(counters.get("event_time"))))

    async def _consumables(self) -> None:
        answer = await self._get("api/v1/consumables")
        items = []
        for kind in _CONSUMABLES:
            payload = answer.get(kind) if isinstance(answer, Mapping) else None
            if isinstance(payload, Mapping):
                data = self._encode(kind, payload, (kind, str(payload.get("event_time"))))
                if data is not None:
                    items.append((kind, RecordClass.KEEP, data))
        await self._spool_records(items)

    async def _paged_all(self) -> None:
        for endpoint, kind, limit in _PAGED:
            await self._paged(endpoint, kind, limit)

    async def _paged(self, endpoint: str, kind: str, limit: int) -> None:
        printer = self.status.device_id
        while True:
            after = self._cursors.get(printer, endpoint)
            async with self._page_reads:
                page = await self._read_page(endpoint, kind, after, limit)
            if page.entries:  # its records may all be spooled already; the cursor moves anyway
                async with self._spool.commit_lock:
                    await self._spool_records(page.items)
                    await self._cursors.set(printer, endpoint, page.last_seq)
            if not page.more:
                if self._spooled is not None:
                    await self._spooled.confirm(printer, endpoint)
                return

    async def _read_page(self, endpoint: str, kind: str, after: int, limit: int) -> _Page:
        """One page past `after`, encoded: the printer's answer is not referenced once
        this returns, so the next await holds only the encoded records."""
        printer = self.status.device_id
        answer = await self._get(f"api/v1/{endpoint}?after={after}&limit={limit}")
        entries = answer.get(endpoint, []) if isinstance(answer, Mapping) else []
        oldest = int(answer.get("oldest_seq", 0) or 0)
        if entries and oldest > after + 1:
            self.status.lost_before_read += oldest - after - 1
            log.error("event=records_lost_on_printer printer=%s endpoint=%s count=%d", printer, endpoint, oldest - after - 1)
        items = []
        for entry in entries:
            data = self._encode(kind, entry, (endpoint, str(entry["seq"])))
            if data is not None:
                items.append((kind, RecordClass.KEEP, data))
        last_seq = int(entries[-1]["seq"]) if entries else after
        return _Page(len(entries), items, last_seq, bool(answer.get("more")))

    def _encode(self, kind: str, payload: Mapping[str, Any], identity: tuple[str, ...]) -> bytes | None:
        """The encoded record, or None when the answer does not fit the schema (kept aside)."""
        try:
            record = self._builder.build(kind, self.status.device_id, payload, identity)
            rid = record["record_id"]
            spooled = self._spooled is not None and rid in self._spooled
            if rid in self._pending_ids or spooled or self._last_snapshot.get(kind) == rid:
                return None  # spooled already (before a restart, or the same observation)
            if identity[0] not in _PAGED_NAMES:
                self._last_snapshot[kind] = rid
            return self._registry.encode(kind, record)
        except (MappingError, RecordEncodeError) as exc:
            self.status.unmappable += 1
            self._keep_unmappable(kind, payload, str(exc))
            return None

    def _keep_unmappable(self, kind: str, payload: Mapping[str, Any], reason: str) -> None:
        # Kept at the site, not uploaded: the payload may hold private data.
        log.error("event=unmappable_record printer=%s kind=%s reason=%s", self.status.device_id, kind, reason)
        self._unmappable_dir.mkdir(parents=True, exist_ok=True)
        with open(self._unmappable_dir / f"{kind}.jsonl", "a") as f:
            f.write(json.dumps({"device_id": self.status.device_id, "reason": reason, "payload": payload}) + "\n")

    async def _spool_one(self, kind: str, payload: Mapping[str, Any], identity: tuple[str, ...], cls: RecordClass = RecordClass.KEEP) -> None:
        data = self._encode(kind, payload, identity)
        if data is not None:
            await self._spool_records([(kind, cls, data)])

    async def _spool_records(self, items: list[tuple[str, RecordClass, bytes]]) -> None:
        """Append (kind, class, record) items in one write; counted once appended."""
        if items:
            await self._spool.append_many([(cls, data) for _, cls, data in items])
            self.status.records_spooled += len(items)
            for kind, _, _ in items:
                self.status.spooled_by_kind[kind] = self.status.spooled_by_kind.get(kind, 0) + 1

    @staticmethod
    def _unreachable() -> tuple[dict[str, Any], tuple[str, ...]]:
        now_ms = int(time.time() * 1000)
        payload = {"event_time": now_ms, "status": "UNREACHABLE", "activity": "UNKNOWN"}
        return payload, ("unreachable", str(now_ms))
