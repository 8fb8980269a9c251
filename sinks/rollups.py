"""Hourly and daily rollups: materialised views that aggregate rows as they are inserted.

Why they stay correct when a batch is retried: a retried insert carries the same
`insert_deduplication_token`, and the sink sets `deduplicate_blocks_in_dependent_materialized_views`,
so ClickHouse drops the repeated block from the source table *and* from every view's
target (each target is a MergeTree with `non_replicated_deduplication_window`, or on a
cluster a Replicated one with `replicated_deduplication_window`). Every aggregate is a
`SimpleAggregateFunction` (sum, min, max), so merging parts and reading with `GROUP BY`
give the same numbers in any order. Read them with GROUP BY (or FINAL): until a merge,
one key can have several partial rows.

Each rollup is one migration (`rollup_<name>`): the target table, then the view. On a
cluster (`sinks.cluster`) the target is a replicated `<name>_local` with a Distributed
`<name>` over it, and the view reads and writes the `_local` tables of its node: a
shard's rows are rolled up on that shard, and the Distributed table reads them all.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from sinks.cluster import Cluster
from sinks.ddl import dedup_settings, quote


@dataclass(frozen=True, slots=True)
class Rollup:
    name: str
    description: str
    columns: str  # the column list, one per line
    engine: str
    partition_by: str
    order_by: str
    select: str  # SELECT ... up to FROM
    source: str  # the table it aggregates
    group_by: str

    def statements(self, cluster: Cluster | None = None) -> tuple[str, ...]:
        """The target table (on a cluster: local and Distributed), then the view."""
        target = cluster.local(self.name) if cluster else self.name
        source = cluster.local(self.source) if cluster else self.source
        on = cluster.on() if cluster else ""
        table = "\n".join([
            f"CREATE TABLE IF NOT EXISTS {quote(target)}{on}",
            "(",
            self.columns,
            ")",
            f"ENGINE = {cluster.engine(self.engine) if cluster else self.engine}",
            f"PARTITION BY {self.partition_by}",
            f"ORDER BY {self.order_by}",
            f"SETTINGS {dedup_settings(cluster)}",
        ])
        view = "\n".join([
            f"CREATE MATERIALIZED VIEW IF NOT EXISTS {quote(self.name + '_mv')}{on} TO {quote(target)} AS",
            self.select,
            f"FROM {quote(source)}",
            self.group_by,
        ])
        if cluster is None:
            return (table, view)
        return (table, cluster.distributed(self.name), view)


ROLLUPS: Final[tuple[Rollup, ...]] = (
    Rollup(
        "heartbeat_hourly",
        "heartbeats per printer, hour and status (time in status is heartbeats x the cadence)",
        columns="""    `site_id` LowCardinality(String),
    `device_id` LowCardinality(String),
    `hour` DateTime('UTC'),
    `status` LowCardinality(String),
    `heartbeats` SimpleAggregateFunction(sum, UInt64),
    `first_at` SimpleAggregateFunction(min, DateTime64(3, 'UTC')),
    `last_at` SimpleAggregateFunction(max, DateTime64(3, 'UTC')),
    `max_layers_done` SimpleAggregateFunction(max, Int32)""",
        engine="AggregatingMergeTree",
        partition_by="toYYYYMM(hour)",
        order_by="(site_id, device_id, hour, status)",
        select="""SELECT
    site_id, device_id, toStartOfHour(event_time) AS hour, status,
    count() AS heartbeats, min(event_time) AS first_at, max(event_time) AS last_at,
    max(layers_done) AS max_layers_done""",
        source="heartbeat",
        group_by="GROUP BY site_id, device_id, hour, status",
    ),
    Rollup(
        "job_daily",
        "jobs per printer, day, print mode, outcome and material: counts, layers, material, print time",
        columns="""    `site_id` LowCardinality(String),
    `device_id` LowCardinality(String),
    `day` Date,
    `print_mode` LowCardinality(String),
    `completion_status` LowCardinality(String),
    `material_type` LowCardinality(String),
    `jobs` SimpleAggregateFunction(sum, UInt64),
    `layers` SimpleAggregateFunction(sum, Int64),
    `material_in_parts_kg` SimpleAggregateFunction(sum, Float64),
    `recyclable_material_kg` SimpleAggregateFunction(sum, Float64),
    `print_s` SimpleAggregateFunction(sum, Float64)""",
        engine="AggregatingMergeTree",
        partition_by="toYYYYMM(day)",
        order_by="(site_id, device_id, day, print_mode, completion_status, material_type)",
        select="""SELECT
    site_id, device_id, toDate(event_time) AS day, print_mode, completion_status,
    ifNull(material_type, '') AS material_type,
    count() AS jobs,
    sum(toInt64(ifNull(layer_count, 0))) AS layers,
    sum(ifNull(material_in_parts_kg, 0)) AS material_in_parts_kg,
    sum(ifNull(recyclable_material_kg, 0)) AS recyclable_material_kg,
    sum(ifNull(dateDiff('millisecond', started_at, completed_at), 0) / 1000) AS print_s""",
        source="job",
        group_by="GROUP BY site_id, device_id, day, print_mode, completion_status, material_type",
    ),
    Rollup(
        "system_event_daily",
        "events per printer, day, code, severity and subsystem",
        columns="""    `site_id` LowCardinality(String),
    `device_id` LowCardinality(String),
    `day` Date,
    `code` LowCardinality(String),
    `severity` LowCardinality(String),
    `subsystem` LowCardinality(String),
    `events` SimpleAggregateFunction(sum, UInt64),
    `first_at` SimpleAggregateFunction(min, DateTime64(3, 'UTC')),
    `last_at` SimpleAggregateFunction(max, DateTime64(3, 'UTC'))""",
        engine="AggregatingMergeTree",
        partition_by="toYYYYMM(day)",
        order_by="(site_id, device_id, day, code, severity, subsystem)",
        select="""SELECT
    site_id, device_id, toDate(event_time) AS day, code, severity, subsystem,
    count() AS events, min(event_time) AS first_at, max(event_time) AS last_at""",
        source="system_event",
        group_by="GROUP BY site_id, device_id, day, code, severity, subsystem",
    ),
)
