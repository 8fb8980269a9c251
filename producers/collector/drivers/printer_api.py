"""The printer API driver: polls one printer over HTTPS (docs/printer-api.md).

Heartbeats on a short cadence; counters, consumables and identity less often; events,
jobs and logs by cursor (`?after=<seq>`), so each is read once. Everything it reads goes
to the printer's `DeviceSink`, which builds, de-duplicates and spools the records and
moves a cursor only after the page it covers is in the spool. A printer that does not
answer (or answers garbage) is `PrinterUnavailable`; the sink counts it, and for the
heartbeat spools one with status UNREACHABLE.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp

from producers.collector.config import Cadence
from producers.collector.device_sink import DeviceSink, PrinterStatus, SpoolItem
from producers.errors import PrinterUnavailable
from producers.spool.spool import RecordClass

NAME = "printer-api"

# Paged endpoints: (endpoint, record kind, page size). A job snapshot can be 0.3 MB of
# JSON (several times that once parsed), and a printer starts with a backlog of them: pages
# of 5 (the printers' own default) keep what one read holds small.
_PAGED = (("events", "system_event", 1000), ("jobs", "job", 5), ("logs", "device_log", 1000))
# Page reads in flight at once across all printer API drivers of a collector
# (`page_reads`). What a read holds (the answer, parsed, and its records) is freed after
# it, but the allocator keeps the peak: bounding the reads at once keeps that peak from
# growing with printers.
PAGE_READS = 8
_CONSUMABLES = ("cleaning_roll", "agent_system", "printhead_system", "build_unit")


@dataclass(frozen=True)
class _Page:
    """A page read and encoded: how many entries it had, their records (those not spooled
    before) and the seq of its last entry, where the cursor moves once they are spooled."""

    entries: int
    items: list[SpoolItem | None]
    last_seq: int
    more: bool


class PrinterApiDriver:
    """One printer's poll loop; `run` until stopped. The HTTP session and `page_reads`
    are shared by the drivers of one collector (`page_reads` None: a bound of its own)."""

    def __init__(
        self,
        base_url: str,
        sink: DeviceSink,
        *,
        session: aiohttp.ClientSession,
        ssl_context: ssl.SSLContext | bool,
        cadence: Cadence,
        page_reads: asyncio.Semaphore | None = None,
    ) -> None:
        self._base_url = base_url
        self.sink = sink
        self._session, self._ssl = session, ssl_context
        self._cadence = cadence
        self._page_reads = page_reads if page_reads is not None else asyncio.Semaphore(PAGE_READS)

    @property
    def name(self) -> str:
        return NAME

    @property
    def status(self) -> PrinterStatus:
        return self.sink.status

    @property
    def statuses(self) -> list[PrinterStatus]:
        return [self.sink.status]

    async def run(self, stop: asyncio.Event) -> None:
        """Poll until `stop` is set. Each endpoint keeps its own cadence."""
        c = self._cadence
        tasks: dict[Callable[[], Awaitable[None]], float] = {
            self._identity: c.identity_s,
            self._heartbeat: c.heartbeat_s,
            self._paged_all: min(c.events_s, c.jobs_s, c.logs_s),
            self._counters: c.counters_s,
            self._consumables: c.consumables_s,
        }
        due = dict.fromkeys(tasks, 0.0)
        while not stop.is_set():
            now = time.monotonic()
            if not self.sink.device_id:
                due = dict.fromkeys(tasks, now)  # nothing without identity: ask again first
            for task, period in tasks.items():
                if due[task] <= now and (self.sink.device_id or task == self._identity):
                    await self.sink.attempt(task, heartbeat=task == self._heartbeat)
                    due[task] = now + period
            if not self.sink.device_id:
                wait = min(5.0, c.heartbeat_s)
            else:
                wait = max(0.0, min(due.values()) - time.monotonic())
            try:
                await asyncio.wait_for(stop.wait(), wait)
            except asyncio.TimeoutError:
                pass

    async def _get(self, path: str) -> Any:
        url = self._base_url + path
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
        self.sink.identify(device_id, identity.get("printer_name", ""))
        await self.sink.spool_one("device_identity", identity, ("identity", str(identity.get("event_time"))))

    async def _heartbeat(self) -> None:
        status = await self._get("api/v1/status")
        await self.sink.spool_one("heartbeat", status, ("heartbeat", str(status.get("event_time"))),
                                  RecordClass.DROPPABLE)

    async def _counters(self) -> None:
        counters = await self._get("api/v1/counters")
        await self.sink.spool_one("usage_counters", counters, ("counters", str(counters.get("event_time"))))

    async def _consumables(self) -> None:
        answer = await self._get("api/v1/consumables")
        items = []
        for kind in _CONSUMABLES:
            payload = answer.get(kind) if isinstance(answer, Mapping) else None
            if isinstance(payload, Mapping):
                items.append(self.sink.encode(kind, payload, (kind, str(payload.get("event_time")))))
        await self.sink.spool(items)

    async def _paged_all(self) -> None:
        for endpoint, kind, limit in _PAGED:
            await self._paged(endpoint, kind, limit)

    async def _paged(self, endpoint: str, kind: str, limit: int) -> None:
        while True:
            cursor = self.sink.cursor(kind)
            # Another driver's cursor (a string) means nothing here: read from the start.
            after = cursor if isinstance(cursor, int) else 0
            async with self._page_reads:
                page = await self._read_page(endpoint, kind, after, limit)
            if page.entries:  # its records may all be spooled already; the cursor moves anyway
                await self.sink.spool_page(kind, page.items, page.last_seq)
            if not page.more:
                await self.sink.caught_up(kind)
                return

    async def _read_page(self, endpoint: str, kind: str, after: int, limit: int) -> _Page:
        """One page past `after`, encoded: the printer's answer is not referenced once
        this returns, so the next await holds only the encoded records."""
        answer = await self._get(f"api/v1/{endpoint}?after={after}&limit={limit}")
        entries = answer.get(endpoint, []) if isinstance(answer, Mapping) else []
        oldest = int(answer.get("oldest_seq", 0) or 0)
        if entries and oldest > after + 1:
            self.sink.lost_on_device(kind, oldest - after - 1)
        items = [self.sink.encode(kind, entry, (endpoint, str(entry["seq"]))) for entry in entries]
        last_seq = int(entries[-1]["seq"]) if entries else after
        return _Page(len(entries), items, last_seq, bool(answer.get("more")))
