"""The servers themselves go away while `printfleet sink` ingests: the Kafka broker is
stopped and started again, and so is the ClickHouse server. A simulated site's heartbeats
and jobs keep arriving before, during and after. Afterwards every message in Kafka is in
ClickHouse exactly once (by partition and offset, by record id, in the child tables and
in the rollups).

These tests stop servers, so they run on a private stack of their own (own folder, own
free ports, started and stopped here), never on the session's shared one.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import KafkaError

from deploy.clickhouse import ClickHouseServer
from deploy.kafka import KafkaServer
from common.kafka.settings import KafkaSettings
from common.kafka.topics import topic_for
from deploy.settings import StackSettings
from schemas import SchemaRegistry
import sink_harness as h
from private_stack import restart, running_stack

KINDS = ("heartbeat", "job")


@pytest.fixture(scope="module")
def private_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackSettings]:
    with running_stack(tmp_path_factory.mktemp("restart-stack")) as settings:
        yield settings


@pytest.fixture(scope="module")
def registry() -> SchemaRegistry:
    return SchemaRegistry.load_default()


@pytest.fixture(scope="module")
def site_records() -> list[tuple[str, dict[str, Any]]]:
    """A simulated site's heartbeats and jobs: 10 printers, 50,000 heartbeats, about 85
    jobs with their parts and layers, ending now. A run sends a third to two thirds."""
    return h.simulated_site(5_000, frozenset(KINDS))


class _Flow:
    """Produces a simulated site's records, 200 a round in the site's order, to the topics
    until stopped, like a gateway: idempotent, acks=all. A send that fails is sent again,
    so a record may be in Kafka twice; the checks count messages, not records."""

    ROUND = 200

    def __init__(self, kafka: KafkaSettings, registry: SchemaRegistry, records: list[tuple[str, Any]]) -> None:
        self.kafka, self.registry, self.records = kafka, registry, records
        self.bootstrap, self.prefix = kafka.bootstrap_servers, kafka.topic_prefix
        self.rounds = 0
        self.failures = 0
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await h.apply_topics(self.kafka, KINDS)
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        self._stop.set()
        assert self._task is not None
        await self._task

    async def _run(self) -> None:
        producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, acks="all", enable_idempotence=True,
                                    linger_ms=5, request_timeout_ms=60_000)
        await producer.start()
        try:
            while not self._stop.is_set():
                # A slow restart can outlast the site's records: they are sent again from
                # the start (the checks hold for messages sent twice: see above).
                at = self.rounds * self.ROUND % len(self.records)
                chunk = self.records[at:at + self.ROUND]
                while True:
                    try:
                        futures = [await producer.send(self.prefix + topic_for(kind), self.registry.encode(kind, r),
                                                       key=r["device_id"].encode()) for kind, r in chunk]
                        await asyncio.gather(*futures)
                        break
                    except KafkaError:
                        self.failures += 1
                        await asyncio.sleep(0.5)
                self.rounds += 1
                await asyncio.sleep(0.05)
        finally:
            await producer.stop()


def _start_sink(stack: StackSettings, unique: str, log: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PRINTFLEET_")}
    env.update({
        "PRINTFLEET_STATE_DIR": str(stack.state_dir),
        "PRINTFLEET_KAFKA_PORT": str(stack.kafka_port),
        "PRINTFLEET_CLICKHOUSE_HTTP_PORT": str(stack.clickhouse_http_port),
        "PRINTFLEET_CLICKHOUSE_DATABASE": f"restart_{unique}", "PRINTFLEET_SINK_GROUP_ID": f"sink-{unique}",
        "PRINTFLEET_SINK_KINDS": ",".join(KINDS), "PRINTFLEET_KAFKA_TOPIC_PREFIX": f"t{unique}.",
        "PRINTFLEET_SINK_BATCH_MAX_RECORDS": "2000", "PRINTFLEET_SINK_BATCH_MAX_AGE_S": "0.3",
        "PRINTFLEET_SINK_RETRY_INITIAL_S": "0.2", "PRINTFLEET_SINK_RETRY_MAX_S": "1.0",
        "PRINTFLEET_CLICKHOUSE_TIMEOUT_S": "5", "PRINTFLEET_SINK_KAFKA_TIMEOUT_S": "5",
    })
    with log.open("ab") as out:
        return subprocess.Popen([sys.executable, "-m", "printfleet", "sink", "--status-every-s", "1", "--ops-port", "0"],
                                env=env, stdout=out, stderr=subprocess.STDOUT)


async def _in_kafka(bootstrap: str, registry: SchemaRegistry, prefix: str) -> dict[str, list[Any]]:
    """Every message of every topic, decoded: kind -> [(partition, offset, record)]."""
    out: dict[str, list[Any]] = {}
    for kind in KINDS:
        topic = prefix + topic_for(kind)
        consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                                    enable_auto_commit=False)
        await consumer.start()
        try:
            ends = await consumer.end_offsets(list(consumer.assignment()) or
                                              [tp for tp in await _partitions(consumer, topic)])
            total = sum(ends.values())
            got: list[Any] = []
            while len(got) < total:
                for messages in (await consumer.getmany(timeout_ms=500)).values():
                    got += [(m.partition, m.offset, registry.decode(m.value).record) for m in messages]
            out[kind] = got
        finally:
            await consumer.stop()
    return out


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> list[Any]:
    from aiokafka import TopicPartition

    return [TopicPartition(topic, p) for p in sorted(await consumer.partitions_for_topic(topic) or ())]


async def _ingest_through(
    private_stack: StackSettings, registry: SchemaRegistry, records: list[tuple[str, Any]], tmp_path: Path,
    server: KafkaServer | ClickHouseServer, down_s: float,
) -> str:
    """Flow on, sink on, restart `server` while both run, flow on a little longer, then
    wait until the sink has stored what Kafka holds and check it is there exactly once.
    Returns the sink's log."""
    unique = uuid.uuid4().hex[:10]
    prefix = f"t{unique}."
    settings = h.settings(private_stack, unique, ",".join(KINDS), database=f"restart_{unique}", topic_prefix=prefix)
    flow = _Flow(settings.kafka, registry, records)
    await flow.start()
    log = tmp_path / "sink.log"
    sink = _start_sink(private_stack, unique, log)
    try:
        await _until(lambda: _count(settings, "heartbeat"), lambda n: n >= 4000, 60, log)
        away = await restart(server, private_stack, down_s)
        rounds_at_return = flow.rounds
        await _until(lambda: _async(flow.rounds), lambda n: n >= rounds_at_return + 40, 60, log)
        await flow.stop()
        kafka = await _in_kafka(private_stack.kafka_bootstrap, registry, prefix)
        total = len(kafka["heartbeat"])
        await _until(lambda: _count(settings, "heartbeat"), lambda n: n >= total, 90, log)
        await _until(lambda: _count(settings, "job"), lambda n: n >= len(kafka["job"]), 30, log)
        await asyncio.sleep(1.5)  # anything doubled would land by now
        sink.send_signal(signal.SIGTERM)
        assert sink.wait(30) == 0, log.read_text()[-3000:]
    finally:
        if sink.poll() is None:
            sink.kill()
        if flow._task is not None and not flow._task.done():
            await flow.stop()
    text = log.read_text()
    print(f"server away {away:.1f} s; {total} heartbeats, {len(kafka['job'])} jobs in Kafka; "
          f"{flow.failures} producer retries; {flow.rounds * flow.ROUND} of the site's {len(records)} records sent")
    assert kafka["job"], "no job in the run: the checks of the child tables would be empty"
    for kind in KINDS:
        messages = kafka[kind]
        rows = await h.scalar(settings, f"SELECT count() FROM {kind}")
        by_offset = await h.scalar(settings, f"SELECT uniqExact(kafka_partition, kafka_offset) FROM {kind}")
        assert rows == by_offset == len(messages), (kind, rows, by_offset, len(messages), text[-3000:])
        ids = {r["record_id"] for _, _, r in messages}
        assert await h.scalar(settings, f"SELECT uniqExact(record_id) FROM {kind}") == len(ids)
    parts = sum(len(r["parts"]) for _, _, r in kafka["job"])
    layers = sum(len(r["layers"]) for _, _, r in kafka["job"])
    assert await h.scalar(settings, "SELECT count() FROM job_parts") == parts
    assert await h.scalar(settings, "SELECT count() FROM job_layers") == layers
    assert await h.scalar(settings, "SELECT sum(heartbeats) FROM heartbeat_hourly") == total
    assert "lag 0" in text.splitlines()[-1], text[-2000:]
    await h.drop_database(settings)
    return text


async def _async(value: int) -> int:
    return value


async def _count(settings: Any, table: str) -> int:
    try:
        return int(await h.scalar(settings, f"SELECT count() FROM {table}"))
    except Exception:  # noqa: BLE001 - before the migration, or while ClickHouse is away
        return -1


async def _until(read: Any, done: Any, timeout_s: float, log: Path) -> None:
    deadline = time.monotonic() + timeout_s
    while not done(value := await read()):
        if time.monotonic() > deadline:
            raise AssertionError(f"stuck at {value} after {timeout_s} s; sink log:\n{log.read_text()[-3000:]}")
        await asyncio.sleep(0.1)


async def test_kafka_broker_restart_during_ingestion_stores_every_message_once(
    private_stack: StackSettings, registry: SchemaRegistry, site_records: list[tuple[str, Any]], tmp_path: Path,
) -> None:
    await _ingest_through(private_stack, registry, site_records, tmp_path, KafkaServer(private_stack), down_s=3.0)


async def test_clickhouse_stopped_and_restarted_during_ingestion_stores_every_message_once(
    private_stack: StackSettings, registry: SchemaRegistry, site_records: list[tuple[str, Any]], tmp_path: Path,
) -> None:
    text = await _ingest_through(private_stack, registry, site_records, tmp_path, ClickHouseServer(private_stack), down_s=4.0)
    assert "PAUSED" in text, text[-3000:]  # the sink waited for ClickHouse, visibly
