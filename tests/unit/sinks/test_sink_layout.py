"""Table layouts and DDL derived from the Avro schemas."""

from __future__ import annotations

import json
from typing import Any

import pytest

from schemas import SchemaRegistry
from schemas.loader import build_version
from sinks import ddl
from sinks.errors import SchemaMappingError
from sinks.layout import layout
from sinks.migrations import plan, script


@pytest.fixture(scope="module")
def registry() -> SchemaRegistry:
    return SchemaRegistry.load_default()


def _schema(kind: str, version: int, fields: list[dict[str, Any]]) -> Any:
    name = "".join(p.capitalize() for p in kind.split("_"))
    raw = {
        "type": "record", "name": name, "namespace": "io.printfleet",
        "fields": [
            {"name": "record_id", "type": "string"},
            {"name": "schema_version", "type": "int", "default": version},
            {"name": "site_id", "type": "string"},
            {"name": "device_id", "type": "string"},
            {"name": "event_time", "type": {"type": "long", "logicalType": "timestamp-millis"}},
            *fields,
        ],
    }
    return build_version(kind, version, json.loads(json.dumps(raw)), f"{kind}/v{version}.avsc")


def test_every_kind_maps_and_keeps_the_envelope(registry: SchemaRegistry) -> None:
    for kind in registry.kinds:
        for schema in registry.versions(kind):
            lay = layout(schema)
            names = [c.name for c in lay.columns]
            assert names[:5] == ["record_id", "schema_version", "site_id", "device_id", "event_time"]
            assert len(set(names)) == len(names)


def test_job_children_join_by_job_id(registry: SchemaRegistry) -> None:
    lay = layout(registry.reader("job"))
    assert set(lay.tables) == {"job", "job_parts", "job_layers", "job_sub_jobs", "job_warnings"}
    parts = lay.columns_of("job_parts")
    assert [c.name for c in parts[:6]] == ["record_id", "site_id", "device_id", "event_time", "job_id", "idx"]
    types = {c.name: c.type for c in parts}
    assert types["bounding_box_x_mm"] == "Nullable(Float32)"  # a named record reused by name
    assert types["completion_status"] == "LowCardinality(String)"
    assert types["print_started_at"] == "Nullable(DateTime64(3, 'UTC'))"


def test_types_follow_the_rules(registry: SchemaRegistry) -> None:
    hb = {c.name: c for c in layout(registry.reader("heartbeat")).columns}
    assert hb["site_id"].type == "LowCardinality(String)"
    assert hb["status"].type == "LowCardinality(String)"
    assert hb["event_time"].type == "DateTime64(3, 'UTC')" and hb["event_time"].checked == "datetime64"
    identity = {c.name: c for c in layout(registry.reader("device_identity")).columns}
    assert identity["printer_size_x_mm"].path == ("printer_size", "x_mm")
    printheads = {c.name: c.type for c in layout(registry.reader("printhead_system")).children[0].columns}
    assert printheads["warranty_expiry_date"] == "Nullable(Date32)"
    events = {c.name: c.type for c in layout(registry.reader("system_event")).columns}
    assert events["debug_details"] == "Map(String, String)"
    bu = layout(registry.reader("build_unit"))
    assert bu.children[0].name == "build_unit_printers"
    assert bu.children[0].path == ("installed_build_unit", "printers")
    assert {c.name: c.type for c in bu.columns}["installed_build_unit_material_type"] == "LowCardinality(Nullable(String))"


def test_create_statement_reads_well(registry: SchemaRegistry) -> None:
    [sql] = ddl.create_table(layout(registry.reader("heartbeat")), "heartbeat")
    assert sql.startswith("CREATE TABLE IF NOT EXISTS `heartbeat`\n(\n    `record_id` String")
    for line in ("ENGINE = MergeTree", "PARTITION BY toYYYYMM(event_time)",
                 "ORDER BY (site_id, device_id, event_time)", "TTL toDateTime(event_time) + INTERVAL 90 DAY",
                 f"SETTINGS non_replicated_deduplication_window = {ddl.DEDUP_WINDOW}"):
        assert line in sql.splitlines()
    [job_sql] = ddl.create_table(layout(registry.reader("job")), "job_layers")
    assert "TTL" not in job_sql and "`job_id` String" in job_sql


def test_a_new_version_becomes_an_alter() -> None:
    v1 = _schema("heartbeat", 1, [{"name": "layers_done", "type": "int"}])
    v2 = _schema("heartbeat", 2, [
        {"name": "layers_done", "type": "long"},
        {"name": "cooling_s", "type": "float", "default": 0.0, "doc": "new"},
        {"name": "nozzles", "type": {"type": "array", "items": {
            "type": "record", "name": "Nozzle", "fields": [{"name": "ok", "type": "boolean"}]}}, "default": []},
    ])
    statements = ddl.upgrade_kind(layout(v1), layout(v2))
    assert any(s.startswith("CREATE TABLE IF NOT EXISTS `heartbeat_nozzles`") for s in statements)
    assert "ALTER TABLE `heartbeat` MODIFY COLUMN `layers_done` Int64" in statements
    assert "ALTER TABLE `heartbeat` ADD COLUMN IF NOT EXISTS `cooling_s` Float32 COMMENT 'new' AFTER `layers_done`" in statements


def test_unmapped_shapes_are_refused() -> None:
    nested = _schema("heartbeat", 1, [{"name": "a", "type": {"type": "array", "items": {
        "type": "record", "name": "A", "fields": [{"name": "b", "type": {"type": "array", "items": {
            "type": "record", "name": "B", "fields": [{"name": "x", "type": "int"}]}}}]}}}])
    with pytest.raises(SchemaMappingError, match="arrays of records inside"):
        layout(nested)
    union = _schema("heartbeat", 1, [{"name": "u", "type": ["int", "string"]}])
    with pytest.raises(SchemaMappingError, match="only unions of null"):
        layout(union)


def test_plan_has_one_migration_per_version_then_the_rollups(registry: SchemaRegistry) -> None:
    migrations = plan(registry)
    ids = [m.id for m in migrations]
    expected = [f"{k}_v{s.version}" for k in sorted(registry.kinds) for s in registry.versions(k)]
    assert ids[: len(expected)] == expected
    assert all(i.startswith("rollup_") for i in ids[len(expected):])
    assert len(set(ids)) == len(ids)
    assert plan(registry)[0].checksum == migrations[0].checksum  # deterministic
    text = script(migrations)
    assert "-- heartbeat_v2: heartbeat v1 -> v2" in text
    assert "ADD COLUMN IF NOT EXISTS `cooling_remaining_s`" in text
