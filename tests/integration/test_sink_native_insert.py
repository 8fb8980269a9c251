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
from sinks.connection import ClickHouseSettings
from sinks.convert import Converter
from sinks.layout import layout
from sinks.native_block import NativeDecode, eligible
import sink_harness as h


@pytest.fixture(scope="module")
def registry() -> SchemaRegistry:
    return SchemaRegistry.load_default()


@pytest.fixture
async def clients(stack: StackSettings, unique: str, registry: SchemaRegistry) -> AsyncIterator[list[ClickHouseClient]]:
    """Two databases: one for the Native blocks, one for the record-by-record inserts."""
    out = []
    for name in (f"sinktest_{unique}_native", f"sinktest_{unique}_records"):
        c = ClickHouseClient(ClickHouseSettings(stack.clickhouse_url, database=name))
        await c.start(create_database=True)
        await migrations.migrate(c, migrations.plan(registry))
        out.append(c)
    yield out
    for c in out:
        await c.command(f"DROP DATABASE IF EXISTS `{c.database}`")
        await c.close()


async def _tables(client: ClickHouseClient, tables: list[str]) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of `tables` and of the rollups, without the time of insert, sorted."""
    out = {}
    for table in tables + ["heartbeat_hourly", "job_daily"]:
        columns = [r[0] for r in await client.rows(
            "SELECT name FROM system.columns WHERE database = currentDatabase() AND table = {t:String} "
            "AND name != 'inserted_at' ORDER BY position", {"t": table})]
        out[table] = sorted(await client.rows(f"SELECT {', '.join(f'`{c}`' for c in columns)} FROM `{table}`"), key=repr)
    return out


@pytest.mark.parametrize("kind", ["heartbeat", "job", "alert"])
async def test_tables_and_rollups_equal_the_record_by_record_ones_and_a_repeat_is_dropped(
    clients: list[ClickHouseClient], registry: SchemaRegistry, kind: str,
) -> None:
    native_db, records_db = clients
    lay = layout(registry.reader(kind))
    assert eligible(lay, registry.reader(kind))
    encoded = registry.encode_many(kind, h.records(kind, 300))
    messages = [SimpleNamespace(offset=100 + i, value=m) for i, m in enumerate(encoded)]
    inserts = NativeDecode(lay, registry.reader(kind)).build(3, messages)
    assert inserts is not None and inserts[0].rows == 300
    for _ in range(2):  # the second time is a retry: same token
        for insert in inserts:
            await native_db.insert_native(insert, "t/3/100-400")
    converted = Converter(lay).convert(registry.decode_records(kind, encoded), 3, [m.offset for m in messages])
    for table in converted.tables:
        if table.rows:
            await records_db.insert_columns(table.table, table.names, table.types, table.columns, "t/3/100-400")
    tables = [t.table for t in converted.tables if t.rows]
    assert [i.table for i in inserts] == tables
    fast, slow = await _tables(native_db, tables), await _tables(records_db, tables)
    assert len(fast[kind]) == 300
    assert fast == slow
