"""Produces validated records to Kafka for the gateway, and answers only once all are acked.

One aiokafka producer with acks=all and idempotence, so a broker retry never writes a
record twice. Records are grouped per topic-partition into aiokafka batches (the
partition from the key with Kafka's own murmur2 partitioner, so Java and Python clients
agree on where a device's records live); that is several times cheaper than one `send()`
per record. This module is the one place the gateway's aiokafka errors are translated.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError, KafkaTimeoutError
from aiokafka.partitioner import DefaultPartitioner

from common.kafka import admin, clients, deadletter
from common.kafka.errors import KafkaUnavailable
from common.kafka.settings import KafkaSettings
from common.kafka.topics import DEAD_LETTER, TopicSpec

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class OutRecord:
    """A record to produce (`topic`: its registry name). Its Kafka timestamp is the time the gateway produced it, not
    the record's event_time: the broker refuses timestamps more than an hour ahead of its
    clock (a printer with a wrong clock would block its site) and applies retention by
    timestamp (a backlog uploaded late would expire at once). Event time is in the record.
    """

    topic: str
    key: bytes
    value: bytes


class Publisher:
    """The gateway's Kafka producer. `start()` may fail while Kafka is away; `publish()`
    then starts it lazily, so the gateway can answer 503 instead of refusing to run."""

    def __init__(self, kafka: KafkaSettings, *, topics: Sequence[TopicSpec], timeout_s: float = 15.0) -> None:
        self._kafka = kafka
        self.topics = tuple(topics)  # registry entries, created or checked at start
        self._timeout_s = timeout_s
        self._producer: AIOKafkaProducer | None = None
        self._partitioner = DefaultPartitioner()
        # aiokafka's murmur2 is pure Python and was a third of the gateway's CPU; a
        # device's partition only changes with the partition count, part of the key.
        self._partition_of: dict[tuple[str, bytes, int], int] = {}
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        """Create missing topics and connect. Raises KafkaUnavailable."""
        async with self._lock:
            if self._producer is not None:
                return
            try:
                await admin.apply(self._kafka, self.topics, wait_s=self._timeout_s)
                producer = clients.producer(
                    self._kafka, linger_ms=5, max_batch_size=1 << 20, request_timeout_ms=int(self._timeout_s * 1000)
                )
                await asyncio.wait_for(producer.start(), self._timeout_s)
            except (KafkaError, OSError, asyncio.TimeoutError) as exc:
                raise KafkaUnavailable(f"Kafka at {self._kafka.bootstrap_servers} is unavailable: {exc!r}") from exc
            self._producer = producer

    async def stop(self) -> None:
        """Flush and close; safe without start and safe to repeat."""
        producer, self._producer = self._producer, None
        if producer is not None:
            await producer.stop()

    async def publish(self, records: Sequence[OutRecord]) -> None:
        """Produce every record; return once Kafka acknowledged all of them.

        Raises KafkaUnavailable when that does not happen within the timeout; some of the
        records may still have been written, which is why every record carries a
        record_id that consumers deduplicate on.
        """
        if self._producer is None:
            await self.start()
        producer = self._producer
        assert producer is not None
        try:
            futures = await asyncio.wait_for(self._send(producer, records), self._timeout_s)
            await asyncio.wait_for(asyncio.gather(*futures), self._timeout_s)
        except (KafkaTimeoutError, asyncio.TimeoutError) as exc:
            # Only this batch waited too long (aiokafka's accumulator gives up early under
            # load): the producer is sound and other batches are in flight on it.
            log.warning("event=publish_timeout records=%d error=%r", len(records), exc)
            raise KafkaUnavailable(f"Kafka did not acknowledge the batch in time: {exc!r}") from exc
        except KafkaError as exc:
            # Anything else may leave the idempotent producer's state broken: start anew.
            log.warning("event=publish_failed records=%d error=%r", len(records), exc)
            await self._reset()
            raise KafkaUnavailable(f"Kafka did not acknowledge the batch: {exc!r}") from exc

    async def _send(self, producer: AIOKafkaProducer, records: Sequence[OutRecord]) -> list[asyncio.Future[object]]:
        by_tp: dict[tuple[str, int], list[OutRecord]] = defaultdict(list)
        partitions: dict[str, list[int]] = {}
        for record in records:
            if record.topic not in partitions:
                partitions[record.topic] = sorted(await producer.partitions_for(self._kafka.topic(record.topic)))
            parts = partitions[record.topic]
            cache_key = (record.topic, record.key, len(parts))
            partition = self._partition_of.get(cache_key)
            if partition is None:
                if len(self._partition_of) > 1_000_000:
                    self._partition_of.clear()
                partition = self._partition_of[cache_key] = self._partitioner(record.key, parts, parts)
            by_tp[(record.topic, partition)].append(record)
        futures: list[asyncio.Future[object]] = []
        for (name, partition), group in by_tp.items():
            topic = self._kafka.topic(name)
            batch = producer.create_batch()
            now_ms = int(time.time() * 1000)
            for record in group:
                while batch.append(key=record.key, value=record.value, timestamp=now_ms) is None:
                    futures.append(await producer.send_batch(batch, topic, partition=partition))
                    batch = producer.create_batch()
            futures.append(await producer.send_batch(batch, topic, partition=partition))
        return futures

    async def dead_letter(self, record: OutRecord | None, raw: bytes, reason: str, error: str) -> None:
        """Put one refused upload record on the dead-letter topic and wait for the ack.
        `record` None: it did not decode far enough to know its topic. Raises KafkaUnavailable."""
        if self._producer is None:
            await self.start()
        producer = self._producer
        assert producer is not None
        origin = deadletter.Origin("gateway", "upload", self._kafka.topic(record.topic) if record else "",
                                   timestamp_ms=int(time.time() * 1000))
        try:
            future = await producer.send(self._kafka.topic(DEAD_LETTER), raw, key=record.key if record else None,
                                         headers=deadletter.headers(origin, reason, error))
            await asyncio.wait_for(future, self._timeout_s)
        except (KafkaError, OSError, asyncio.TimeoutError) as exc:
            raise KafkaUnavailable(f"dead letter not acknowledged: {exc!r}") from exc

    async def _reset(self) -> None:
        async with self._lock:
            producer, self._producer = self._producer, None
        if producer is not None:
            try:
                await asyncio.wait_for(producer.stop(), 5)
            except (KafkaError, asyncio.TimeoutError):
                pass
