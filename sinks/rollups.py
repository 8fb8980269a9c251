"""Hourly and daily rollups: materialised views that aggregate rows as they are inserted.

Why they stay correct when a batch is retried: a retried insert carries the same
`insert_deduplication_token`, and the sink sets `deduplicate_blocks_in_dependent_materialized_views`,
so ClickHouse drops the repeated block from the source table *and* from every view's
target (each target is a MergeTree with `non_replicated_deduplication_window`). Every
aggregate is a `SimpleAggregateFunction` (sum, min, max), so merging parts and reading
with `GROUP BY` give the same numbers in any order. Read them with GROUP BY (or FINAL):
until a merge, one key can have several partial rows.

Each rollup is one migration (`rollup_<name>`): the target table, then the view.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from sinks.ddl import DEDUP_WINDOW


@dataclass(frozen=True, slots=True)
class Rollup:
    name: str
    description: str
    table: str
    view: str

    @property
    def statements(self) -> tuple[str, str]:
        return (self.table, self.view)


_SETTINGS: Final = f"SETTINGS non_replicated_deduplication_window = {DEDUP_WINDOW}"

ROLLUPS: Final[tuple[Rollup, ...]] = (
    Rollup(
        "heartbeat_hourly",
        "heartbeats per printer, hour and status (time in status is heartbeats x the cadence)",
        f"""CREATE TABLE IF NOT EXISTS `heartbeat_hourly`
(
    `site_id` LowCardinality(String),
    `device_id` LowCardinality(String),
    `hour` DateTime('UTC'),
    `status` LowCardinality(String),
    `heartbeats` SimpleAggregateFunction(sum, UInt64),
    `first_at` SimpleAggregateFunction(min, DateTime64(3, 'UTC')),
    `last_at` SimpleAggregateFunction(max, DateTime64(3, 'UTC')),
    `max_layers_done` SimpleAggregateFunction(max, Int32)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(hour)
ORDER BY (site_id, device_id, hour, status)
{_SETTINGS}""",
        """CREATE MATERIALIZED VIEW IF NOT EXISTS `heartbeat_hourly_mv` TO `heartbeat_hourly` AS
SELECT
    site_id, device_id, toStartOfHour(event_time) AS hour, status,
    count() AS heartbeats, min(event_time) AS first_at, max(event_time) AS last_at,
    max(layers_done) AS max_layers_done
FROM `heartbeat`
GROUP BY site_id, device_id, hour, status""",
    ),
    Rollup(
        "job_daily",
        "jobs per printer, day, print mode, outcome and material: counts, layers, material, print time",
        f"""CREATE TABLE IF NOT EXISTS `job_daily`
(
    `site_id` LowCardinality(String),
    `device_id` LowCardinality(String),
    `day` Date,
    `print_mode` LowCardinality(String),
    `completion_status` LowCardinality(String),
    `material_type` LowCardinality(String),
    `jobs` SimpleAggregateFunction(sum, UInt64),
    `layers` SimpleAggregateFunction(sum, Int64),
    `material_in_parts_kg` SimpleAggregateFunction(sum, Float64),
    `recyclable_material_kg` SimpleAggregateFunction(sum, Float64),
    `print_s` SimpleAggregateFunction(sum, Float64)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (site_id, device_id, day, print_mode, completion_status, material_type)
{_SETTINGS}""",
        """CREATE MATERIALIZED VIEW IF NOT EXISTS `job_daily_mv` TO `job_daily` AS
SELECT
    site_id, device_id, toDate(event_time) AS day, print_mode, completion_status,
    ifNull(material_type, '') AS material_type,
    count() AS jobs,
    sum(toInt64(ifNull(layer_count, 0))) AS layers,
    sum(ifNull(material_in_parts_kg, 0)) AS material_in_parts_kg,
    sum(ifNull(recyclable_material_kg, 0)) AS recyclable_material_kg,
    sum(ifNull(dateDiff('millisecond', started_at, completed_at), 0) / 1000) AS print_s
FROM `job`
GROUP BY site_id, device_id, day, print_mode, completion_status, material_type""",
    ),
    Rollup(
        "system_event_daily",
        "events per printer, day, code, severity and subsystem",
        f"""CREATE TABLE IF NOT EXISTS `system_event_daily`
(
    `site_id` LowCardinality(String),
    `device_id` LowCardinality(String),
    `day` Date,
    `code` LowCardinality(String),
    `severity` LowCardinality(String),
    `subsystem` LowCardinality(String),
    `events` SimpleAggregateFunction(sum, UInt64),
    `first_at` SimpleAggregateFunction(min, DateTime64(3, 'UTC')),
    `last_at` SimpleAggregateFunction(max, DateTime64(3, 'UTC'))
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (site_id, device_id, day, code, severity, subsystem)
{_SETTINGS}""",
        """CREATE MATERIALIZED VIEW IF NOT EXISTS `system_event_daily_mv` TO `system_event_daily` AS
SELECT
    site_id, device_id, toDate(event_time) AS day, code, severity, subsystem,
    count() AS events, min(event_time) AS first_at, max(event_time) AS last_at
FROM `system_event`
GROUP BY site_id, device_id, day, code, severity, subsystem""",
    ),
)
