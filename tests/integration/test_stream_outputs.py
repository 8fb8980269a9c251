"""The worker's output producer puts a printer's records where Kafka's default partitioner
would (murmur2 of the key, as Java clients and Faust compute it), though it works that
partition out once per printer instead of per record (streams/output_producer.py)."""

from __future__ import annotations

import time
import uuid

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.partitioner import DefaultPartitioner

from deploy.settings import StackSettings
from schemas import SchemaRegistry
from schemas.samples import sample_record
from common.kafka.topics import PARTITIONS
from streams.output_producer import OutputProducer


async def test_outputs_land_on_the_default_partition_of_their_key_every_time(stack: StackSettings) -> None:
    topic = f"it-outputs-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=stack.kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, PARTITIONS, 1)])
    finally:
        await admin.close()
    registry = SchemaRegistry.load_default()
    devices = [uuid.uuid4().hex for _ in range(40)]
    producer = OutputProducer(stack.kafka(), registry, [("app_id", b"it")])
    await producer.start()
    try:
        outputs = [(topic, device, ("fleet_state", {**sample_record("fleet_state", seed=n), "device_id": device}))
                   for n in range(3) for device in devices]  # each printer three times: the cached partition too
        futures = await producer.send_many(outputs[:50]) + await producer.send_many(outputs[50:])
        sent = [await f for f in futures]
    finally:
        await producer.stop()

    partitions = list(range(PARTITIONS))
    expected = {device: DefaultPartitioner()(device.encode(), partitions, partitions) for device in devices}
    assert len(set(expected.values())) > 1  # the keys spread: a fixed partition would fail below
    # One record batch per topic partition and call.
    assert len(futures) == len({expected[d] for _, d, _ in outputs[:50]}) + len({expected[d] for _, d, _ in outputs[50:]})
    assert all(m.topic == topic for m in sent)

    consumer = AIOKafkaConsumer(bootstrap_servers=stack.kafka_bootstrap, group_id=None, auto_offset_reset="earliest")
    await consumer.start()
    try:
        consumer.assign([TopicPartition(topic, p) for p in partitions])
        seen: list[tuple[int, str]] = []
        deadline = time.monotonic() + 60
        while len(seen) < len(futures):
            assert time.monotonic() < deadline, f"read {len(seen)} of {len(futures)}"
            for tp, messages in (await consumer.getmany(timeout_ms=1000)).items():
                seen += [(tp.partition, registry.decode(m.value).record["device_id"]) for m in messages]
    finally:
        await consumer.stop()
    assert sorted(seen) == sorted((expected[d], d) for _ in range(3) for d in devices)
    # A printer's records keep their order: within a partition, as they were handed over.
    for p in partitions:
        assert [d for q, d in seen if q == p] == [d for _, d, _ in outputs if expected[d] == p]
