"""Server-side decoding (`sinks.avro_insert`) on the real ClickHouse: a batch stores
exactly the rows the Python path stores; every kind of bad body makes ClickHouse refuse
the whole insert (so the sink falls back and dead-letters it); a repeat is deduplicated;
and through the sink, a poison record with a valid header is dead-lettered while its
neighbours are stored."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from deploy.settings import StackSettings
from schemas import SchemaRegistry
from schemas.topics import DEAD_LETTER
from sinks import migrations
from sinks.avro_insert import ServerDecode, eligible
from sinks.clickhouse import ClickHouseSink, SinkSettings
from sinks.client import ClickHouseClient
from sinks.convert import Converter
from sinks.errors import ClickHouseRejected
from sinks.layout import layout
import sink_harness as h


@dataclass(frozen=True)
class Msg:
    offset: int
    value: bytes | None


@pytest.fixture(scope="module")
def registry() -> SchemaRegistry:
    return SchemaRegistry.load_default()


@pytest.fixture
async def client(stack: StackSettings, unique: str, registry: SchemaRegistry) -> AsyncIterator[ClickHouseClient]:
    c = ClickHouseClient(stack.clickhouse_url, f"sinktest_{unique}")
    await c.start()
    await migrations.migrate(c, migrations.plan(registry))
    yield c
    await c.command(f"DROP DATABASE IF EXISTS `sinktest_{unique}`")
    await c.close()


def _messages(registry: SchemaRegistry, records: list[dict[str, Any]], first: int = 100) -> list[Msg]:
    return [Msg(first + i, m) for i, m in enumerate(registry.encode_many("heartbeat", records))]


async def _rows(client: ClickHouseClient, partition: int) -> list[tuple[Any, ...]]:
    return await client.rows(f"SELECT * FROM heartbeat WHERE kafka_partition = {partition} ORDER BY kafka_offset")


async def test_rows_equal_the_python_paths_and_a_repeat_is_dropped(client: ClickHouseClient, registry: SchemaRegistry) -> None:
    lay = layout(registry.reader("heartbeat"))
    assert eligible(lay) and not eligible(layout(registry.reader("job")))
    messages = _messages(registry, h.records("heartbeat", 300))
    avro = ServerDecode(lay, registry.reader("heartbeat")).build(3, messages)
    assert avro is not None and avro.rows == 300
    await client.insert_avro(avro.statement, avro.body, "t/3/100-400")
    await client.insert_avro(avro.statement, avro.body, "t/3/100-400")  # a retry: same token
    records = registry.decode_records("heartbeat", [m.value for m in messages if m.value is not None])
    table = Converter(lay).convert(records, 4, [m.offset for m in messages]).tables[0]
    await client.insert_columns(table.table, table.names, table.types, table.columns, "t/4/100-400")
    fast, slow = await _rows(client, 3), await _rows(client, 4)
    assert len(fast) == 300
    partition_at = table.names.index("kafka_partition")
    assert [r[:partition_at] + r[partition_at + 1:] for r in fast] == [r[:partition_at] + r[partition_at + 1:] for r in slow]
    assert await client.rows("SELECT sum(heartbeats) FROM heartbeat_hourly") == [(600,)]


@pytest.mark.parametrize("damage", ["far_future", "padded", "truncated", "bad_utf8", "bad_enum", "old_version", "short"])
async def test_a_bad_body_makes_clickhouse_refuse_the_whole_batch(
    client: ClickHouseClient, registry: SchemaRegistry, damage: str,
) -> None:
    records = h.records("heartbeat", 50)
    messages = _messages(registry, records)
    header = registry.reader("heartbeat").header
    victim = messages[20].value
    assert victim is not None
    if damage == "far_future":
        bad = registry.encode("heartbeat", records[20] | {"event_time": 13_000_000_000_000})
    elif damage == "padded":
        bad = victim + b"\x02"
    elif damage == "truncated":
        bad = victim[:-3]
    elif damage == "bad_utf8":
        bad = registry.encode("heartbeat", records[20] | {"current_job_id": "JOBX"}).replace(b"JOBX", b"\xff\xfe\xfd\xfc")
    elif damage == "old_version":
        bad = registry.encode("heartbeat", records[20], version=registry.versions("heartbeat")[0].version)
    elif damage == "short":
        bad = b"\x00not avro"
    else:
        bad = registry.encode("heartbeat", records[20])
        at = bad.index(records[20]["device_id"].encode()) + len(records[20]["device_id"]) + 8  # into the enums
        bad = bad[:at] + b"\x7e" + bad[at + 1:]
    assert bad.startswith(header) == (damage not in ("old_version", "short"))
    messages[20] = Msg(messages[20].offset, bad)
    avro = ServerDecode(layout(registry.reader("heartbeat")), registry.reader("heartbeat")).build(5, messages)
    assert avro is not None
    with pytest.raises(ClickHouseRejected):
        await client.insert_avro(avro.statement, avro.body, "t/5/100-150")
    assert await _rows(client, 5) == []


def test_other_schema_versions_and_tombstones_take_the_python_path(registry: SchemaRegistry) -> None:
    server = ServerDecode(layout(registry.reader("heartbeat")), registry.reader("heartbeat"))
    good = _messages(registry, h.records("heartbeat", 3))
    assert server.build(0, good) is not None
    old = registry.versions("heartbeat")[0]
    assert old is not registry.reader("heartbeat")
    v1 = registry.encode("heartbeat", h.records("heartbeat", 1)[0], version=old.version)
    assert server.build(0, good + [Msg(200, v1)]) is None
    assert server.build(0, good + [Msg(200, None)]) is None
    assert server.build(0, good + [Msg(200, b"\x00not avro")]) is None
    assert server.build(0, []) is None


async def test_sink_dead_letters_a_poison_record_with_a_valid_header(
    stack: StackSettings, unique: str, registry: SchemaRegistry,
) -> None:
    settings: SinkSettings = h.settings(stack, unique, "heartbeat", batch_max_records=100_000, batch_max_age_s=0.5)
    try:
        records = h.records("heartbeat", 400)
        topic = settings.topic_prefix + "telemetry.heartbeat"
        await h.create_topics(stack.kafka_bootstrap, [topic], partitions=1)
        encoded = registry.encode_many("heartbeat", records)
        poison = registry.encode("heartbeat", records[0] | {"event_time": 13_000_000_000_000})
        await h.produce(stack.kafka_bootstrap, topic, [(b"k", m) for m in encoded[:200]] + [(b"k", poison)]
                        + [(b"k", m) for m in encoded[200:]])
        async with ClickHouseSink(settings, registry) as sink:
            await h.run_until(sink, 401)
        assert sink.counters.dead_lettered == 1
        assert await h.scalar(settings, "SELECT count() FROM heartbeat") == 400
        assert await h.scalar(settings, "SELECT uniqExact(record_id) FROM heartbeat") == 400
        letters = await h.consume_all(stack.kafka_bootstrap, settings.topic_prefix + DEAD_LETTER, 1)
        assert [m.value for m in letters] == [poison]
        assert dict(letters[0].headers)["deadletter.error"] == b"ConvertError"
    finally:
        await h.drop_database(settings)


async def test_a_server_that_refuses_every_fast_insert_turns_the_fast_path_off(
    stack: StackSettings, unique: str, registry: SchemaRegistry,
) -> None:
    settings: SinkSettings = h.settings(stack, unique, "heartbeat", batch_max_records=100)
    try:
        await h.produce_records(stack.kafka_bootstrap, registry, settings, "heartbeat", h.records("heartbeat", 900))
        async with ClickHouseSink(settings, registry) as sink:
            server = sink._server_decode["heartbeat"]
            server._insert = server._insert.replace("INSERT INTO `heartbeat`", "INSERT INTO `no_such_table`")
            await h.run_until(sink, 900)
            assert "heartbeat" not in sink._server_decode  # turned off after three clean refusals
        assert sink.counters.dead_lettered == 0
        assert await h.scalar(settings, "SELECT count() FROM heartbeat") == 900
        assert await h.scalar(settings, "SELECT uniqExact(kafka_partition, kafka_offset) FROM heartbeat") == 900
    finally:
        await h.drop_database(settings)
