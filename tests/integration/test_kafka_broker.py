"""The local broker is a real Kafka: idempotent acks=all produce, consumer groups that
split partitions, committed offsets, end offsets."""

from __future__ import annotations

import asyncio
from collections import Counter

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from deploy.settings import StackSettings

RECORDS = 10_000
PARTITIONS = 6


async def _create_topic(bootstrap: str, name: str, partitions: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])
    finally:
        await admin.close()


async def _produce(bootstrap: str, topic: str, start: int, count: int) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        futures = [
            await producer.send(topic, key=f"dev-{i % 37}".encode(), value=str(i).encode())
            for i in range(start, start + count)
        ]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


def _consumer(bootstrap: str, topic: str, group: str) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )


async def _drain(consumers: list[AIOKafkaConsumer], expected: int, timeout_s: float = 60) -> list[list[int]]:
    """Read with every consumer until `expected` records arrived in all; per consumer list."""
    got: list[list[int]] = [[] for _ in consumers]
    deadline = asyncio.get_running_loop().time() + timeout_s
    while sum(map(len, got)) < expected:
        assert asyncio.get_running_loop().time() < deadline, f"only {sum(map(len, got))} of {expected} arrived"
        batches = await asyncio.gather(*(c.getmany(timeout_ms=200) for c in consumers))
        for i, batch in enumerate(batches):
            for records in batch.values():
                got[i].extend(int(r.value) for r in records)
    return got


async def test_two_consumers_in_a_group_read_every_record_exactly_once(stack: StackSettings, unique: str) -> None:
    topic, group = f"it-kafka-{unique}", f"it-group-{unique}"
    await _create_topic(stack.kafka_bootstrap, topic, PARTITIONS)
    await _produce(stack.kafka_bootstrap, topic, 0, RECORDS)

    consumers = [_consumer(stack.kafka_bootstrap, topic, group) for _ in range(2)]
    for c in consumers:
        await c.start()
    try:
        # Both members must hold partitions before reading, or one may take all six.
        deadline = asyncio.get_running_loop().time() + 30
        while not all(c.assignment() for c in consumers) or sum(len(c.assignment()) for c in consumers) != PARTITIONS:
            assert asyncio.get_running_loop().time() < deadline, "group never split the partitions"
            await asyncio.sleep(0.1)  # the group coordinates in the background; read nothing yet
        assert not (consumers[0].assignment() & consumers[1].assignment())

        got = await _drain(consumers, RECORDS)
        await asyncio.sleep(0.5)  # a duplicate would arrive after the expected count
        for c, extra in zip(consumers, await asyncio.gather(*(c.getmany(timeout_ms=500) for c in consumers))):
            assert not extra, "records beyond the ones produced"
        counts = Counter(v for part in got for v in part)
        assert len(counts) == RECORDS and set(counts) == set(range(RECORDS))
        assert max(counts.values()) == 1
        assert all(got), "both consumers of the group should have read records"
        for c in consumers:
            await c.commit()

        partitions = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        end = await consumers[0].end_offsets(partitions)
        assert sum(end.values()) == RECORDS
    finally:
        for c in consumers:
            await c.stop()


async def test_committed_offsets_survive_a_consumer_restart(stack: StackSettings, unique: str) -> None:
    topic, group = f"it-commit-{unique}", f"it-commit-group-{unique}"
    await _create_topic(stack.kafka_bootstrap, topic, PARTITIONS)
    await _produce(stack.kafka_bootstrap, topic, 0, 1000)

    first = _consumer(stack.kafka_bootstrap, topic, group)
    await first.start()
    try:
        (got,) = await _drain([first], 1000)
        await first.commit()
    finally:
        await first.stop()
    assert sorted(got) == list(range(1000))

    await _produce(stack.kafka_bootstrap, topic, 1000, 500)
    second = _consumer(stack.kafka_bootstrap, topic, group)
    await second.start()
    try:
        (after_restart,) = await _drain([second], 500)
        assert not await second.getmany(timeout_ms=1000), "records beyond the new ones"
        partitions = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        committed = {tp: await second.committed(tp) for tp in partitions}
    finally:
        await second.stop()
    assert sorted(after_restart) == list(range(1000, 1500)), "the restarted consumer re-read committed records"
    # Committed offsets before the restart add up to what the first consumer read.
    assert sum(v or 0 for v in committed.values()) == 1000
