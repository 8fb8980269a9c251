"""Produces validated records to Kafka for the gateway, and answers only once all are committed.

One transactional aiokafka producer (acks=all, idempotent): each `commit` writes its
records and the collectors' new sequence marks (`producers.gateway.uploads`) in one Kafka
transaction, so a batch and the mark that says it arrived are in Kafka together or not
at all, and consumers (reading committed records only) never see a half of it. The
transactional id is the gateway instance's: a restarted instance fences its previous
self, whose open transaction is aborted at once. Records are grouped per
topic-partition into aiokafka batches (the partition from the key with Kafka's own
murmur2 partitioner, so Java and Python clients agree on where a device's records live);
that is several times cheaper than one `send()` per record. This module is the one place
the gateway's aiokafka errors are translated.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from aiokafka.partitioner import DefaultPartitioner

from common.kafka import admin, clients, deadletter
from common.kafka.diagnose import failure
from common.kafka.errors import KafkaUnavailable
from common.kafka.settings import KafkaSettings
from common.kafka.topics import DEAD_LETTER, GATEWAY_UPLOADS, TopicSpec
from producers.gateway.uploads import Mark, encode_mark

log = logging.getLogger(__name__)

_NOT_COMMITTED: tuple[type[Exception], ...] = (*clients.TRANSACTION_ERRORS, OSError, asyncio.TimeoutError)


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
    headers: tuple[tuple[str, bytes], ...] = ()


class Publisher:
    """The gateway's Kafka producer. `start()` may fail while Kafka is away; `commit()`
    then starts it lazily, so the gateway can answer 503 instead of refusing to run."""

    def __init__(self, kafka: KafkaSettings, *, topics: Sequence[TopicSpec], instance_id: str,
                 timeout_s: float = 15.0) -> None:
        self._kafka = kafka
        self.topics = tuple(topics)  # registry entries, created or checked at start
        self._instance_id = instance_id
        self._timeout_s = timeout_s
        self._producer: AIOKafkaProducer | None = None
        self._partitioner = DefaultPartitioner()
        # aiokafka's murmur2 is pure Python and was a third of the gateway's CPU; a
        # device's partition only changes with the partition count, part of the key.
        self._partition_of: dict[tuple[str, bytes, int], int] = {}
        self._lock = asyncio.Lock()
        self._transaction = asyncio.Lock()  # one transaction at a time per producer

    async def start(self) -> None:
        """Create missing topics and connect. Raises KafkaUnavailable."""
        async with self._lock:
            if self._producer is not None:
                return
            try:
                await admin.apply(self._kafka, self.topics, wait_s=self._timeout_s)
                producer = clients.producer(
                    self._kafka, linger_ms=5, max_batch_size=1 << 20, request_timeout_ms=int(self._timeout_s * 1000),
                    transactional_id=f"gateway.{self._instance_id}",
                    # The broker aborts a transaction left open this long (its gateway
                    # died): until then consumers of committed data wait at it.
                    transaction_timeout_ms=int(self._timeout_s * 1000),
                )
            except (KafkaError, OSError, asyncio.TimeoutError) as exc:
                raise await failure(self._kafka, exc, "gateway producer") from exc
            try:
                await asyncio.wait_for(producer.start(), self._timeout_s)
            except (KafkaError, OSError, asyncio.TimeoutError) as exc:
                # A producer whose start failed still holds its connections and, past
                # bootstrap, a metadata task: the next request would make another.
                await producer.stop()
                raise await failure(self._kafka, exc, "gateway producer") from exc
            self._producer = producer

    async def stop(self) -> None:
        """Close; safe without start and safe to repeat."""
        producer, self._producer = self._producer, None
        if producer is not None:
            await producer.stop()

    async def commit(self, records: Sequence[OutRecord], marks: Mapping[str, Mark]) -> None:
        """Produce every record and the collectors' `marks` in one transaction; return
        once it is committed.

        Raises KafkaUnavailable when that does not happen within the timeout. Whether the
        transaction then committed is unknown to this call; the marks tell the next one.
        """
        async with self._transaction:
            producer = await self._ready()
            try:
                await asyncio.wait_for(self._commit(producer, records, marks), self._timeout_s)
            except _NOT_COMMITTED as exc:
                # The transaction's state is not known: a new producer with the same
                # transactional id fences this one and aborts what it left open.
                log.warning("event=commit_failed records=%d error=%r", len(records), exc)
                await self._reset()
                raise await failure(self._kafka, exc, "Kafka did not commit the batch") from exc

    async def _commit(self, producer: AIOKafkaProducer, records: Sequence[OutRecord], marks: Mapping[str, Mark]) -> None:
        await producer.begin_transaction()
        futures = await self._send(producer, records)
        uploads = self._kafka.topic(GATEWAY_UPLOADS)
        for key, mark in marks.items():
            futures.append(await producer.send(uploads, encode_mark(mark), key=key.encode(), partition=0))
        await asyncio.gather(*futures)
        await producer.commit_transaction()

    async def _ready(self) -> AIOKafkaProducer:
        if self._producer is None:
            await self.start()
        assert self._producer is not None
        return self._producer

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
                # aiokafka's builder takes headers as a list only.
                while batch.append(key=record.key, value=record.value, timestamp=now_ms,
                                   headers=list(record.headers)) is None:
                    futures.append(await producer.send_batch(batch, topic, partition=partition))
                    batch = producer.create_batch()
            futures.append(await producer.send_batch(batch, topic, partition=partition))
        return futures

    def letter(self, record: OutRecord | None, raw: bytes, reason: str, error: str) -> OutRecord:
        """The dead letter of a refused upload record, to produce with its batch (`commit`).
        `record` None: it did not decode far enough to know its topic."""
        origin = deadletter.Origin("gateway", "upload", self._kafka.topic(record.topic) if record else "",
                                   timestamp_ms=int(time.time() * 1000))
        return OutRecord(DEAD_LETTER, record.key if record else b"", raw,
                         tuple(deadletter.headers(origin, reason, error)))

    async def _reset(self) -> None:
        async with self._lock:
            producer, self._producer = self._producer, None
        if producer is not None:
            try:
                await asyncio.wait_for(producer.stop(), 5)
            except (KafkaError, OSError, asyncio.TimeoutError):
                pass
