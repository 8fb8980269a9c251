"""Cluster mode (`--cluster`, sinks/cluster.py) on the one local server, as far as it goes
without Keeper. The server's config names a cluster `printfleet_local` of one shard with
one replica, itself over native TCP (deploy/clickhouse.py).

What needs Keeper, and fails here as the test asserts: every `ON CLUSTER` statement
(QUERY_IS_PROHIBITED, "Replicated DDL queries are disabled": chdb has no DDL worker) and
every Replicated engine (NO_ZOOKEEPER). So the cluster plan is run with those two parts
taken out (`_without_keeper`), and everything else runs for real: the `_local` tables,
the Distributed tables over them with their sharding key, the rollup views on the local
tables, the ALTERs of both, and `schema_migrations` through its Distributed table. Then
the sink's client in cluster mode inserts through the Distributed tables, and a retried
batch is dropped by its token on the shard, in the tables and in the rollups, both when
the shard is this process and when it is reached over TCP as a remote shard is."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import replace
from types import SimpleNamespace

import pytest

from deploy.clickhouse import LOCAL_CLUSTER
from deploy.settings import StackSettings
from schemas import SchemaRegistry
from sinks import migrations
from sinks.client import ClickHouseClient
from sinks.cluster import Cluster
from sinks.connection import ClickHouseSettings
from sinks.errors import ClickHouseRejected
from sinks.layout import layout
from sinks.native_block import NativeDecode
import sink_harness as h


def _without_keeper(sql: str) -> str:
    """A cluster statement as it can run on a server without Keeper: no ON CLUSTER, and
    each Replicated engine as its plain kind (replicated_* settings as the plain one)."""
    sql = sql.replace(f" ON CLUSTER `{LOCAL_CLUSTER}`", "")
    sql = re.sub(r"Replicated(\w*MergeTree)\('[^']*', '[^']*'(?:, )?", r"\1(", sql).replace("MergeTree()", "MergeTree")
    return re.sub(r"replicated_deduplication_window = (\d+), replicated_deduplication_window_seconds = \d+",
                  r"non_replicated_deduplication_window = \1", sql)


@pytest.fixture(scope="module")
def registry() -> SchemaRegistry:
    return SchemaRegistry.load_default()


@pytest.fixture
async def cluster_db(stack: StackSettings, unique: str, registry: SchemaRegistry) -> AsyncIterator[ClickHouseSettings]:
    """A database laid out by the cluster plan (minus Keeper), migrations recorded."""
    settings = ClickHouseSettings(stack.clickhouse_url, database=f"cluster_{unique}", cluster=LOCAL_CLUSTER)
    cluster = Cluster(LOCAL_CLUSTER, settings.database)
    admin = ClickHouseClient(replace(settings, cluster=""))
    await admin.start(create_database=True)
    plan = migrations.plan(registry, cluster)
    for statement in migrations.migrations_table(cluster):
        await admin.command(_without_keeper(statement))
    for migration in plan:
        for statement in migration.statements:
            await admin.command(_without_keeper(statement))
    client = ClickHouseClient(settings)  # as the sink's client in cluster mode
    await client.start()
    await client.insert_rows(migrations.MIGRATIONS_TABLE, ["id", "description", "checksum", "statements"],
                             [[m.id, m.description, m.checksum, len(m.statements)] for m in plan])
    await client.close()
    yield settings
    await admin.command(f"DROP DATABASE IF EXISTS `{settings.database}`")
    await admin.close()


async def test_on_cluster_and_replicated_engines_need_keeper(stack: StackSettings, unique: str, registry: SchemaRegistry) -> None:
    settings = ClickHouseSettings(stack.clickhouse_url, database=f"cluster_{unique}", cluster=LOCAL_CLUSTER)
    with pytest.raises(ClickHouseRejected, match=r"Replicated DDL queries are disabled") as on_cluster:
        await ClickHouseClient(settings).start(create_database=True)
    assert on_cluster.value.code == 392 and not on_cluster.value.retriable
    admin = ClickHouseClient(replace(settings, cluster=""))
    await admin.start(create_database=True)
    try:
        local = migrations.plan(registry, Cluster(LOCAL_CLUSTER, settings.database))[0].statements[0]
        with pytest.raises(ClickHouseRejected, match=r"Can't create replicated table without ZooKeeper") as replicated:
            await admin.command(local.replace(f" ON CLUSTER `{LOCAL_CLUSTER}`", ""))
        assert replicated.value.code == 225
    finally:
        await admin.command(f"DROP DATABASE IF EXISTS `{settings.database}`")
        await admin.close()


async def test_every_table_has_its_local_table_and_the_views_read_the_local_ones(
    cluster_db: ClickHouseSettings, registry: SchemaRegistry,
) -> None:
    client = ClickHouseClient(cluster_db)
    await client.start()
    try:
        tables = dict(await client.rows(
            "SELECT name, engine FROM system.tables WHERE database = currentDatabase()"))
        distributed = {n for n, e in tables.items() if e == "Distributed"}
        assert {"heartbeat", "job", "job_layers", "heartbeat_hourly", "schema_migrations"} <= distributed
        assert all(tables[n + "_local"].endswith("MergeTree") for n in distributed)
        assert tables["heartbeat_hourly_mv"] == "MaterializedView"
        # The ALTERs of later schema versions reached both tables: the same columns.
        for name in distributed:
            assert await _columns(client, name) == await _columns(client, name + "_local"), name
        # What the sink reads to know which migrations ran, through the Distributed table.
        plan = migrations.plan(registry, Cluster(LOCAL_CLUSTER, cluster_db.database))
        assert await migrations.applied(_NoDdl(client)) == {m.id: m.checksum for m in plan}
    finally:
        await client.close()


class _NoDdl:
    """The client, minus the CREATE of `applied()` (ON CLUSTER cannot run here)."""

    def __init__(self, client: ClickHouseClient) -> None:
        self.client = client

    async def command(self, sql: str) -> None:
        assert sql.startswith("CREATE TABLE IF NOT EXISTS")

    async def rows(self, sql: str) -> list[tuple[object, ...]]:
        return await self.client.rows(sql)

    async def insert_rows(self, table: str, columns: list[str], rows: list[list[object]]) -> None:
        raise AssertionError("nothing to record")


async def _columns(client: ClickHouseClient, table: str) -> list[tuple[object, ...]]:
    return await client.rows("SELECT name, type FROM system.columns WHERE database = currentDatabase() "
                             "AND table = {t:String} ORDER BY position", {"t": table})


@pytest.mark.parametrize("over_tcp", [False, True], ids=["local-shard", "shard-over-tcp"])
async def test_a_retried_batch_through_distributed_tables_is_stored_once(
    cluster_db: ClickHouseSettings, registry: SchemaRegistry, over_tcp: bool,
) -> None:
    client = ClickHouseClient(cluster_db)
    if over_tcp:  # as a shard on another node is reached: a remote insert with the query's settings
        client._insert_settings["prefer_localhost_replica"] = 0
    await client.start()
    try:
        kind = "job"
        lay = layout(registry.reader(kind))
        encoded = registry.encode_many(kind, h.records(kind, 200))
        messages = [SimpleNamespace(offset=i, value=m) for i, m in enumerate(encoded)]
        inserts = NativeDecode(lay, registry.reader(kind)).build(0, messages)
        assert inserts is not None and inserts[0].table == "job"
        for _ in range(2):  # the second is a retry: same token
            for insert in inserts:
                await client.insert_native(insert, "t/0/0-200")
        layers = next(i.rows for i in inserts if i.table == "job_layers")
        assert await client.rows("SELECT count(), uniqExact(kafka_offset) FROM job") == [(200, 200)]
        assert await client.rows("SELECT count() FROM job_local") == [(200,)]
        assert await client.rows("SELECT count() FROM job_layers") == [(layers,)]
        assert await client.rows("SELECT sum(jobs) FROM job_daily") == [(200,)]
        # The same rows under another token are a new batch: stored again (the token decided).
        for insert in inserts:
            await client.insert_native(insert, "t/0/200-400")
        assert await client.rows("SELECT count() FROM job") == [(400,)]
        assert await client.rows("SELECT sum(jobs) FROM job_daily") == [(400,)]
    finally:
        await client.close()
