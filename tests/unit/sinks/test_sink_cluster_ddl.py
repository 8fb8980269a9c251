"""The schema for a ClickHouse cluster (`--cluster NAME`, sinks/cluster.py): every
statement ON CLUSTER, Replicated `_local` tables under Distributed tables of today's
names, views on the local tables, and one server's DDL left exactly as it was. Pure text;
what of it runs on the local server: tests/integration/test_clickhouse_cluster.py."""

from __future__ import annotations

import re

import pytest

from printfleet.cli import main
from schemas import SchemaRegistry
from sinks import ddl, migrations
from sinks.cluster import DEDUP_WINDOW_SECONDS, Cluster
from sinks.layout import layout
from sinks.rollups import ROLLUPS

CLUSTER = Cluster("main", "fleet")
REPLICA = "'/clickhouse/tables/{shard}/{database}/{table}', '{replica}'"


@pytest.fixture(scope="module")
def registry() -> SchemaRegistry:
    return SchemaRegistry.load_default()


@pytest.fixture(scope="module")
def statements(registry: SchemaRegistry) -> list[str]:
    return [*migrations.migrations_table(CLUSTER),
            *(s for m in migrations.plan(registry, CLUSTER) for s in m.statements)]


def test_every_statement_runs_on_the_cluster(statements: list[str]) -> None:
    for sql in statements:
        first = sql.splitlines()[0]
        assert re.match(r"^(CREATE TABLE IF NOT EXISTS|CREATE MATERIALIZED VIEW IF NOT EXISTS|ALTER TABLE) "
                        r"`\w+` ON CLUSTER `main`( |$)", first), first


def test_every_table_is_replicated_with_the_usual_macros(statements: list[str]) -> None:
    engines = [line for sql in statements for line in sql.splitlines() if line.startswith("ENGINE = ")]
    stored = [e for e in engines if "Distributed" not in e]
    assert stored and all(e.startswith("ENGINE = Replicated") and REPLICA in e for e in stored)
    assert "ENGINE = ReplicatedMergeTree(" + REPLICA + ")" in stored
    assert "ENGINE = ReplicatedAggregatingMergeTree(" + REPLICA + ")" in stored
    # An engine's own arguments come after the replica's.
    assert "ENGINE = ReplicatedReplacingMergeTree(" + REPLICA + ", applied_at)" in stored
    assert not any("non_replicated_deduplication_window" in sql for sql in statements)


def test_engines_map_to_their_replicated_kind() -> None:
    assert CLUSTER.engine("SummingMergeTree") == f"ReplicatedSummingMergeTree({REPLICA})"
    assert CLUSTER.engine("ReplacingMergeTree(version)") == f"ReplicatedReplacingMergeTree({REPLICA}, version)"


def test_each_table_is_local_with_a_distributed_table_of_its_name(registry: SchemaRegistry) -> None:
    heartbeat = layout(registry.reader("heartbeat"))
    local, distributed = ddl.create_table(heartbeat, "heartbeat", CLUSTER)
    assert local.startswith("CREATE TABLE IF NOT EXISTS `heartbeat_local` ON CLUSTER `main`\n(\n    `record_id` String")
    assert "TTL toDateTime(event_time) + INTERVAL 90 DAY" in local.splitlines()
    assert (f"SETTINGS replicated_deduplication_window = {ddl.DEDUP_WINDOW}, "
            f"replicated_deduplication_window_seconds = {DEDUP_WINDOW_SECONDS}") in local.splitlines()
    assert distributed == (
        "CREATE TABLE IF NOT EXISTS `heartbeat` ON CLUSTER `main` AS `heartbeat_local`\n"
        "ENGINE = Distributed('main', 'fleet', 'heartbeat_local', cityHash64(site_id, device_id))"
    )
    # Child tables shard like their parent: a job and its layers live on one shard.
    _, layers = ddl.create_table(layout(registry.reader("job")), "job_layers", CLUSTER)
    assert layers.endswith("Distributed('main', 'fleet', 'job_layers_local', cityHash64(site_id, device_id))")


def test_every_distributed_table_reads_a_local_table_made_before_it(statements: list[str]) -> None:
    made: list[str] = []
    for sql in statements:
        name = re.match(r"^CREATE (?:TABLE|MATERIALIZED VIEW) IF NOT EXISTS `(\w+)`", sql)
        if name is None:
            continue
        if "ENGINE = Distributed" in sql:
            assert made[-1] == name.group(1) + "_local", sql
        made.append(name.group(1))
    assert made.count("schema_migrations_local") == 1 and "schema_migrations" in made


def test_views_read_and_write_the_local_tables_of_their_node() -> None:
    for rollup in ROLLUPS:
        table, distributed, view = rollup.statements(CLUSTER)
        assert table.startswith(f"CREATE TABLE IF NOT EXISTS `{rollup.name}_local` ON CLUSTER `main`")
        assert f"AS `{rollup.name}_local`" in distributed
        assert view.startswith(f"CREATE MATERIALIZED VIEW IF NOT EXISTS `{rollup.name}_mv` ON CLUSTER `main` "
                               f"TO `{rollup.name}_local` AS")
        assert f"FROM `{rollup.source}_local`" in view.splitlines()


def test_a_new_version_alters_the_local_then_the_distributed_table() -> None:
    from test_sink_layout import _schema

    v1 = _schema("heartbeat", 1, [{"name": "layers_done", "type": "int"}])
    v2 = _schema("heartbeat", 2, [{"name": "layers_done", "type": "long"},
                                  {"name": "cooling_s", "type": "float", "default": 0.0}])
    assert ddl.upgrade_kind(layout(v1), layout(v2), CLUSTER) == [
        "ALTER TABLE `heartbeat_local` ON CLUSTER `main` MODIFY COLUMN `layers_done` Int64",
        "ALTER TABLE `heartbeat_local` ON CLUSTER `main` ADD COLUMN IF NOT EXISTS `cooling_s` Float32 AFTER `layers_done`",
        "ALTER TABLE `heartbeat` ON CLUSTER `main` MODIFY COLUMN `layers_done` Int64",
        "ALTER TABLE `heartbeat` ON CLUSTER `main` ADD COLUMN IF NOT EXISTS `cooling_s` Float32 AFTER `layers_done`",
    ]


def test_one_server_ddl_is_unchanged(registry: SchemaRegistry) -> None:
    """No ON CLUSTER, no _local, no Distributed: recorded checksums of existing databases
    still match, so nothing is reported as changed."""
    text = migrations.script(migrations.plan(registry))
    for word in ("ON CLUSTER", "_local", "Distributed", "Replicated"):
        assert word not in text
    assert migrations.plan(registry)[-1].statements == ROLLUPS[-1].statements()
    assert len(ROLLUPS[0].statements()) == 2


def test_print_ddl_for_a_cluster_needs_no_server(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PRINTFLEET_CLICKHOUSE_URL", "http://127.0.0.1:1")  # nothing listens there
    assert main(["sink", "--print-ddl", "--cluster", "main", "--clickhouse-database", "fleet"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("-- schema_migrations: which migrations are applied\n"
                          "CREATE TABLE IF NOT EXISTS `schema_migrations_local` ON CLUSTER `main`")
    assert "ENGINE = Distributed('main', 'fleet', 'heartbeat_local', cityHash64(site_id, device_id));" in out
    assert out.count("CREATE MATERIALIZED VIEW") == len(ROLLUPS)


def test_print_ddl_refuses_a_bad_cluster_name(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sink", "--print-ddl", "--cluster", "a b"]) == 2
    assert capsys.readouterr().err == "printfleet sink: ClickHouse cluster 'a b': letters, digits, '_', '.' and '-'\n"
