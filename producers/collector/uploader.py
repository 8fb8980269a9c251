"""The collector's uploader: spool -> gateway, deleting records only after the gateway
acknowledged them.

Each round peeks the oldest pending records, sends them as one gzip batch over outbound
HTTPS and acks them in the spool on a 2xx. While the gateway is away (network error, 429,
503, 5xx) the batch stays in the spool and the uploader backs off, honouring Retry-After.
Every batch names its uploader (an id made once, kept in `upload.json` beside the spool)
and each record's spool sequence number: any gateway recognises records it produced
before (their numbers are at or below the uploader's mark) and does not produce them
twice. Before a batch is sent, its bounds go to `upload.json`; after a crash the uploader
first sends exactly that batch again. The highest number ever sent is kept there too, and
the spool numbers new records above it, so a number is never reused, even for records
lost from the spool after they were sent.

A 401 refuses the site's credential, so the whole batch: a configuration problem at this
site, retried slowly and logged loudly, never dropped (a 403 for the whole batch, from a
gateway older than per-record refusals, likewise). A record the gateway refuses on its own
comes back in the 200 answer's `refused` list: one that may pass later (a printer not
enrolled yet, a schema the gateway does not know yet) is kept aside in `kept/`
(producers/collector/kept.py) and appended to the spool again every `resend_kept_s`; one
refused for good goes to `rejected/`; both are written before the batch is acked, and
the rest of the site flows. Any other 4xx means the gateway will never take this batch:
it is written to `rejected/` beside the spool with the gateway's answer, then acked, so
one bad batch cannot stop a site forever and nothing disappears unseen.
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from common.backoff import Backoff
from producers.batch_format import (
    CONTENT_TYPE, KEPT_ASIDE_ERRORS, SEQUENCE_HEADER, UPLOADER_HEADER, encode_batch, format_sequence,
)
from producers.collector.kept import KeptRecord, KeptStore, Taken, appended_already, write_rejected
from producers.errors import SpoolError
from producers.spool.spool import Batch, RecordClass
from producers.spool.async_spool import AsyncSpool

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class UploaderSettings:
    gateway_url: str
    token: str = field(repr=False)
    rejected_dir: Path
    state_file: Path  # upload.json: the uploader id, the highest number sent, the batch in flight
    ca_file: Path | None = None
    max_records: int = 5_000
    max_bytes: int = 1 << 20
    idle_poll_s: float = 1.0
    timeout_s: float = 30.0
    drain_s: float = 10.0
    kept_dir: Path | None = None  # None: `kept` beside `rejected_dir`
    kept_max_records: int = 100_000
    kept_max_bytes: int = 64 << 20
    resend_kept_s: float = 60.0


@dataclass(frozen=True, slots=True)
class UploadState:
    """What `upload.json` keeps. `inflight`: (first, last, count) of the batch being sent."""

    uploader: str
    sent_through: int = 0
    inflight: tuple[int, int, int] | None = None

    @classmethod
    def load(cls, path: Path) -> UploadState:
        """The state in `path`; a new uploader id when it is missing or unreadable."""
        try:
            raw = json.loads(path.read_text())
            inflight = raw.get("inflight")
            return cls(str(raw["uploader"]), int(raw["sent_through"]),
                       (int(inflight[0]), int(inflight[1]), int(inflight[2])) if inflight else None)
        except FileNotFoundError:
            pass
        except (ValueError, KeyError, TypeError, IndexError) as exc:
            # A new id means the gateway cannot recognise a repeat of the batch that was in
            # flight: it may arrive twice. Never does an old number get reused.
            log.error("event=upload_state_unreadable path=%s error=%r: a new uploader id", path, exc)
        return cls(uuid.uuid4().hex)

    def save(self, path: Path) -> None:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"uploader": self.uploader, "sent_through": self.sent_through,
                                   "inflight": list(self.inflight) if self.inflight else None}))
        tmp.replace(path)


@dataclass
class UploaderCounters:
    batches: int = 0
    records: int = 0
    wire_bytes: int = 0
    failures: int = 0
    rejected_batches: int = 0
    records_refused: int = 0  # refused one by one in 200 answers: kept aside, or rejected
    records_rejected: int = 0  # of those, refused for good: written to rejected/
    last_error: str = ""
    last_success_at: float | None = None
    last_failure_at: float | None = None


class Uploader:
    def __init__(self, settings: UploaderSettings, spool: AsyncSpool, *, timed: Callable[[float], None] | None = None) -> None:
        """`timed(seconds)` hears how long each upload took to be answered (or to fail)."""
        self.settings = settings
        self._timed = timed
        self.spool = spool
        self.counters = UploaderCounters()
        self._backoff = Backoff(initial_s=0.5, maximum_s=30.0)
        self._state: UploadState | None = None
        self.kept = KeptStore(settings.kept_dir or settings.rejected_dir.with_name("kept"), settings.rejected_dir,
                              max_records=settings.kept_max_records, max_bytes=settings.kept_max_bytes)
        self._kept_open = False
        self._next_resend = 0.0  # monotonic time of the next resend of kept records
        self._logged_at: dict[tuple[str, str], float] = {}  # (event, device) -> last log line

    async def open(self) -> None:
        """Load `upload.json` and make the spool number new records past every number sent,
        then open the kept-aside store and finish a resend a crash interrupted. Called
        after the spool is opened, before anything is appended; `run` calls it too."""
        await self._upload_state()
        if not self._kept_open:
            for taken in await asyncio.to_thread(self.kept.open):
                await self._finish_resend(taken)
            self._kept_open = True
            self._next_resend = time.monotonic() + self.settings.resend_kept_s

    async def _finish_resend(self, taken: Taken) -> None:
        """A resend a crash cut: what of it the spool holds is done, the rest goes back
        into the store for the next resend (no append here: a full spool must not stop
        the collector from starting and draining it)."""
        stats = self.spool.stats()
        pending: list[int] = []
        if taken.next_seq is not None and stats.next_seq > taken.next_seq and stats.acked_seq < taken.next_seq:
            pending = [r.seq for r in (await self.spool.peek(1 << 30, 1 << 40)).records]
        have = appended_already(taken, stats.next_seq, stats.acked_seq, pending)
        await asyncio.to_thread(self.kept.requeue, taken, taken.records[have:])
        log.info("event=kept_resend_finished device=%s records=%d in_spool=%d kept_again=%d",
                 taken.device_id or "-", len(taken.records), have, len(taken.records) - have)

    async def _upload_state(self) -> UploadState:
        if self._state is None:
            state = await asyncio.to_thread(UploadState.load, self.settings.state_file)
            await self.spool.number_past(state.sent_through)
            self._state = state
        return self._state

    def _ssl(self) -> ssl.SSLContext | bool:
        if self.settings.ca_file is None:
            return True  # the system's trust store
        return ssl.create_default_context(cafile=str(self.settings.ca_file))

    async def run(self, stop: asyncio.Event) -> None:
        """Upload until `stop` is set, then for up to `drain_s` until the spool is empty
        or an upload fails: what is left stays in the spool for the next start."""
        timeout = aiohttp.ClientTimeout(total=self.settings.timeout_s)
        # trust_env: the system's proxy settings (HTTPS_PROXY, NO_PROXY) are honoured.
        async with aiohttp.ClientSession(timeout=timeout, trust_env=True) as session:
            ssl_context = self._ssl()
            while not stop.is_set():
                await self.resend_kept()
                delay = await self.upload_once(session, ssl_context)
                if delay:
                    try:
                        await asyncio.wait_for(stop.wait(), delay)
                    except asyncio.TimeoutError:
                        pass
            deadline = time.monotonic() + self.settings.drain_s
            while time.monotonic() < deadline and not await self.upload_once(session, ssl_context):
                pass

    async def upload_once(self, session: aiohttp.ClientSession, ssl_context: ssl.SSLContext | bool) -> float:
        """One round. Returns how long to wait before the next (0: go on at once)."""
        async with self.spool.commit_lock:
            batch = await self._next_batch()
        if not batch.records:
            return self.settings.idle_poll_s
        body = encode_batch(r.payload for r in batch.records)
        first, last = batch.records[0].seq, batch.records[-1].seq
        state = await self._upload_state()
        sending = UploadState(state.uploader, max(state.sent_through, last), (first, last, len(batch.records)))
        await asyncio.to_thread(sending.save, self.settings.state_file)
        self._state = sending
        headers = {
            "Authorization": f"Bearer {self.settings.token}",
            "Content-Type": CONTENT_TYPE,
            UPLOADER_HEADER: state.uploader,
            SEQUENCE_HEADER: format_sequence(r.seq for r in batch.records),
        }
        began = time.monotonic()
        try:
            async with session.post(
                f"{self.settings.gateway_url}/v1/records", data=body, headers=headers, ssl=ssl_context
            ) as resp:
                answer = await resp.text()
                status, retry_after = resp.status, resp.headers.get("Retry-After")
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            return self._failed(f"gateway unreachable: {exc!r}", None)
        finally:
            if self._timed is not None:
                self._timed(time.monotonic() - began)
        self.counters.wire_bytes += len(body)
        if 200 <= status < 300:
            try:
                await self._set_aside(batch, answer)
            except (ValueError, KeyError, TypeError, IndexError, AttributeError) as exc:
                # Nothing acked: the batch is sent again, and nothing of it is lost.
                return self._failed(f"gateway answered {status} with a body this collector cannot read: {exc!r}", None)
            except OSError as exc:
                return self._failed(f"cannot keep the records the gateway refused: {exc!r}", None)
            await self.spool.ack(batch)
            await self._sent()
            self._backoff.reset()
            self.counters.batches += 1
            self.counters.records += len(batch.records)
            self.counters.last_success_at = time.time()
            return 0.0
        if status == 401:
            log.error("event=upload_refused status=%d answer=%s", status, answer[:500])
            return self._failed(f"gateway refused the site's credential (401): {answer[:200]}", None, slow=True)
        if status == 403:
            # Only a gateway older than per-record refusals refuses a whole batch for one
            # record's device: retried slowly, like a credential.
            log.error("event=upload_refused status=%d answer=%s", status, answer[:500])
            return self._failed(f"gateway refused the whole batch (403): {answer[:200]}", None, slow=True)
        if status in (408, 429) or status >= 500:
            return self._failed(f"gateway answered {status}: {answer[:200]}", retry_after)
        await self._reject(batch.first_seq, batch.last_seq, body, status, answer)
        await self.spool.ack(batch)
        await self._sent()
        return 0.0

    async def _set_aside(self, batch: Batch, answer: str) -> None:
        """Keep aside, or reject, the records the gateway refused one by one (the 200
        answer's `refused` list), durably, before the caller acks the batch. Raises
        ValueError (and kin) for an answer that does not name the batch's records."""
        refused = json.loads(answer).get("refused") or []
        if not refused:
            return
        now = time.time()
        kept: list[KeptRecord] = []
        rejected: list[tuple[KeptRecord, int]] = []
        for r in refused:
            index = int(r["record"])
            if not 0 <= index < len(batch.records):
                raise IndexError(f"refused record {index} of a batch of {len(batch.records)}")
            spooled = batch.records[index]
            record = KeptRecord(spooled.seq, str(r.get("device_id") or ""), str(r["error"]), str(r.get("message", "")),
                                now, spooled.payload)
            if record.reason in KEPT_ASIDE_ERRORS:
                kept.append(record)
            else:
                rejected.append((record, int(r.get("status", 400))))
        if kept:
            await asyncio.to_thread(self.kept.add, kept)
        for record, status in rejected:
            await asyncio.to_thread(write_rejected, self.settings.rejected_dir, f"record-{record.seq}", record.payload, {
                "status": status, "error": record.reason, "message": record.message, "device_id": record.device_id})
        self.counters.records_refused += len(refused)
        self.counters.records_rejected += len(rejected)
        by_device: dict[tuple[str, str], int] = {}
        for record in kept:
            by_device[(record.device_id, record.reason)] = by_device.get((record.device_id, record.reason), 0) + 1
        for (device, reason), count in by_device.items():
            if self._may_log("kept", device):
                log.warning("event=records_kept_aside device=%s reason=%s records=%d kept_total=%d: the gateway "
                            "refused them; kept in %s and sent again every %.0f s", device or "-", reason, count,
                            self.kept.records, self.kept.directory, self.settings.resend_kept_s)
        for record, status in rejected:
            log.error("event=record_rejected seq=%d device=%s status=%d error=%s message=%s dir=%s", record.seq,
                      record.device_id or "-", status, record.reason, record.message[:200], self.settings.rejected_dir)

    async def resend_kept(self, force: bool = False) -> int:
        """Every `resend_kept_s` (or now, with `force`): append each device's kept records
        to the spool again, with new numbers. Returns how many records went back."""
        if not force and time.monotonic() < self._next_resend:
            return 0
        self._next_resend = time.monotonic() + self.settings.resend_kept_s
        await self.open()
        total = 0
        for device in self.kept.devices():
            # The lock keeps the pollers' appends out: the records get the numbers from
            # the mark on, which is what a restart checks.
            async with self.spool.commit_lock:
                try:
                    taken = await asyncio.to_thread(self.kept.take, device, self.spool.stats().next_seq)
                except OSError as exc:  # the records stay where they were: on disk, in the store
                    log.warning("event=kept_resend_failed device=%s error=%r", device or "-", exc)
                    return total
                try:
                    await self.spool.append_many([(RecordClass.KEEP, r.payload) for r in taken.records])
                except SpoolError as exc:
                    await asyncio.to_thread(self.kept.undo, taken)
                    log.warning("event=kept_resend_failed device=%s records=%d error=%s", device or "-",
                                len(taken.records), exc)
                    continue
            try:
                await asyncio.to_thread(self.kept.done, taken)
            except OSError as exc:  # the next start finds the spool holds them: done then
                log.error("event=kept_resend_cleanup_failed device=%s error=%r", device or "-", exc)
            total += len(taken.records)
            if self._may_log("resend", device):
                log.info("event=kept_records_resent device=%s records=%d", device or "-", len(taken.records))
        return total

    def _may_log(self, event: str, device: str) -> bool:
        """At most one line per device and event a minute: a site's log stays readable."""
        now = time.monotonic()
        if now - self._logged_at.get((event, device), -1e9) < 60.0:
            return False
        self._logged_at[(event, device)] = now
        return True

    async def _sent(self) -> None:
        """The batch in flight is answered: a restart need not send it first."""
        state = await self._upload_state()
        self._state = UploadState(state.uploader, state.sent_through)
        await asyncio.to_thread(self._state.save, self.settings.state_file)

    async def _next_batch(self) -> Batch:
        """The batch that was in flight when the last run ended, if it is still pending
        unchanged; otherwise the oldest pending records."""
        inflight = (await self._upload_state()).inflight
        if inflight:
            first, last, count = inflight
            batch = await self.spool.peek(count, 1 << 40)
            if (batch.first_seq, batch.last_seq) == (first, last):
                return batch
        return await self.spool.peek(self.settings.max_records, self.settings.max_bytes)

    def _failed(self, error: str, retry_after: str | None, slow: bool = False) -> float:
        self.counters.failures += 1
        self.counters.last_error = error
        self.counters.last_failure_at = time.time()
        delay = self._backoff.next_delay()
        if slow:
            delay = max(delay, 60.0)
        if retry_after and retry_after.isdigit():
            delay = max(delay, float(retry_after))
        log.warning("event=upload_failed error=%s retry_in_s=%.1f", error, delay)
        return delay

    async def _reject(self, first: int | None, last: int | None, body: bytes, status: int, answer: str) -> None:
        self.counters.rejected_batches += 1
        directory = self.settings.rejected_dir
        log.error("event=batch_rejected first_seq=%s last_seq=%s status=%d answer=%s", first, last, status, answer[:500])
        directory.mkdir(parents=True, exist_ok=True)
        stem = directory / f"{first}-{last}"
        await asyncio.to_thread(stem.with_suffix(".batch").write_bytes, body)
        await asyncio.to_thread(
            stem.with_suffix(".json").write_text, json.dumps({"status": status, "answer": answer}, indent=2)
        )
