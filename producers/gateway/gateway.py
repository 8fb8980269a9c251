"""The ingestion gateway: sites upload record batches over HTTPS, the gateway checks them
and produces them to Kafka, answering 2xx only after Kafka acknowledged every record.

`POST /v1/records` with `Authorization: Bearer <site token>`, `Content-Type:
application/vnd.printfleet.batch+gzip`, and the collector's id and the records' sequence
numbers in `Printfleet-Uploader` and `Printfleet-Sequence` (see producers/batch_format.py).
Records at or below the highest sequence number any gateway produced for that collector
are repeats: acknowledged, not produced again (producers/gateway/uploads.py).

The credential is the batch's: without a known one the whole batch is refused (401).
Each record is then checked on its own: one the gateway refuses (of a device not
enrolled, of another site, corrupt, of an unknown schema, of a kind sites may not send)
does not refuse its batch. The rest is produced in one transaction, and the 200 answer
lists the refused records, each with its index in the batch, a status (403: the
record's device or site; 400: the record itself), an error code and a message:

    {"accepted": A, "produced": P, "duplicate": bool, "refused": [
        {"record": INDEX, "status": 403, "error": "foreign_device", "message": ...,
         "device_id": ...}]}

A: records taken (not refused); P of them were new, A - P repeats; `duplicate`: nothing
new and nothing refused. The collector's sequence mark advances over the whole batch,
refused records included; a batch of refused records only is answered the same way.
Refusals for good (`corrupt_record`, `not_single_object`, `kind_not_accepted`,
`wrong_site`) also go to the dead-letter topic, in the batch's transaction, so once per
record (`common.kafka.deadletter`). Refusals the collector keeps aside and sends again
once the gateway takes them (`foreign_device`: the device is not enrolled yet;
`unknown_fingerprint`: the gateway does not know that schema yet) are not dead-lettered:
they are not lost, and a dead letter would invite a second copy. A repeat's refused
records are listed again (the first answer may have been lost), never dead-lettered twice.

Answers for the batch as a whole:

    200 accepted            as above
    400 bad_framing / bad_sequence   not a batch, or its sequence header does not fit
    401 unauthorized        no or unknown bearer token
    413 body_too_large      refused from Content-Length before the body is read, or on
                            decompression past the limit
    415 unsupported_media_type   another Content-Type
    429 busy                too many batches in flight (Retry-After)
    503 kafka_unavailable   Kafka did not acknowledge in time (Retry-After); the collector
                            keeps the batch in its spool and retries
    503 shutting_down       the gateway is stopping (SIGTERM): batches under way are
                            finished, new ones are answered so (Retry-After) until it exits

Record refusals: 403 wrong_site / foreign_device; 400 corrupt_record / not_single_object /
unknown_fingerprint / kind_not_accepted.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import signal
import socket
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from common.kafka import diagnose
from common.kafka.errors import KafkaUnavailable
from common.kafka.settings import KafkaSettings
from common.kafka.topics import DEAD_LETTER, GATEWAY_UPLOADS, pipeline_specs, telemetry_topics, topic_for
from common.ops import OpsServer, OpsSettings
from common.tls import server_context
from producers import batch_format
from producers.errors import Refused as Refused  # defined there; importable here too
from producers.errors import UploadFormatError
from producers.gateway import metrics
from producers.gateway.committer import Committed, Committer, Upload
from producers.gateway.publisher import OutRecord, Publisher
from producers.gateway.uploads import UploadMarks, upload_key
from producers.gateway.sites import Site, SiteDirectory
from producers.gateway.sites_watch import SitesWatcher
from schemas import DEVICE_KINDS, Decoded, DecodeError, SchemaRegistry, UnknownFingerprintError
from schemas.errors import NotSingleObjectError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GatewaySettings:
    kafka: KafkaSettings
    sites_file: Path
    host: str = "127.0.0.1"
    port: int = 18444
    tls_cert: Path | None = None
    tls_key: Path | None = None
    max_body_bytes: int = 8 << 20
    max_decompressed_bytes: int = 64 << 20
    max_records_per_batch: int = 50_000
    max_batches_in_flight: int = 8
    kafka_timeout_s: float = 15.0
    retry_after_s: int = 5
    # Names this instance's Kafka transactions: keep it across restarts (a restart then
    # aborts what the crashed run left open at once) and unique among instances.
    # "": <host name>-<port>.
    instance_id: str = ""
    sites_reload_s: float = 5.0  # how often the sites file is checked for a change; 0: on SIGHUP only
    # /metrics, /livez, /readyz: a listener of their own, never the public upload port.
    # -1: none (`printfleet gateway` defaults to 18445, printfleet/ops_flags.py); 0: any free port.
    ops_host: str = "127.0.0.1"
    ops_port: int = -1
    # A fault test's hook (`printfleet bench chaos`), only from the environment: the
    # process kills itself after its first commit, before answering: the lost answer.
    crash_after_commit: bool = False


@dataclass
class GatewayCounters:
    batches_accepted: int = 0
    batches_duplicate: int = 0
    records_repeated: int = 0
    batches_refused: int = 0
    records_produced: int = 0
    kafka_unavailable: int = 0
    records_dead_lettered: int = 0
    records_refused: int = 0  # refused on their own, in batches answered 200


_ACCEPTED_KINDS = frozenset(DEVICE_KINDS)
# Refusals the collector keeps aside and sends again: not dead-lettered (see above).
KEPT_ASIDE = batch_format.KEPT_ASIDE_ERRORS
_RECORD_STATUS = {"wrong_site": 403, "foreign_device": 403}  # the other record refusals: 400


@dataclass(frozen=True, slots=True)
class RecordRefusal:
    """One record of a batch the gateway refused on its own; a line of the answer."""

    record: int
    status: int
    error: str
    message: str
    device_id: str = ""

    @classmethod
    def of(cls, refused: Refused, device_id: str = "") -> RecordRefusal:
        assert refused.record is not None
        return cls(refused.record, refused.status, refused.code, str(refused), device_id)

    def answer(self) -> dict[str, object]:
        return {"record": self.record, "status": self.status, "error": self.error,
                "message": self.message, "device_id": self.device_id}


@dataclass(frozen=True, slots=True)
class Checked:
    """A batch checked record by record: per record what to produce (None: refused),
    the refusals, and the dead letters (by index) of the refusals for good."""

    records: list[OutRecord | None]
    refusals: list[RecordRefusal]
    dead_letters: dict[int, OutRecord]


class Gateway:
    """The aiohttp application and what it needs; use `async with Gateway(...)`."""

    def __init__(self, settings: GatewaySettings, registry: SchemaRegistry, sites: SiteDirectory) -> None:
        self.settings = settings
        self.registry = registry
        self.sites = sites
        self.sites_watcher = SitesWatcher(settings.sites_file, settings.sites_reload_s, self._use_sites)
        self.counters = GatewayCounters()
        self.publisher = Publisher(
            settings.kafka,
            topics=pipeline_specs([*telemetry_topics(), DEAD_LETTER, GATEWAY_UPLOADS]),
            instance_id=settings.instance_id or _default_instance_id(settings.port),
            timeout_s=settings.kafka_timeout_s,
        )
        self.marks = UploadMarks(settings.kafka, timeout_s=settings.kafka_timeout_s)
        self.ops = OpsServer(OpsSettings(settings.ops_host, settings.ops_port), "gateway")
        self.metrics = metrics.GatewayMetrics(self.ops)
        self.ops.collect(lambda: metrics.counter_families(self.counters))
        self.ops.check("kafka", functools.partial(diagnose.unreachable, settings.kafka))
        self.ops.check("serving", self._serving)  # false from SIGTERM on: take it out of rotation
        self.committer = Committer(self.publisher, self.marks, max_records=settings.max_records_per_batch,
                                   timed=self.metrics.committed)
        self._in_flight = asyncio.Semaphore(settings.max_batches_in_flight)
        self.batches_in_flight = 0
        self._idle = asyncio.Event()  # set while no batch is under way
        self._idle.set()
        self._draining = False
        self._runner: web.AppRunner | None = None
        self.url = ""

    def app(self) -> web.Application:
        app = web.Application(client_max_size=self.settings.max_body_bytes, middlewares=[self._timed])
        app.router.add_post("/v1/records", self.handle_records)
        app.router.add_get("/healthz", self.handle_health)
        return app

    async def __aenter__(self) -> Gateway:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        """Listen; connect to Kafka now if it is there (else on the first batch). The ops
        listener comes first, so a probe sees the process live while Kafka is awaited."""
        await self.ops.start()
        try:
            await self.publisher.start()
            await self.marks.catch_up()
        except KafkaUnavailable as exc:
            log.warning("event=kafka_unavailable_at_start error=%s", exc)
        self.committer.start()
        self.sites_watcher.start()
        self._runner = web.AppRunner(self.app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.settings.host, self.settings.port,
                           ssl_context=server_context(self.settings.tls_cert, self.settings.tls_key))
        await site.start()
        port = self._runner.addresses[0][1]
        scheme = "https" if self.settings.tls_cert else "http"
        self.url = f"{scheme}://{self.settings.host}:{port}"
        log.info("event=gateway_listening url=%s", self.url)

    def begin_stop(self) -> None:
        """From now on answer new batches 503 `shutting_down` (their collectors retry,
        against another instance or this one restarted)."""
        self._draining = True

    async def stop(self) -> None:
        """Answer new batches 503 `shutting_down`, let those under way finish (up to the
        Kafka timeout), stop listening, then close. Idempotent."""
        self.begin_stop()
        try:
            await asyncio.wait_for(self._idle.wait(), self.settings.kafka_timeout_s + 5)
        except asyncio.TimeoutError:
            log.warning("event=stop_with_batches_in_flight batches=%d: their collectors resend them",
                        self.batches_in_flight)
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
        await self.sites_watcher.stop()
        await self.committer.stop()
        await self.publisher.stop()
        await self.marks.stop()
        await self.ops.stop()

    async def _serving(self) -> str | None:
        return "stopping: new batches are answered 503" if self._draining else None

    def _use_sites(self, sites: SiteDirectory) -> None:
        # One assignment: a request authenticates against the directory of its moment and
        # keeps that Site to the end (see handle_records).
        self.sites = sites

    async def handle_health(self, request: web.Request) -> web.Response:
        """The readiness of /readyz (Kafka reachable), kept on the public port for the load
        balancers that probe it there: 503 while Kafka is not."""
        ready, checks = await self.ops.readiness()
        return web.json_response({"status": "ok" if ready else "not_ready", "checks": checks, **self.counters.__dict__},
                                 status=200 if ready else 503)

    @web.middleware
    async def _timed(self, request: web.Request, handler: metrics.Handler) -> web.StreamResponse:
        """Every upload's time to its answer, whatever the answer."""
        if request.path != "/v1/records":
            return await handler(request)
        began = time.monotonic()
        try:
            return await handler(request)
        finally:
            self.metrics.batch_seconds.observe(time.monotonic() - began)

    async def handle_records(self, request: web.Request) -> web.Response:
        try:
            site = self._authenticate(request)
            if self._draining:
                raise Refused(503, "shutting_down", "the gateway is stopping; retry later")
            if self._in_flight.locked():
                raise Refused(429, "busy", "too many batches in flight; retry later")
            async with self._in_flight:
                self.batches_in_flight += 1
                self._idle.clear()
                try:
                    return await self._accept(request, site)
                finally:
                    self.batches_in_flight -= 1
                    if not self.batches_in_flight:
                        self._idle.set()
        except Refused as refused:
            self.counters.batches_refused += 1
            log.info("event=batch_refused status=%d code=%s reason=%s", refused.status, refused.code, refused)
            headers = {"Retry-After": str(self.settings.retry_after_s)} if refused.retriable else {}
            body: dict[str, object] = {"error": refused.code, "message": str(refused)}
            if refused.record is not None:
                body["record"] = refused.record
            return web.json_response(body, status=refused.status, headers=headers)

    def _authenticate(self, request: web.Request) -> Site:
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        site = self.sites.authenticate(token.strip()) if scheme.lower() == "bearer" else None
        if site is None:
            raise Refused(401, "unauthorized", "missing or unknown site credential")
        return site

    async def _accept(self, request: web.Request, site: Site) -> web.Response:
        if (request.content_length or 0) > self.settings.max_body_bytes:
            raise Refused(413, "body_too_large", f"body over {self.settings.max_body_bytes} bytes")
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            raise Refused(413, "body_too_large", f"body over {self.settings.max_body_bytes} bytes") from None
        messages = self._unpack(body, request.content_type)
        key, seqs = self._identify(request, site, len(messages))
        checked = self._check(messages, site)
        if seqs[-1] <= self.marks.acked(key):  # known here as a repeat: no need to ask Kafka
            mark = self.marks.mark(key)
            return self._answer(site, checked, Committed(0, len(seqs), None if mark is None else mark.refused_earlier(seqs)))
        try:
            refused = {r.record: r.error for r in checked.refusals}
            done = await self.committer.submit(Upload(key, seqs, checked.records, checked.dead_letters, refused))
        except KafkaUnavailable as exc:
            self.counters.kafka_unavailable += 1
            raise Refused(503, "kafka_unavailable", str(exc)) from None
        if done.produced and self.settings.crash_after_commit:
            log.warning("event=crash_after_commit records=%d: the fault test's hook", done.produced)
            os.kill(os.getpid(), signal.SIGKILL)
        return self._answer(site, checked, done)

    def _answer(self, site: Site, checked: Checked, done: Committed) -> web.Response:
        refusals = _answered(checked, done)
        accepted = len(checked.records) - len(refusals)
        if done.produced:
            self.counters.batches_accepted += 1
            self.counters.records_produced += done.produced
        elif not refusals:
            self.counters.batches_duplicate += 1
        self.counters.records_repeated += sum(1 for r in checked.records[:done.first_new] if r is not None)
        self.counters.records_refused += len(refusals)
        self.counters.records_dead_lettered += sum(1 for i in checked.dead_letters if i >= done.first_new)
        # One line per device and code, not per record: a printer not enrolled sends many.
        groups: dict[tuple[str, str], list[RecordRefusal]] = {}
        for refusal in refusals:
            groups.setdefault((refusal.device_id, refusal.error), []).append(refusal)
        for (device_id, code), group in groups.items():
            log.info("event=records_refused site=%s device=%s code=%s status=%d records=%d first=%d reason=%s",
                     site.site_id, device_id or "-", code, group[0].status, len(group), group[0].record,
                     group[0].message)
        return web.json_response({
            "accepted": accepted, "produced": done.produced,
            "duplicate": done.produced == 0 and not refusals,
            "refused": [r.answer() for r in refusals],
        })

    def _identify(self, request: web.Request, site: Site, count: int) -> tuple[str, list[int]]:
        """The batch's collector key and its records' sequence numbers, from the headers."""
        try:
            uploader = batch_format.check_uploader(request.headers.get(batch_format.UPLOADER_HEADER, ""))
            seqs = batch_format.parse_sequence(request.headers.get(batch_format.SEQUENCE_HEADER, ""), count)
        except UploadFormatError as exc:
            raise Refused(400, "bad_sequence", str(exc)) from None
        return upload_key(site.site_id, uploader), seqs

    def _unpack(self, body: bytes, content_type: str) -> list[bytes]:
        """The messages the body's frames hold."""
        if content_type != batch_format.CONTENT_TYPE:
            raise Refused(415, "unsupported_media_type", f"Content-Type must be {batch_format.CONTENT_TYPE}")
        try:
            data = batch_format.decompress(body, self.settings.max_decompressed_bytes)
            messages = batch_format.split_frames(data, self.settings.max_records_per_batch)
        except batch_format.TooLarge as exc:
            raise Refused(413, "body_too_large", str(exc)) from None
        except batch_format.FramingError as exc:
            raise Refused(400, "bad_framing", str(exc)) from None
        if not messages:
            raise Refused(400, "bad_framing", "empty batch")
        return messages

    def _check(self, messages: list[bytes], site: Site) -> Checked:
        """Decode every record and check it belongs to `site`; each refusal is the
        record's own, the batch goes on."""
        try:
            decoded: list[Decoded | Refused] = list(self.registry.decode_many(messages))  # the fast path
        except DecodeError:
            decoded = [self._decode_one(index, message) for index, message in enumerate(messages)]
        checked = Checked([], [], {})
        for index, (message, d) in enumerate(zip(messages, decoded)):
            device_id = ""
            try:
                if isinstance(d, Refused):
                    raise d
                device_id = str(d.record.get("device_id", ""))
                checked.records.append(self._check_one(index, message, d, site))
            except Refused as refused:
                checked.records.append(None)
                checked.refusals.append(RecordRefusal.of(refused, device_id))
                if refused.code not in KEPT_ASIDE:
                    checked.dead_letters[index] = self._letter(message, d, refused)
        return checked

    def _check_one(self, index: int, message: bytes, d: Decoded, site: Site) -> OutRecord:
        """Record `index` as it goes to Kafka, or Refused naming it."""
        if d.kind not in _ACCEPTED_KINDS:
            raise Refused(400, "kind_not_accepted", f"sites may not upload {d.kind} records", index)
        record = d.record
        if record["site_id"] != site.site_id:
            raise Refused(403, "wrong_site", f"record of site {record['site_id']!r} under the credential of {site.site_id!r}", index)
        device_id = record["device_id"]
        if device_id not in site.devices:
            raise Refused(403, "foreign_device", f"device {device_id!r} is not enrolled for site {site.site_id!r}", index)
        return OutRecord(topic_for(d.kind), device_id.encode(), message)

    def _decode_one(self, index: int, message: bytes) -> Decoded | Refused:
        """Decode one record of a batch that failed, or name the reason it does not decode."""
        try:
            return self.registry.decode(message)
        except NotSingleObjectError as exc:
            return Refused(400, "not_single_object", str(exc), index)
        except UnknownFingerprintError as exc:
            return Refused(400, "unknown_fingerprint", str(exc), index)
        except DecodeError as exc:
            return Refused(400, "corrupt_record", str(exc), index)

    def _letter(self, message: bytes, d: Decoded | Refused, refused: Refused) -> OutRecord:
        """The dead letter of a record refused for good, so that what a site cannot upload
        is visible in Kafka."""
        where = None
        if isinstance(d, Decoded) and d.kind in _ACCEPTED_KINDS:
            where = OutRecord(topic_for(d.kind), str(d.record.get("device_id", "")).encode(), message)
        return self.publisher.letter(where, message, str(refused), refused.code)


def _default_instance_id(port: int) -> str:
    # Port 0 (tests): a new port each run, so a name of its own each run.
    return f"{socket.gethostname()}-{port}" if port else f"{socket.gethostname()}-{uuid.uuid4().hex[:8]}"


def _answered(checked: Checked, done: Committed) -> list[RecordRefusal]:
    """The refusals an answer lists: this check's for the records above the collector's
    mark; for the repeats below it, those refused when they were first committed, as the
    mark says (a printer enrolled since must not make a record that never reached Kafka
    look delivered), or this check's where the mark no longer knows."""
    if done.refused_earlier is None:
        return checked.refusals
    now = {r.record: r for r in checked.refusals}
    then = []
    for index, code in sorted(done.refused_earlier.items()):
        if index in now and now[index].error == code:
            then.append(now[index])
        else:
            record = checked.records[index]
            device_id = record.key.decode(errors="replace") if record is not None else ""
            then.append(RecordRefusal(index, _RECORD_STATUS.get(code, 400), code,
                                      f"refused ({code}) when this batch was first sent", device_id))
    return then + [r for r in checked.refusals if r.record >= done.first_new]
