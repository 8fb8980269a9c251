"""The collector's uploader: spool -> gateway, deleting records only after the gateway
acknowledged them.

Each round peeks the oldest pending records, sends them as one gzip batch over outbound
HTTPS and acks them in the spool on a 2xx. While the gateway is away (network error, 429,
503, 5xx) the batch stays in the spool and the uploader backs off, honouring Retry-After.
Before a batch is sent, its bounds go to `inflight.json`; after a crash the uploader first
sends exactly that batch again (same records, same bytes), which the gateway recognises as
a repeat and does not produce twice. A 401/403 is a configuration problem at this site: retried slowly and logged loudly, never
dropped. Any other 4xx means the gateway will never take this batch: it is written to
`rejected/` beside the spool with the gateway's answer, then acked, so one bad batch cannot
stop a site forever and nothing disappears unseen.
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from common.backoff import Backoff
from producers.batch_format import CONTENT_TYPE, encode_batch
from producers.spool.spool import Batch
from producers.spool.async_spool import AsyncSpool

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class UploaderSettings:
    gateway_url: str
    token: str = field(repr=False)
    rejected_dir: Path
    inflight_file: Path
    ca_file: Path | None = None
    max_records: int = 5_000
    max_bytes: int = 1 << 20
    idle_poll_s: float = 1.0
    timeout_s: float = 30.0
    drain_s: float = 10.0


@dataclass
class UploaderCounters:
    batches: int = 0
    records: int = 0
    wire_bytes: int = 0
    failures: int = 0
    rejected_batches: int = 0
    last_error: str = ""
    last_success_at: float | None = None


class Uploader:
    def __init__(self, settings: UploaderSettings, spool: AsyncSpool) -> None:
        self.settings = settings
        self.spool = spool
        self.counters = UploaderCounters()
        self._backoff = Backoff(initial_s=0.5, maximum_s=30.0)

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
        await asyncio.to_thread(self._write_inflight, batch.first_seq, batch.last_seq, len(batch.records))
        headers = {"Authorization": f"Bearer {self.settings.token}", "Content-Type": CONTENT_TYPE}
        try:
            async with session.post(
                f"{self.settings.gateway_url}/v1/records", data=body, headers=headers, ssl=ssl_context
            ) as resp:
                answer = await resp.text()
                status, retry_after = resp.status, resp.headers.get("Retry-After")
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            return self._failed(f"gateway unreachable: {exc!r}", None)
        self.counters.wire_bytes += len(body)
        if 200 <= status < 300:
            await self.spool.ack(batch)
            self.settings.inflight_file.unlink(missing_ok=True)
            self._backoff.reset()
            self.counters.batches += 1
            self.counters.records += len(batch.records)
            self.counters.last_success_at = time.time()
            return 0.0
        if status in (401, 403):
            log.error("event=upload_refused status=%d answer=%s", status, answer[:500])
            return self._failed(f"gateway refused the site's credential ({status}): {answer[:200]}", None, slow=True)
        if status in (408, 429) or status >= 500:
            return self._failed(f"gateway answered {status}: {answer[:200]}", retry_after)
        await self._reject(batch.first_seq, batch.last_seq, body, status, answer)
        await self.spool.ack(batch)
        self.settings.inflight_file.unlink(missing_ok=True)
        return 0.0

    async def _next_batch(self) -> Batch:
        """The batch that was in flight when the last run ended, if it is still pending
        unchanged; otherwise the oldest pending records."""
        try:
            inflight = json.loads(self.settings.inflight_file.read_text())
        except (FileNotFoundError, ValueError):
            inflight = None
        if inflight:
            batch = await self.spool.peek(int(inflight["count"]), 1 << 40)
            if (batch.first_seq, batch.last_seq) == (inflight["first"], inflight["last"]):
                return batch
        return await self.spool.peek(self.settings.max_records, self.settings.max_bytes)

    def _write_inflight(self, first: int | None, last: int | None, count: int) -> None:
        tmp = self.settings.inflight_file.with_suffix(".tmp")
        tmp.write_text(json.dumps({"first": first, "last": last, "count": count}))
        tmp.replace(self.settings.inflight_file)

    def _failed(self, error: str, retry_after: str | None, slow: bool = False) -> float:
        self.counters.failures += 1
        self.counters.last_error = error
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
