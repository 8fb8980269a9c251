"""Column-by-column decoding (`sinks.native_block`) on the real ClickHouse: a Native
block stores exactly the rows the record-by-record path stores, rollups included; a
repeat is deduplicated; and through the sink, a poison record with a valid header sends
its batch down the record-by-record path, which dead-letters it while its neighbours are
stored. (Which messages send a batch there: tests/unit/sinks/test_sink_native_block.py.)"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from deploy.settings import StackSettings
from schemas import SchemaRegistry
from schemas.topics import DEAD_LETTER
from sinks import migrations
from sinks.clickhouse import ClickHouseSink, SinkSettings
from sinks.client import ClickHouseClient
from sinks.convert import Converter
from sinks.layout import layout
from sinks.native_block import NativeDecode, eligible
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
    native = NativeDecode(lay, registry.reader("heartbeat")).build(3, messages)
    assert native is not None and native.rows == 300
    await client.insert_native(native, "t/3/100-400")
    await client.insert_native(native, "t/3/100-400")  # a retry: same token
    records = registry.decode_records("heartbeat", [m.value for m in messages if m.value is not None])
    table = Converter(lay).convert(records, 4, [m.offset for m in messages]).tables[0]
    await client.insert_columns(table.table, table.names, table.types, table.columns, "t/4/100-400")
    fast, slow = await _rows(client, 3), await _rows(client, 4)
    assert len(fast) == 300
    partition_at = table.names.index("kafka_partition")
    assert [r[:partition_at] + r[partition_at + 1:] for r in fast] == [r[:partition_at] + r[partition_at + 1:] for r in slow]
    assert await client.rows("SELECT sum(heartbeats) FROM heartbeat_hourly") == [(600,)]


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
