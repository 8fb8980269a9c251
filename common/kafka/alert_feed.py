"""Follow the alerts topic: every lifecycle record (RAISED, UPDATED, CLEARED) as it is
committed, for service tools (`printfleet alerts follow`).

A consumer without a group: it assigns itself every partition of the topic, starts at
the end (or the beginning) and commits nothing, so any number of tools can follow at
once without joining, rebalancing or leaving offsets behind. It reads committed records
only (the worker writes its outputs in transactions; a record of an aborted one never
happened). Order is per partition, and so per printer (the topic is keyed by device id).

A message that does not decode as an alert is not skipped in silence: it is handed to
the caller as a `BadMessage` (topic, partition, offset, why), and the feed goes on.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, Final

from aiokafka import TopicPartition
from aiokafka.errors import KafkaError

from common.kafka import admin, clients, diagnose
from common.kafka.settings import KafkaSettings
from common.kafka.topics import pipeline_specs, topic_for
from schemas import DecodeError, SchemaRegistry, UnknownSchemaError

POLL_MS: Final = 500  # how long one poll waits: also how soon a stop is noticed


@dataclass(frozen=True, slots=True)
class BadMessage:
    """A message of the alerts topic that is not an alert record the registry knows."""

    topic: str
    partition: int
    offset: int
    reason: str


@dataclass(frozen=True, slots=True)
class AlertMessage:
    """One decoded alert record (resolved to the newest alert schema) and where it was."""

    partition: int
    offset: int
    record: dict[str, Any]


async def follow(
    settings: KafkaSettings, registry: SchemaRegistry, stop: asyncio.Event, *, from_beginning: bool = False,
    positioned: Callable[[str, int], None] = lambda topic, partitions: None,
) -> AsyncIterator[AlertMessage | BadMessage]:
    """Yield the alerts topic's messages until `stop` is set. `positioned(topic,
    partitions)` is called once every partition's start offset is known: a record
    committed after that is yielded. Raises `KafkaUnavailable` (or `KafkaRefused`) when
    Kafka cannot be reached, `TopicMismatch` when the topic is missing or not as registered."""
    spec, = pipeline_specs([topic_for("alert")])
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
        raise await diagnose.failure(settings, exc, "alerts follow") from exc
    except BaseException:
        await consumer.stop()
        raise
    positioned(topic, len(assigned))
    try:
        while not stop.is_set():
            try:
                batches = await consumer.getmany(timeout_ms=POLL_MS)
            except KafkaError as exc:
                raise await diagnose.failure(settings, exc, "alerts follow") from exc
            for tp, messages in sorted(batches.items(), key=lambda item: item[0].partition):
                for message in messages:
                    yield decode(registry, tp.topic, tp.partition, message.offset, message.value)
    finally:
        await consumer.stop()


def decode(registry: SchemaRegistry, topic: str, partition: int, offset: int, value: bytes | None) -> AlertMessage | BadMessage:
    """One message of the alerts topic as an alert, or why it is none."""
    if value is None:
        return BadMessage(topic, partition, offset, "no value (a tombstone)")
    try:
        decoded = registry.decode(value)
    except (DecodeError, UnknownSchemaError) as exc:
        return BadMessage(topic, partition, offset, f"{type(exc).__name__}: {exc}")
    if decoded.kind != "alert":
        return BadMessage(topic, partition, offset, f"a {decoded.kind} record, not an alert")
    return AlertMessage(partition, offset, decoded.record)
