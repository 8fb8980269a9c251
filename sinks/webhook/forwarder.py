"""The forwarder: alert lifecycle changes from the alerts topic to a webhook, at least
once, in order per partition (so per printer), its position kept in Kafka.

A consumer group (`WebhookSettings.group_id`) reads the alerts topic (read_committed:
the worker writes in transactions). Each change is POSTed, signed, until the receiver
answers 2xx; only then is the offset after it committed. So a restart resumes at the
first change not acknowledged: nothing acknowledged is sent again, except the one
change whose 2xx arrived just before the process died and whose commit did not
(docs/alerts.md, "Webhook"). A rebalance in the middle of a delivery may likewise send
that one change again, from the partition's new owner. Both repeats carry the same
`X-Printfleet-Id`.

What is committed past without a 2xx is never silent: a change the filters leave out
is counted (`printfleet_webhook_filtered_total`); one the receiver refuses for good
(`ReceiverRefused`, `refused_attempts` times) and a message that is no alert go to the
dead-letter topic first, with the reason, and are counted.

Temporary failures (`ReceiverUnavailable`) are retried forever, with the shared
backoff; meanwhile the partitions are paused and the consumer keeps polling, so it stays
in its group however long the receiver is away.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any, Final

import aiohttp
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError

from common.alert_view import AlertFilter
from common.backoff import Backoff
from common.kafka import admin, clients, diagnose
from common.kafka.topics import DEAD_LETTER, pipeline_specs, topic_for
from common.logs import Throttle
from common.ops import OpsServer, OpsSettings
from schemas import SchemaRegistry
from sinks.deadletter import DeadLetter, DeadLetterProducer
from sinks.webhook import payload
from sinks.webhook.delivery import post
from sinks.webhook.errors import ReceiverRefused, ReceiverUnavailable
from sinks.webhook.metrics import ForwardCounters, families
from sinks.webhook.payload import ForwardFilter
from sinks.webhook.settings import WebhookSettings

log = logging.getLogger(__name__)

POLL_MS: Final = 500  # one poll's wait: also how soon a stop is noticed while idle
MAX_RECORDS: Final = 100  # per poll: changes held in memory, not yet delivered
COMPONENT: Final = "webhook"


class Forwarder:
    """`start()` checks the topics and joins the group; `run(stop)` forwards until `stop`
    is set; `stop()` commits what was decided, leaves the group and is idempotent and
    safe without `start()`. `async with` does both."""

    def __init__(self, settings: WebhookSettings, registry: SchemaRegistry, *,
                 clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.registry = registry
        self.topic = settings.kafka.topic(topic_for("alert"))
        self.filter = ForwardFilter(settings.rules, settings.severities, AlertFilter(site=settings.site))
        self.counters = ForwardCounters()
        self._clock = clock
        self._secret = settings.secret.reveal().encode()
        self._letters = DeadLetterProducer(settings.kafka)
        self._consumer: AIOKafkaConsumer | None = None
        self._session: aiohttp.ClientSession | None = None
        self._generation = 0  # bumped at each revocation: a held batch is then stale
        self._pending: dict[TopicPartition, int] = {}  # offsets decided but not yet committed
        self._in_flight_ms: int | None = None  # Kafka timestamp of the change being delivered
        self._last_failure: str | None = None
        self._throttle = Throttle(30.0)
        self._unanchored: set[TopicPartition] = set()  # assigned, committed offset not yet checked
        # Last: the registry reads the families once when they are registered.
        self.ops = OpsServer(OpsSettings(settings.ops_host, settings.ops_port), COMPONENT)
        self.ops.check("kafka", lambda: diagnose.unreachable(settings.kafka))
        self.ops.check("receiver", self._receiver_ready)
        self.ops.collect(lambda: families(self.counters, self._undelivered_age))

    async def __aenter__(self) -> Forwarder:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        """Raises TopicMismatch when the alerts or dead-letter topic is missing or not as
        registered, KafkaUnavailable (KafkaRefused) when Kafka cannot be used."""
        if self._consumer is not None:
            return
        kafka = self.settings.kafka
        await admin.check(kafka, pipeline_specs([topic_for("alert"), DEAD_LETTER]))
        await self.ops.start()  # first: a port in use stops the command before it joins the group
        consumer = clients.consumer(kafka, group_id=self.settings.group_id,
                                    auto_offset_reset="earliest" if self.settings.from_beginning else "latest")
        try:
            await consumer.start()
            consumer.subscribe([self.topic], listener=_Listener(self))
            await self._letters.start()
        except BaseException as exc:
            await consumer.stop()
            await self._letters.stop()
            await self.ops.stop()
            if isinstance(exc, KafkaError):
                raise await diagnose.failure(kafka, exc, f"forwarding {self.topic}") from exc
            raise
        self._consumer = consumer
        self._session = aiohttp.ClientSession()

    async def stop(self) -> None:
        consumer, self._consumer = self._consumer, None
        session, self._session = self._session, None
        try:
            if consumer is not None:
                await self._commit_pending(consumer)
        finally:
            if consumer is not None:
                await consumer.stop()
            if session is not None:
                await session.close()
            await self._letters.stop()
            await self.ops.stop()

    async def wait_assigned(self, stop: asyncio.Event) -> set[TopicPartition]:
        """Poll until the group gave this forwarder its partitions and their start is
        known (a change committed after this returns is forwarded), or `stop` is set."""
        consumer = self._require()
        while not stop.is_set() and not consumer.assignment():
            await self._poll_paused(consumer, POLL_MS / 1000)
        await self._anchor(consumer)
        return set(consumer.assignment())

    async def _anchor(self, consumer: AIOKafkaConsumer, held: dict[TopicPartition, list[Any]] | None = None) -> None:
        """Commit the start of newly assigned partitions the group has no offset for:
        a group that starts at the end must resume, after a restart, where it started,
        not at the end of that later moment (the changes between would be lost). `held`:
        messages fetched but not handled yet; a partition's start is its first of them."""
        new, self._unanchored = self._unanchored & consumer.assignment(), set()
        for tp in sorted(new, key=lambda t: t.partition):
            try:
                if await consumer.committed(tp) is None:
                    first = (held or {}).get(tp)
                    self._pending[tp] = first[0].offset if first else await consumer.position(tp)
            except KafkaError as exc:
                raise await diagnose.failure(self.settings.kafka, exc, f"forwarding {self.topic}") from exc
        await self._commit_pending(consumer)

    async def run(self, stop: asyncio.Event) -> None:
        """Forward until `stop` is set. Raises KafkaUnavailable when Kafka fails a poll."""
        consumer = self._require()
        while not stop.is_set():
            try:
                batches = await consumer.getmany(timeout_ms=POLL_MS, max_records=MAX_RECORDS)
            except KafkaError as exc:
                raise await diagnose.failure(self.settings.kafka, exc, f"forwarding {self.topic}") from exc
            if self._unanchored:
                await self._anchor(consumer, batches)
            generation = self._generation
            for tp, messages in sorted(batches.items(), key=lambda item: item[0].partition):
                for i, m in enumerate(messages):
                    if stop.is_set() or generation != self._generation or not await self._handle(consumer, tp, m, stop):
                        self._read_again(consumer, batches, tp, i)
                        break
                else:
                    continue
                break
            await self._commit_pending(consumer)

    async def _handle(self, consumer: AIOKafkaConsumer, tp: TopicPartition, m: Any, stop: asyncio.Event) -> bool:
        """Deliver, filter out or dead-letter one message; False when it was left for
        later (a stop or a rebalance while the receiver was away)."""
        alert = payload.decode(self.registry, m.value)
        if isinstance(alert, str):
            await self._dead_letter(tp, m, f"not an alert record: {alert}", "NotAnAlert", "decode")
            return True
        if not self.filter.matches(alert):
            self.counters.filtered += 1
            self._pending[tp] = m.offset + 1
            return True
        change = payload.change(alert)
        backoff = Backoff(self.settings.retry_initial_s, self.settings.retry_max_s)
        generation, refusals = self._generation, 0
        self._in_flight_ms = m.timestamp
        try:
            while True:
                assert self._session is not None
                try:
                    await post(self._session, self.settings.url, self._secret, change,
                               timeout_s=self.settings.timeout_s, max_retry_after_s=self.settings.retry_max_s,
                               clock=self._clock)
                except ReceiverUnavailable as exc:
                    failure: ReceiverUnavailable | ReceiverRefused = exc
                    delay = exc.retry_after if exc.retry_after is not None else backoff.next_delay()
                except ReceiverRefused as exc:
                    refusals += 1
                    if refusals >= self.settings.refused_attempts:
                        reason = (f"the receiver refused it {refusals} times, last with {exc.status}: "
                                  f"{exc.answer!r} (delivery id {change.delivery_id})")
                        await self._dead_letter(tp, m, reason, type(exc).__name__, "deliver")
                        self._recovered()
                        return True
                    failure, delay = exc, backoff.next_delay()
                else:
                    self.counters.delivered += 1
                    self._pending[tp] = m.offset + 1
                    await self._commit_pending(consumer)
                    self._recovered()
                    return True
                self.counters.retries += 1
                self._failed(change.delivery_id, tp, m.offset, failure, delay)
                if not await self._pause(consumer, delay, stop) or generation != self._generation:
                    return False
        finally:
            self._in_flight_ms = None

    async def _dead_letter(self, tp: TopicPartition, m: Any, reason: str, error: str, stage: str) -> None:
        """Put the message on the dead-letter topic as it is, wait for Kafka's
        acknowledgement, then move past it. Raises KafkaUnavailable (nothing committed)."""
        await self._letters.send([DeadLetter(tp.topic, tp.partition, m, reason, error, stage, component=COMPONENT)])
        self.counters.dead_lettered += 1
        self._pending[tp] = m.offset + 1
        consumer = self._require()
        await self._commit_pending(consumer)

    async def _commit_pending(self, consumer: AIOKafkaConsumer) -> None:
        """Commit the offsets decided so far. A failure is logged, not raised: the next
        commit of the partition covers these offsets too, and a crash before it costs a
        repeat of what was decided since the last commit (at least once)."""
        mine = {tp: offset for tp, offset in self._pending.items() if tp in consumer.assignment()}
        self._pending.clear()
        if not mine:
            return
        try:
            await consumer.commit(mine)
        except KafkaError as exc:
            log.warning("event=commit_failed offsets=%s error=%r (repeated after a restart if not committed later)",
                        {f"{tp.partition}": o for tp, o in mine.items()}, exc)

    async def _pause(self, consumer: AIOKafkaConsumer, delay: float, stop: asyncio.Event) -> bool:
        """Wait `delay` seconds before the next attempt, polling with every partition
        paused (the group sees a live member). False when `stop` was set meanwhile."""
        deadline = time.monotonic() + delay
        while not stop.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return True
            await self._poll_paused(consumer, min(left, POLL_MS / 1000))
        return False

    async def _poll_paused(self, consumer: AIOKafkaConsumer, wait_s: float) -> None:
        consumer.pause(*consumer.assignment())
        try:
            # Partitions assigned during this poll are not paused: what they return is
            # put back, to be read in order after the change being delivered.
            got = await consumer.getmany(timeout_ms=int(wait_s * 1000))
        except KafkaError as exc:
            raise await diagnose.failure(self.settings.kafka, exc, f"forwarding {self.topic}") from exc
        finally:
            consumer.resume(*consumer.paused())
        for tp, messages in got.items():
            if messages and tp in consumer.assignment():
                consumer.seek(tp, messages[0].offset)

    def _read_again(self, consumer: AIOKafkaConsumer, batches: dict[TopicPartition, list[Any]],
                    tp: TopicPartition, index: int) -> None:
        """The held changes from `batches[tp][index]` on were not handled: where the
        partitions are still ours, read them again (never commit past them)."""
        assigned = consumer.assignment()
        for other, messages in batches.items():
            start = index if other == tp else (0 if other.partition > tp.partition else None)
            if start is not None and start < len(messages) and other in assigned:
                consumer.seek(other, messages[start].offset)

    def _failed(self, delivery_id: str, tp: TopicPartition, offset: int, exc: Exception, delay: float) -> None:
        self._last_failure = str(exc)
        held = self._throttle.allow(time.monotonic())
        if held is not None:
            log.warning("event=webhook_attempt_failed id=%s partition=%d offset=%d retry_in_s=%.1f held_back=%d "
                        "error=%s %s", delivery_id, tp.partition, offset, delay, held, type(exc).__name__, exc)

    def _recovered(self) -> None:
        if self._last_failure is not None:
            log.info("event=webhook_recovered held_back=%d", self._throttle.reset())
        self._last_failure = None

    async def _receiver_ready(self) -> str | None:
        return None if self._last_failure is None else f"last attempt failed: {self._last_failure[:200]}"

    def _undelivered_age(self) -> float:
        since = self._in_flight_ms
        return 0.0 if since is None else max(0.0, self._clock() - since / 1000)

    def _revoked(self) -> None:
        self._generation += 1
        self._pending.clear()  # the partitions' next owner starts from what was committed

    def _require(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            raise RuntimeError("the forwarder is not started")
        return self._consumer


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    """Before partitions go: commit what was decided (the next owner starts after it);
    changes held but not handled are stale from then on."""

    def __init__(self, forwarder: Forwarder) -> None:
        self._forwarder = forwarder

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        consumer = self._forwarder._consumer
        if consumer is not None:
            await self._forwarder._commit_pending(consumer)
        self._forwarder._revoked()

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        self._forwarder._unanchored |= assigned
        log.info("event=partitions_assigned partitions=%s", sorted(tp.partition for tp in assigned))
