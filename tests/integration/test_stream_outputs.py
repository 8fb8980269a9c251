"""The worker's partition transactions on the real broker (streams/partition_transactions.py):
outputs land where Kafka's default partitioner puts their key, readers of committed data
see them only with the states and book of their checkpoint, a new owner recovers exactly
what was committed, and fences the old one."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.partitioner import DefaultPartitioner

from common.kafka import admin
from common.kafka.settings import KafkaSettings
from common.kafka.topics import PARTITIONS, pipeline_topics, topic_for, worker_topics
from deploy.settings import StackSettings
from schemas import SchemaRegistry
from schemas.samples import sample_record
from streams.errors import TransactionFailed
from streams.partition_transactions import PartitionTransactions, Recovered

APP = "it-worker"


async def _kafka(stack: StackSettings, unique: str) -> KafkaSettings:
    kafka = stack.kafka(topic_prefix=f"tx-{unique}.")
    await admin.apply(kafka, (*pipeline_topics(), *worker_topics(APP)))
    return kafka


async def _committed(kafka: KafkaSettings, topic: str, at_least: int, wait_s: float = 20) -> list[Any]:
    """The committed messages of `topic` (registry name): at least `at_least` of them, or
    whatever is there after `wait_s`."""
    consumer = AIOKafkaConsumer(bootstrap_servers=kafka.bootstrap_servers, group_id=None, auto_offset_reset="earliest",
                                isolation_level="read_committed")
    await consumer.start()
    try:
        consumer.assign([TopicPartition(kafka.topic(topic), p) for p in range(PARTITIONS)])
        seen: list[Any] = []
        deadline = time.monotonic() + wait_s
        while len(seen) < at_least and time.monotonic() < deadline:
            for messages in (await consumer.getmany(timeout_ms=200)).values():
                seen += messages
        return seen
    finally:
        await consumer.stop()


def _fleet_state(device: str, seed: int) -> tuple[str, str, tuple[str, dict[str, Any]]]:
    return topic_for("fleet_state"), device, ("fleet_state", {**sample_record("fleet_state", seed=seed), "device_id": device})


async def test_outputs_land_on_the_default_partition_of_their_key_in_order(stack: StackSettings, unique: str) -> None:
    kafka = await _kafka(stack, unique)
    registry = SchemaRegistry.load_default()
    devices = [uuid.uuid4().hex for _ in range(40)]
    partitions = list(range(PARTITIONS))
    expected = {device: DefaultPartitioner()(device.encode(), partitions, partitions) for device in devices}
    assert len(set(expected.values())) > 1  # the keys spread: a fixed partition would fail below
    tx = PartitionTransactions(kafka, registry, [("app_id", b"it")], app_id=APP)
    await tx.own(partitions)
    outputs = [_fleet_state(device, n) for n in range(3) for device in devices]  # the cached partition too
    try:
        for p in partitions:  # each partition's outputs in its own transaction, as the agent sends them
            mine = [o for o in outputs if expected[o[1]] == p]
            await tx.send_many(p, mine[:5])
            await tx.send_many(p, mine[5:])
            await tx.commit(p, {}, b"{}")
    finally:
        await tx.stop()
    seen = await _committed(kafka, topic_for("fleet_state"), len(outputs))
    got = [(m.partition, registry.decode(m.value).record["device_id"]) for m in seen]
    assert sorted(got) == sorted((expected[d], d) for _, d, _ in outputs)
    for p in partitions:  # a printer's records keep their order within its partition
        assert [d for q, d in got if q == p] == [d for _, d, _ in outputs if expected[d] == p]


async def test_a_checkpoint_is_seen_whole_and_an_uncommitted_one_not_at_all(stack: StackSettings, unique: str) -> None:
    kafka = await _kafka(stack, unique)
    registry = SchemaRegistry.load_default()
    first = PartitionTransactions(kafka, registry, [], app_id=APP)
    assert await first.own([2]) == {2: Recovered()}  # nothing committed yet
    await first.send_many(2, [_fleet_state("dev-committed", 1)])
    await first.commit(2, {"dev-committed": b'{"v": 1}'}, b'{"book": 1}')
    # Made after the checkpoint, then the worker dies: never committed.
    await first.send_many(2, [_fleet_state("dev-lost", 2)])
    await first.dead_letter(2, b"dev-lost", b"raw", "why", topic_for("heartbeat"), 2, 7)

    # The next owner fences the first (its transaction is aborted) and recovers the checkpoint.
    second = PartitionTransactions(kafka, registry, [], app_id=APP)
    recovered = await second.own([2])
    assert recovered[2].states == {"dev-committed": b'{"v": 1}'} and recovered[2].book == b'{"book": 1}'
    with pytest.raises(TransactionFailed):
        await first.commit(2, {"dev-lost": b'{"v": 2}'}, b'{"book": 2}')
    await first.stop()
    await second.commit(2, {}, b'{"book": 3}')
    await second.stop()
    seen = await _committed(kafka, topic_for("fleet_state"), 2, wait_s=3)
    assert [registry.decode(m.value).record["device_id"] for m in seen] == ["dev-committed"]
    assert await _committed(kafka, "deadletter", 1, wait_s=2) == []
    third = PartitionTransactions(kafka, registry, [], app_id=APP)
    assert (await third.own([2]))[2].book == b'{"book": 3}'
    await third.stop()


async def test_an_owner_fenced_while_it_sends_fails_its_transaction_and_stops_cleanly(
        stack: StackSettings, unique: str) -> None:
    kafka = await _kafka(stack, unique)
    registry = SchemaRegistry.load_default()
    first = PartitionTransactions(kafka, registry, [], app_id=APP)
    await first.own([1])
    await first.commit(1, {}, b'{"book": 1}')
    second = PartitionTransactions(kafka, registry, [], app_id=APP)
    await second.own([1])
    # The first owner's send goes out after the fencing: the broker refuses it while the
    # producer works in the background, which leaves aiokafka's transaction in its fatal
    # state (sends raise IllegalOperation, commits an AssertionError).
    await first.send_many(1, [_fleet_state("dev-zombie", 1)])
    with pytest.raises(TransactionFailed):
        for _ in range(50):
            await asyncio.sleep(0.1)
            await first.send_many(1, [_fleet_state("dev-zombie", 2)])
    with pytest.raises(TransactionFailed):
        await first.commit(1, {"dev-zombie": b"{}"}, b'{"book": 2}')
    await first.stop()
    await second.commit(1, {}, b'{"book": 3}')
    await second.stop()
    assert await _committed(kafka, topic_for("fleet_state"), 1, wait_s=3) == []
