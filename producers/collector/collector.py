"""The site collector: a driver for every printer, the durable spool, the uploader, and a
local status page.

    async with Collector(settings) as collector:
        await collector.run(stop)        # until stop is set; then uploads what it can

The status page (`http://<status_host>:<status_port>/status`, plain HTTP, loopback by
default) shows the spool depth, the uploader's progress and each printer's health as JSON;
the same listener serves `/metrics`, `/livez` and `/readyz` (common/ops.py; readiness:
the printers and the gateway).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import ssl
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp import web

from common.ops import OpsServer, OpsSettings
from producers.collector import metrics
from producers.collector.config import CollectorSettings
from producers.collector.printer_tables import OpcUaPrinter, PrinterApiPrinter, PrinterConfig
from producers.collector.cursors import CursorSafeSpool, CursorStore
from producers.collector.device_records import RecordBuilder, Site
from producers.collector.device_sink import DeviceSink, PrinterStatus, SinkShared
from producers.collector.drivers import Driver
from producers.collector.drivers.printer_api import PAGE_READS, PrinterApiDriver
from producers.collector.spooled_ids import SpooledIds
from producers.spool.spool import RecordClass, Spool
from producers.collector.uploader import Uploader, UploaderSettings
from schemas import SchemaError, SchemaRegistry

if TYPE_CHECKING:  # asyncua and cryptography are imported only for a site with OPC UA machines
    from producers.opcua_model.pki import CertificatePair

log = logging.getLogger(__name__)


class Collector:
    def __init__(self, settings: CollectorSettings, registry: SchemaRegistry | None = None) -> None:
        self.settings = settings
        self.registry = registry or SchemaRegistry.load_default()
        self._spool = Spool(settings.state_dir / "spool", max_bytes=settings.spool_max_bytes)
        # Shared by every printer's sink; read now (a missing file: no cursors yet).
        self.cursors = CursorStore(settings.state_dir / "cursors.json")
        self.spool = CursorSafeSpool(self._spool, self.cursors)
        self.uploader = Uploader(
            UploaderSettings(
                gateway_url=settings.gateway_url,
                token=settings.gateway_token,
                rejected_dir=settings.state_dir / "rejected",
                state_file=settings.state_dir / "upload.json",
                ca_file=settings.gateway_ca_file,
                max_records=settings.upload_max_records,
                timeout_s=max(30.0, settings.request_timeout_s),
                kept_dir=settings.state_dir / "kept",
                kept_max_records=settings.kept_max_records,
                kept_max_bytes=settings.kept_max_bytes,
                resend_kept_s=settings.resend_kept_s,
            ),
            self.spool,
            timed=lambda seconds: self.metrics.upload_seconds.observe(seconds),
        )
        self.drivers: list[Driver] = []
        # The collector's OPC UA key pair (made in start() for a site with OPC UA tables):
        # the site trusts its certificate on the machines.
        self.opcua_certificate: CertificatePair | None = None
        self.spooled_ids: SpooledIds | None = None  # built in start(), from the spool
        self.spool_lost: dict[str, int] = {}  # kind -> records the spool lost (recovery at start)
        self._session: aiohttp.ClientSession | None = None
        self.ops = OpsServer(OpsSettings(settings.status_host, settings.status_port), "collector")
        self.metrics = metrics.CollectorMetrics(self.ops)
        self.ops.collect(lambda: metrics.families(self.printer_statuses(), self.uploader.counters,
                                                   self.spool.stats(), self.uploader.kept))
        self.ops.check("printers", self._printers_ready)
        self.ops.check("gateway", self._gateway_ready)
        self.ops.route("/status", self._handle_status)
        self.status_url = ""
        self.started_at = time.time()

    async def __aenter__(self) -> Collector:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        """Open the spool (recovering it), build the drivers, serve the status page."""
        printers = self.settings.all_printers()
        self.settings.state_dir.mkdir(parents=True, exist_ok=True)
        report = await asyncio.to_thread(self._spool.open)
        self.spool_lost = lost_by_kind(self.registry, report.lost_by_prefix)
        if report.dropped_records:
            log.error("event=spool_records_lost records=%d by_kind=%s dropped_bytes=%d: the spool lost records "
                      "before they were uploaded (a cut or damaged file)", report.dropped_records,
                      ",".join(f"{k}:{n}" for k, n in sorted(self.spool_lost.items())) or "unknown",
                      report.dropped_bytes)
        else:
            log.info("event=spool_opened records=%d", report.records)
        await self.uploader.open()  # before any poll appends: new records numbered past all sent
        builder = RecordBuilder(self.registry, Site(self.settings.site_id, self.settings.site_secret.encode()))
        self.spooled_ids = SpooledIds(self.settings.state_dir / "spooled-ids.json")
        pending_ids = await asyncio.to_thread(self._pending_record_ids, self.spooled_ids)
        shared = SinkShared(builder=builder, registry=self.registry, spool=self.spool, cursors=self.cursors,
                            unmappable_dir=self.settings.state_dir / "unmappable", pending_ids=pending_ids,
                            spooled=self.spooled_ids)
        self._session = printer_session(self.settings.request_timeout_s)
        self.drivers = self._printer_api_drivers(printers, shared, self._session)
        self.drivers += await self._opcua_drivers(printers, shared)
        await self.ops.start()  # nothing when status_port < 0
        self.status_url = f"{self.ops.url}/status" if self.ops.url else ""

    def _printer_api_drivers(self, printers: Sequence[PrinterConfig], shared: SinkShared,
                             session: aiohttp.ClientSession) -> list[Driver]:
        """A printer API driver per printer: one HTTP session and one bound on page reads
        for all, one TLS context per CA file."""
        page_reads = asyncio.Semaphore(PAGE_READS)
        contexts: dict[str | None, ssl.SSLContext | bool] = {None: True}
        drivers: list[Driver] = []
        for printer in printers:
            if not isinstance(printer, PrinterApiPrinter):
                continue
            ca = None if printer.ca_file is None else str(printer.ca_file)
            if ca not in contexts:
                contexts[ca] = ssl.create_default_context(cafile=ca)
            sink = DeviceSink(printer.url, printer.driver, shared)
            drivers.append(PrinterApiDriver(printer.url, sink, session=session, ssl_context=contexts[ca],
                                            cadence=self.settings.cadence, page_reads=page_reads))
        return drivers

    async def _opcua_drivers(self, printers: Sequence[PrinterConfig], shared: SinkShared) -> list[Driver]:
        """An OPC UA driver per `driver = "opcua"` table; the collector's client key pair is
        made (once, in the state folder) only when there is one."""
        tables = [p for p in printers if isinstance(p, OpcUaPrinter)]
        if not tables:
            return []
        # Imported only for a site with OPC UA machines: asyncua (and cryptography, which
        # it needs) take time and memory a printer API site has no use for.
        from producers.collector.drivers.opcua import OpcUaDriver, client_certificate

        pair = self.opcua_certificate = await client_certificate(self.settings.state_dir, self.settings.site_id)
        return [OpcUaDriver(p, shared, client_pair=pair, cadence=self.settings.cadence,
                            timeout_s=self.settings.request_timeout_s) for p in tables]

    def printer_statuses(self) -> list[PrinterStatus]:
        """Every device's status: one per printer API printer, one per OPC UA machine."""
        return [status for d in self.drivers for status in d.statuses]

    def _pending_record_ids(self, spooled: SpooledIds) -> set[str]:
        """Ids of the records a previous run left in the spool (KEEP records only:
        heartbeats are never polled twice); the paged ones also go to `spooled`, saved
        before the uploader can ack any of them. Reads the whole pending spool once at start."""
        batch = self._spool.peek(max_records=1 << 30, max_bytes=1 << 40)
        ids = set()
        for r in batch.records:
            if r.record_class is RecordClass.KEEP:
                decoded = self.registry.decode(r.payload)
                record_id = str(decoded.record["record_id"])
                ids.add(record_id)
                spooled.add(str(decoded.record["device_id"]), decoded.kind, record_id)
        spooled.save()
        return ids

    async def run(self, stop: asyncio.Event) -> None:
        """Read the printers and upload until `stop` is set; the uploader stops after the
        drivers, so it can drain what they spooled last."""
        drivers_done = asyncio.Event()
        uploading = asyncio.create_task(self.uploader.run(drivers_done))
        try:
            await asyncio.gather(*(d.run(stop) for d in self.drivers))
        finally:
            drivers_done.set()
            await uploading

    async def stop(self) -> None:
        """Write the cursors; close the HTTP sessions, the status page and the spool.
        Idempotent."""
        session, self._session = self._session, None
        if session is not None:
            await session.close()
        try:
            await self.cursors.close()
        finally:
            await self.ops.stop()
            await asyncio.to_thread(self._spool.close)

    def status(self) -> dict[str, Any]:
        spool = self.spool.stats()
        return {
            "site_id": self.settings.site_id,
            "uptime_s": round(time.time() - self.started_at, 1),
            "spool": {
                "pending_records": spool.pending_records,
                "pending_bytes": spool.pending_bytes,
                "heartbeats_pending": spool.droppable.records,
                "oldest_age_s": spool.oldest_age_s,
                "dropped_records": spool.dropped_records,
                "recovered_records": spool.recovery.records,
                "recovery_dropped_records": spool.recovery.dropped_records,
                "recovery_lost_by_kind": self.spool_lost,
            },
            "uploader": dataclasses.asdict(self.uploader.counters),
            "kept_aside": {
                "records": self.uploader.kept.records,
                "bytes": self.uploader.kept.bytes,
                "by_device": self.uploader.kept.counts(),  # device -> gateway's reason -> records
                **dataclasses.asdict(self.uploader.kept.counters),
            },
            "printers": [dataclasses.asdict(status) for status in self.printer_statuses()],
        }

    def status_line(self) -> str:
        s = self.status()
        reachable = sum(1 for p in s["printers"] if p["reachable"])
        spooled = sum(p["records_spooled"] for p in s["printers"])
        return (
            f"collector: {reachable}/{len(s['printers'])} printers answering, {spooled} records spooled, "
            f"{s['uploader']['records']} uploaded in {s['uploader']['batches']} batches, "
            f"spool depth {s['spool']['pending_records']} ({s['spool']['pending_bytes']} B), "
            f"{s['uploader']['failures']} upload failures"
            + (f" (last: {s['uploader']['last_error']})" if s["uploader"]["failures"] else "")
            + kept_aside_summary(s["kept_aside"]["by_device"])
        )

    async def _handle_status(self, request: web.Request) -> web.Response:
        return web.json_response(self.status())

    async def _printers_ready(self) -> str | None:
        return metrics.printers_reason(self.printer_statuses())

    async def _gateway_ready(self) -> str | None:
        return metrics.gateway_reason(self.uploader.counters)


# Seconds a printer's connection stays open after its last request. Long enough for one
# poll round (heartbeat and pages, back to back), shorter than the 10 s between rounds: an
# idle TLS connection holds about 0.3 MiB (asyncio's 256 KiB read buffer, OpenSSL's
# state), which for hundreds of printers is most of the collector's memory. The price is
# one TLS handshake per printer and round.
PRINTER_KEEPALIVE_S = 1.0


def printer_session(timeout_s: float, keepalive_s: float = PRINTER_KEEPALIVE_S) -> aiohttp.ClientSession:
    """The HTTP session of all printer API drivers of a collector; call within the running loop.
    A connection is closed `keepalive_s` to 2 x `keepalive_s` after its last request."""
    # At most 100 requests at once, aiohttp's default, written out because it also bounds
    # the TLS connections (and their buffers) open at once.
    connector = aiohttp.TCPConnector(limit=100, keepalive_timeout=keepalive_s)
    # Printers are on the LAN: no proxy for them (trust_env off); the uploader uses it.
    return aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=timeout_s),
                                 trust_env=False)


def kept_aside_summary(by_device: dict[str, dict[str, int]], shown: int = 5) -> str:
    """", kept aside: 12 of prn-7 (foreign_device), ...": every device id in full, the
    first `shown` devices by count, then how many more."""
    if not by_device:
        return ""
    totals = sorted(((sum(r.values()), d, r) for d, r in by_device.items()), key=lambda t: (-t[0], t[1]))
    parts = [f"{n} of {d or 'unknown device'} ({', '.join(sorted(r))})" for n, d, r in totals[:shown]]
    more = f" and {len(totals) - shown} more devices" if len(totals) > shown else ""
    return ", kept aside: " + "; ".join(parts) + more


def lost_by_kind(registry: SchemaRegistry, lost: Sequence[tuple[bytes, int]]) -> dict[str, int]:
    """The spool's lost records (payload prefix -> count) per record kind, by the schema
    fingerprint in the prefix; "unknown" where it names no schema."""
    out: dict[str, int] = {}
    for prefix, count in lost:
        try:
            kind = registry.identify(prefix).kind
        except SchemaError:
            kind = "unknown"
        out[kind] = out.get(kind, 0) + count
    return out
