"""The live feed: one Kafka consumer of fleet.state and alerts, the fleet it keeps in
memory (`dashboard.fleet`), and the event streams of the open pages (`Hub`).

The consumer has no group and commits nothing: it assigns itself every partition of both
topics and reads them from the beginning at every start (fleet.state is compacted: its
newest record per printer is always there; alerts: the topic's retention), then follows.
It reads committed records only (`common.kafka.clients`). Before the topics, it takes the
open alerts from ClickHouse (`seed`), so an alert open longer than the alerts topic keeps
its records is still shown. `ready` turns true once it has
read up to the end offsets it found at start, so a page served after that sees the whole
fleet. A message that is no record of its topic's kind is logged and counted, not shown.

Every change goes to the pages of its site only. Each page has its own bounded queue:
when a page does not keep up and its queue fills, its stream is closed (the browser
reconnects and re-reads the fleet) instead of holding the feed up or growing memory.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Final

from aiokafka import TopicPartition
from aiokafka.errors import KafkaError

from common.errors import PrintfleetError
from common.kafka import admin, clients, diagnose
from common.kafka.settings import KafkaSettings
from common.kafka.topics import pipeline_specs, topic_for
from dashboard.errors import FeedFailed
from dashboard.fleet import Fleet, Record
from schemas import DecodeError, SchemaRegistry

log = logging.getLogger(__name__)

POLL_MS: Final = 500
KINDS: Final = ("fleet_state", "alert")
Seed = Callable[[], Awaitable[list[Record]]]


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(eq=False, slots=True)
class Subscriber:
    """One page's event stream: the events of one site, in a bounded queue. `dropped`
    is set when the queue overflowed: the stream must then end."""

    site_id: str
    queue: asyncio.Queue[tuple[str, str]]
    dropped: bool = False


@dataclass(slots=True)
class Hub:
    """The open event streams, by site; `publish` never waits."""

    queue_max: int
    _subscribers: dict[str, set[Subscriber]] = field(default_factory=dict)
    dropped_total: int = 0

    def subscribe(self, site_id: str) -> Subscriber:
        sub = Subscriber(site_id, asyncio.Queue(self.queue_max))
        self._subscribers.setdefault(site_id, set()).add(sub)
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        subs = self._subscribers.get(sub.site_id)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self._subscribers[sub.site_id]

    def close_all(self) -> None:
        """End every stream (the server is stopping): each is marked dropped and woken."""
        for subs in self._subscribers.values():
            for sub in subs:
                sub.dropped = True
                try:
                    sub.queue.put_nowait(("", ""))
                except asyncio.QueueFull:
                    pass  # it has an event to wake up to, and will see `dropped`

    @property
    def connections(self) -> int:
        return sum(len(s) for s in self._subscribers.values())

    def publish(self, site_id: str, event: str, data: Record) -> None:
        """Queue `event` for every stream of `site_id` (serialised once). A stream whose
        queue is full is marked dropped and gets nothing more."""
        subs = self._subscribers.get(site_id)
        if not subs:
            return
        text = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
        for sub in subs:
            if sub.dropped:
                continue
            try:
                sub.queue.put_nowait((event, text))
            except asyncio.QueueFull:
                sub.dropped = True
                self.dropped_total += 1
                log.warning("event=sse_dropped site=%s reason=queue_full size=%d", site_id, self.queue_max)


class Feed:
    """Reads the topics into `fleet` and tells `hub`. `start()` checks the topics and
    starts reading; `stop()` is idempotent and safe without `start()`. `failure` holds
    the error that stopped the reading, if one did (then `FeedFailed` is raised by
    `wait()`)."""

    def __init__(self, kafka: KafkaSettings, fleet: Fleet, hub: Hub, *, offline_check_s: float,
                 clock: Callable[[], int] = wall_ms, seed: Seed | None = None) -> None:
        self.kafka, self.fleet, self.hub = kafka, fleet, hub
        self.seed = seed
        self.offline_check_s = offline_check_s
        self.clock = clock
        self.registry = SchemaRegistry.load_default()
        self.ready = False
        self.records: Counter[str] = Counter()  # per kind
        self.undecodable = 0
        self.failure: BaseException | None = None
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._topics = {kafka.topic(topic_for(kind)): kind for kind in KINDS}

    async def start(self) -> None:
        """Check the topics (raises `TopicMismatch` or `KafkaUnavailable`) and start
        reading them from the beginning."""
        if self._tasks:
            return
        await admin.check(self.kafka, pipeline_specs([topic_for(k) for k in KINDS]))
        await self._seed()
        self._tasks = [asyncio.create_task(self._read(), name="dashboard-feed"),
                       asyncio.create_task(self._offline_timer(), name="dashboard-offline")]

    async def _seed(self) -> None:
        """Take the open alerts `seed` gives (ClickHouse: alerts raised longer ago than the
        topic keeps); the topic's records, read next, win where they are newer. Without
        them the dashboard still starts, and says what it lacks."""
        if self.seed is None:
            return
        try:
            alerts = await self.seed()
        except PrintfleetError as exc:
            log.warning("event=dashboard_open_alerts_not_loaded error=%s detail=%r", exc,
                        "open alerts older than the alerts topic's retention are not shown")
            return
        now = self.clock()
        for alert in alerts:
            self.fleet.apply_alert(alert, now)
        log.info("event=dashboard_open_alerts_loaded alerts=%d", len(alerts))

    async def stop(self) -> None:
        self._stop.set()
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def wait(self) -> None:
        """Return when the feed stopped; raise FeedFailed when it failed."""
        if self._tasks:
            await asyncio.wait(self._tasks, return_when=asyncio.FIRST_COMPLETED)
        if self.failure is not None:
            raise FeedFailed(f"the dashboard's Kafka feed stopped: {self.failure}") from self.failure

    async def _read(self) -> None:
        consumer = clients.consumer(self.kafka, group_id=None, auto_offset_reset="earliest")
        try:
            await consumer.start()
            tps = [TopicPartition(topic, p) for topic in self._topics
                   for p in range(pipeline_specs([topic_for(self._topics[topic])])[0].partitions)]
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            ends = await consumer.end_offsets(tps)
            pending = {tp for tp in tps if ends[tp] > 0}
            while not self._stop.is_set():
                if not self.ready:
                    # Position, not the last offset read: it steps over transaction markers.
                    pending = {tp for tp in pending if await consumer.position(tp) < ends[tp]}
                    if not pending:
                        self.ready = True
                        log.info("event=dashboard_feed_ready printers=%d", self.fleet.printer_count)
                batches = await consumer.getmany(timeout_ms=POLL_MS)
                for tp, messages in batches.items():
                    for m in messages:
                        self._take(tp.topic, tp.partition, m.offset, m.value)
        except asyncio.CancelledError:
            raise
        except KafkaError as exc:
            self.failure = await diagnose.failure(self.kafka, exc, "reading fleet.state and alerts")
            log.error("event=dashboard_feed_failed error=%s", self.failure)
        except Exception as exc:
            self.failure = exc
            log.exception("event=dashboard_feed_failed")
        finally:
            await consumer.stop()

    def _take(self, topic: str, partition: int, offset: int, value: bytes | None) -> None:
        kind = self._topics[topic]
        record = self._decode(kind, value)
        if isinstance(record, str):
            self.undecodable += 1
            log.warning("event=dashboard_record_not_shown topic=%s partition=%d offset=%d reason=%r",
                        topic, partition, offset, record)
            return
        self.records[kind] += 1
        now = self.clock()
        if kind == "fleet_state":
            printer = self.fleet.apply_state(record, now)
            if printer is not None:
                self.hub.publish(str(record["site_id"]), "printer", printer)
            return
        alert, printer = self.fleet.apply_alert(record, now)
        if alert is not None:
            self.hub.publish(str(record["site_id"]), "alert", alert)
        if printer is not None:
            self.hub.publish(str(record["site_id"]), "printer", printer)

    def _decode(self, kind: str, value: bytes | None) -> dict[str, Any] | str:
        if value is None:
            return "no value (a tombstone)"
        try:
            decoded = self.registry.decode(value)
        except DecodeError as exc:
            return f"{type(exc).__name__}: {exc}"
        if decoded.kind != kind:
            return f"a {decoded.kind} record, not a {kind}"
        return dict(decoded.record)

    async def _offline_timer(self) -> None:
        while not self._stop.is_set():
            try:
                await asyncio.wait_for(self._stop.wait(), self.offline_check_s)
            except asyncio.TimeoutError:
                pass
            for printer in self.fleet.recheck_offline(self.clock()):
                self.hub.publish(str(printer["site_id"]), "printer", printer)
