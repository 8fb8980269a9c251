"""Where the device agent's records go: a plain aiokafka producer (acks=all, idempotent).

Faust's send path cost more per record than the agent's logic, and its buffer made the
agent wait whenever a checkpoint filled it with changelog writes; the outputs therefore
skip Faust. Keys are partitioned like Faust's (aiokafka's default partitioner), so a
printer's records stay in one partition of every output topic. The agent hands over a
batch's outputs at once (`send_many`): they go as one Kafka record batch per topic
partition, where aiokafka's `send` made a future and a queue entry per record (measured
in the worker: an output record cost as much as six heartbeats).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import DefaultPartitioner

from common.kafka import clients, deadletter
from common.kafka.settings import KafkaSettings
from common.kafka.topics import DEAD_LETTER
from schemas import SchemaRegistry

log = logging.getLogger(__name__)

Output = tuple[str, str, tuple[str, dict[str, Any]]]  # topic (registry name), key, (kind, record)


class OutputProducer:
    def __init__(self, kafka: KafkaSettings, registry: SchemaRegistry, headers: Sequence[tuple[str, bytes]]) -> None:
        """`headers` go on every output record (the app id: which pipeline made it)."""
        self._kafka, self._registry, self._headers = kafka, registry, list(headers)
        self._producer: AIOKafkaProducer | None = None
        self._started = asyncio.Event()
        # aiokafka's murmur2 is pure Python, about 10 us a key: a fifth of the cost of an
        # output record. A printer's partition of a topic is worked out once (the worker
        # creates its topics with fixed partition counts, see `common.kafka.admin`).
        self._partitioner = DefaultPartitioner()
        self._partition_of: dict[tuple[str, str], int] = {}

    async def start(self) -> None:
        self._producer = clients.producer(self._kafka, linger_ms=5, max_batch_size=1 << 20)
        await self._producer.start()
        self._started.set()

    async def stop(self) -> None:
        """Send what is buffered, then close."""
        producer, self._producer = self._producer, None
        if producer is not None:
            await producer.stop()

    async def send_many(self, outputs: Sequence[Output]) -> list[Any]:
        """Encode `outputs` (topic, key, (kind, record)) and queue them, in order within
        each topic partition; returns the delivery futures of their record batches."""
        producer = await self._ready()
        batches: dict[tuple[str, int], Any] = {}  # aiokafka's BatchBuilder
        futures = []
        for topic, key, (kind, record) in outputs:
            key_bytes = key.encode()
            partition = self._partition_of.get((topic, key))
            if partition is None:
                if len(self._partition_of) > 1_000_000:
                    self._partition_of.clear()
                partitions = sorted(await producer.partitions_for(self._kafka.topic(topic)))
                partition = self._partition_of[(topic, key)] = self._partitioner(key_bytes, partitions, partitions)
            value = self._registry.encode(kind, record)
            batch = batches.get((topic, partition))
            if batch is None:
                batch = batches[(topic, partition)] = producer.create_batch()
            if batch.append(key=key_bytes, value=value, timestamp=None, headers=self._headers) is None:
                # Full: send it and go on in a new one (an empty batch takes any record).
                futures.append(await producer.send_batch(batch, self._kafka.topic(topic), partition=partition))
                batch = batches[(topic, partition)] = producer.create_batch()
                batch.append(key=key_bytes, value=value, timestamp=None, headers=self._headers)
        for (topic, partition), batch in batches.items():
            futures.append(await producer.send_batch(batch, self._kafka.topic(topic), partition=partition))
        return futures

    async def dead_letter(self, key: bytes | None, raw: bytes, reason: str, topic: str, partition: int, offset: int,
                          timestamp_ms: int = -1, error: str = "InvalidRecordError") -> Any:
        """Queue `raw` unchanged on the dead-letter topic with the reason and its origin
        (`topic`: its registry name); returns the delivery future."""
        log.debug("dead letter from %s[%d]@%d: %s", topic, partition, offset, reason)
        origin = deadletter.Origin("worker", "apply", self._kafka.topic(topic), partition, offset, timestamp_ms)
        producer = await self._ready()
        return await producer.send(self._kafka.topic(DEAD_LETTER), raw, key=key,
                                   headers=deadletter.headers(origin, reason, error))

    async def _ready(self) -> AIOKafkaProducer:
        # Timer passes (ticks) can come before the worker's start-up task started us.
        await self._started.wait()
        if self._producer is None:
            raise RuntimeError("OutputProducer used after stop()")
        return self._producer
