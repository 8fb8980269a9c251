"""Helpers of the sink's integration tests: topics of their own (a unique prefix), records
with recent timestamps, producing them to the real broker, and driving a sink until it has
stored what was produced."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

from aiokafka import AIOKafkaProducer

from common.kafka import admin
from common.kafka.settings import KafkaSettings
from common.kafka.topics import pipeline_specs, topic_for
from deploy.settings import StackSettings
from producers.simulator.replay import new_fleet, replay
from schemas import SchemaRegistry
from schemas.samples import sample_record
from sinks.clickhouse import ClickHouseSink, SinkSettings
from sinks.client import ClickHouseClient
from sinks.connection import ClickHouseSettings

DEVICES = tuple(f"dev-{i:02d}" for i in range(12))


def records(kind: str, count: int, *, site: str = "site-x", first_seed: int = 0) -> list[dict[str, Any]]:
    """`count` records of `kind` from 12 printers, a second apart, ending now (the raw
    heartbeat table's TTL drops old rows at insert, so samples' 2025 dates would vanish)."""
    now = int(time.time() * 1000)
    out = []
    for i in range(count):
        record = sample_record(kind, seed=first_seed + i)
        record.update(
            site_id=site, device_id=DEVICES[i % len(DEVICES)], record_id=str(uuid.uuid4()),
            event_time=now - (count - i) * 1000,
        )
        out.append(record)
    return out


def simulated_site(steps: int, kinds: frozenset[str], *, printers: int = 10, site: str = "site-x") -> list[tuple[str, dict[str, Any]]]:
    """(kind, record) of `kinds` that a simulated fleet produces in `steps` heartbeats of
    10 s, in the order the site sends them; the last ones now (the raw heartbeat table's
    TTL drops old rows at insert)."""
    start = int(time.time() * 1000) - steps * 10_000
    sim = replay(new_fleet(printers, 3, start), SchemaRegistry.load_default(), duration_ms=(steps - 1) * 10_000,
                 site_id=site, heartbeat_s=10, kinds=kinds)
    return sim.records


def simulated_heartbeats(count: int, *, printers: int = 10, site: str = "site-x") -> list[dict[str, Any]]:
    """`count` heartbeats of a simulated fleet (`simulated_site`)."""
    steps = -(-count // printers)
    return [r for _, r in simulated_site(steps, frozenset({"heartbeat"}), printers=printers, site=site)][:count]


def settings(stack: StackSettings, unique: str, kinds: str, **overrides: Any) -> SinkSettings:
    prefix = overrides.pop("topic_prefix", f"t{unique}.")
    database = overrides.pop("database", f"sinktest_{unique}")
    values: dict[str, Any] = dict(
        kafka=stack.kafka(topic_prefix=prefix),
        clickhouse=ClickHouseSettings(stack.clickhouse_url, database=database, timeout_s=5.0),
        group_id=f"sink-{unique}", kinds=kinds,
        batch_max_records=500, batch_max_age_s=0.3,
        retry_initial_s=0.2, retry_max_s=1.0,
    )
    values.update(overrides)
    return SinkSettings(**values)


async def apply_topics(kafka: KafkaSettings, kinds: Sequence[str]) -> None:
    """The registry's topics of these kinds, as every component creates them."""
    await admin.apply(kafka, pipeline_specs(topic_for(kind) for kind in kinds))


async def produce(bootstrap: str, topic: str, messages: Sequence[tuple[bytes, bytes]]) -> None:
    """Produce (key, value) pairs and wait for every acknowledgement."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=5)
    await producer.start()
    try:
        futures = [await producer.send(topic, value=v, key=k) for k, v in messages]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def produce_records(
    bootstrap: str, registry: SchemaRegistry, settings: SinkSettings, kind: str, batch: Sequence[dict[str, Any]],
) -> str:
    topic = settings.kafka.topic(topic_for(kind))
    await apply_topics(settings.kafka, [kind])
    encoded = registry.encode_many(kind, batch)
    await produce(bootstrap, topic, [(r["device_id"].encode(), m) for r, m in zip(batch, encoded)])
    return topic


async def run_until(sink: ClickHouseSink, stored: int, timeout_s: float = 60.0) -> None:
    """Step the sink until it has stored (or dead-lettered) `stored` records."""
    deadline = time.monotonic() + timeout_s
    while sink.counters.records_stored + sink.counters.dead_lettered < stored:
        if time.monotonic() > deadline:
            raise AssertionError(f"sink stored {sink.counters} of {stored} within {timeout_s} s")
        await sink.step()


@asynccontextmanager
async def stored(stack: StackSettings, kinds: str, data: Mapping[str, Sequence[dict[str, Any]]]) -> AsyncIterator[SinkSettings]:
    """`data` (kind -> records) produced and stored by a sink in a database of its own,
    dropped at the end."""
    settings_ = settings(stack, uuid.uuid4().hex[:10], kinds)
    registry = SchemaRegistry.load_default()
    for kind, batch in data.items():
        await produce_records(stack.kafka_bootstrap, registry, settings_, kind, batch)
    async with ClickHouseSink(settings_, registry) as sink:
        await run_until(sink, sum(map(len, data.values())))
    try:
        yield settings_
    finally:
        await drop_database(settings_)


async def scalar(settings: SinkSettings, sql: str) -> Any:
    client = ClickHouseClient(settings.clickhouse)
    await client.start()
    try:
        return (await client.rows(sql))[0][0]
    finally:
        await client.close()


async def drop_database(settings: SinkSettings) -> None:
    client = ClickHouseClient(settings.clickhouse)
    await client.start(create_database=True)  # a test that failed early may not have made it
    try:
        await client.command(f"DROP DATABASE IF EXISTS `{settings.clickhouse.database}`")
    finally:
        await client.close()


class Proxy:
    """A TCP forwarder in front of a real server, to take the network path away and give
    it back (the server itself keeps running, so other tests are not disturbed)."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def up(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def down(self) -> None:
        """Refuse new connections and cut the open ones."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()
        if server is not None:
            await server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.transport.abort()
            return
        self._writers |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(1 << 16):
                    dst.write(data)
                    await dst.drain()
            except (OSError, asyncio.CancelledError):
                pass
            finally:
                dst.transport.abort()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self._writers -= {writer, up_writer}


async def consume_all(bootstrap: str, topic: str, expected: int, timeout_s: float = 20.0) -> list[Any]:
    """Every message of `topic` from the beginning, waiting until `expected` are there."""
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False,
                                isolation_level="read_committed")
    await consumer.start()
    out: list[Any] = []
    deadline = time.monotonic() + timeout_s
    try:
        while len(out) < expected and time.monotonic() < deadline:
            for messages in (await consumer.getmany(timeout_ms=500)).values():
                out.extend(messages)
    finally:
        await consumer.stop()
    return out
