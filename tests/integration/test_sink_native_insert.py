"""Column-by-column decoding (`sinks.native_block`) on the real ClickHouse: a Native
block stores exactly the rows the record-by-record path stores, rollups included, and a
repeat is deduplicated. (Which messages send a batch down the record-by-record path:
tests/unit/sinks/test_sink_native_block.py; that a poison record among good ones is
dead-lettered and its neighbours stored: test_sink_faults.py.)"""

from __future__ import annotations

from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import pytest

from deploy.settings import StackSettings
from schemas import SchemaRegistry
from sinks import migrations
from sinks.client import ClickHouseClient
from sinks.convert import Converter
from sinks.layout import layout
from sinks.native_block import NativeDecode, eligible
import sink_harness as h


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


def _messages(registry: SchemaRegistry, records: list[dict[str, Any]], first: int = 100) -> list[SimpleNamespace]:
    return [SimpleNamespace(offset=first + i, value=m) for i, m in enumerate(registry.encode_many("heartbeat", records))]


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
