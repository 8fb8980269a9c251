"""Follow a registry topic as it grows, for tools (`printfleet alerts follow`).

A consumer without a group: it assigns itself every partition of the topic, starts at
the end (or the beginning) and commits nothing, so any number of tools can follow at
once without joining, rebalancing or leaving offsets behind. It reads committed records
only (`common.kafka.clients`: the worker writes its outputs in transactions, and a record
of an aborted one never happened). Order is per partition, so per key.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Final

from aiokafka import TopicPartition
from aiokafka.errors import KafkaError

from common.kafka import admin, clients, diagnose
from common.kafka.settings import KafkaSettings
from common.kafka.topics import pipeline_specs

POLL_MS: Final = 500  # how long one poll waits: also how soon a stop is noticed


@dataclass(frozen=True, slots=True)
class Message:
    """One message of the followed topic (cluster name) and where it was."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


async def follow(
    settings: KafkaSettings, name: str, stop: asyncio.Event, *, from_beginning: bool = False,
    positioned: Callable[[str, int], None] = lambda topic, partitions: None,
) -> AsyncIterator[Message]:
    """Yield the messages of registry topic `name` until `stop` is set. `positioned(topic,
    partitions)` is called once every partition's start offset is known: a record
    committed after that is yielded. Raises `KafkaUnavailable` (or `KafkaRefused`) when
    Kafka cannot be reached, `TopicMismatch` when the topic is missing or not as registered."""
    spec, = pipeline_specs([name])
    # The one place topics are checked: raises TopicMismatch when it is missing or has
    # other partitions than the registry's, whose partition count is then the cluster's.
    await admin.check(settings, [spec])
    topic = settings.topic(spec.name)
    consumer = clients.consumer(settings, group_id=None, auto_offset_reset="earliest" if from_beginning else "latest")
    try:
        await consumer.start()
        assigned = [TopicPartition(topic, p) for p in range(spec.partitions)]
        consumer.assign(assigned)
        if from_beginning:
            await consumer.seek_to_beginning(*assigned)
        else:
            await consumer.seek_to_end(*assigned)
        for tp in assigned:
            # A seek is resolved lazily, at the first fetch; asking the position resolves
            # it now, so "from the end" means from the moment `positioned` is called.
            await consumer.position(tp)
    except KafkaError as exc:
        await consumer.stop()
        raise await diagnose.failure(settings, exc, f"following {topic}") from exc
    except BaseException:
        await consumer.stop()
        raise
    positioned(topic, len(assigned))
    try:
        while not stop.is_set():
            try:
                batches = await consumer.getmany(timeout_ms=POLL_MS)
            except KafkaError as exc:
                raise await diagnose.failure(settings, exc, f"following {topic}") from exc
            for tp, messages in sorted(batches.items(), key=lambda item: item[0].partition):
                for m in messages:
                    yield Message(tp.topic, tp.partition, m.offset, m.key, m.value)
    finally:
        await consumer.stop()
