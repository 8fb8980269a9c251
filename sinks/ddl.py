"""CREATE and ALTER statements for the tables of `sinks.layout`, written to be read.

`printfleet sink --print-ddl` prints them (with the rollups of `sinks.rollups`) in the
order the migrations apply them. Every statement is idempotent (IF NOT EXISTS), so a
migration interrupted half way is simply run again.

Every table is a MergeTree ordered by (site_id, device_id, event_time), the order of the
common queries (one site, one printer, a time range), partitioned by month, with
`non_replicated_deduplication_window` set: without it a non-replicated MergeTree ignores
`insert_deduplication_token` and a retried insert would be stored twice (verified on
ClickHouse 26.9: window 0 keeps both copies, window > 0 keeps one).

With a `sinks.cluster.Cluster` every statement runs ON CLUSTER, each table is a
Replicated `<table>_local` with a Distributed `<table>` over it, and an ALTER changes both.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Final

from sinks.layout import Column, KindLayout

if TYPE_CHECKING:
    from sinks.cluster import Cluster

# Blocks per table whose tokens ClickHouse remembers. A retried batch is at most a few
# hundred blocks behind the newest one (one pending batch per partition); 10,000 is the
# default ClickHouse uses for replicated tables.
DEDUP_WINDOW: Final = 10_000
ORDER_BY: Final = "(site_id, device_id, event_time)"
PARTITION_BY: Final = "toYYYYMM(event_time)"
# Raw rows expire; rollups keep the history. Expired rows are dropped already at insert
# (a heartbeat older than this never lands), and at merges afterwards.
RAW_TTL_DAYS: Final = {"heartbeat": 90}


def quote(name: str) -> str:
    """An identifier in backquotes (names come from schemas, never from users)."""
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


def _comment(text: str) -> str:
    return "'" + " ".join(text.split()).replace("\\", "\\\\").replace("'", "\\'") + "'"


def _column_sql(column: Column) -> str:
    sql = f"{quote(column.name)} {column.type}"
    return f"{sql} COMMENT {_comment(column.doc)}" if column.doc else sql


def create_table(layout: KindLayout, table: str, cluster: Cluster | None = None) -> list[str]:
    """CREATE TABLE IF NOT EXISTS for one table of a layout (main or child); on a cluster
    its replicated `_local` table, then the Distributed table over it."""
    columns = [_column_sql(c) for c in layout.columns_of(table)]
    if table == layout.table:
        columns.append("`inserted_at` DateTime('UTC') DEFAULT now() COMMENT 'when the sink stored the row'")
    doc = layout.doc if table == layout.table else next(c.doc for c in layout.children if c.name == table)
    name = cluster.local(table) if cluster else table
    lines = [
        f"CREATE TABLE IF NOT EXISTS {quote(name)}{cluster.on() if cluster else ''}",
        "(",
        ",\n".join("    " + c for c in columns),
        ")",
        f"ENGINE = {cluster.engine('MergeTree') if cluster else 'MergeTree'}",
        f"PARTITION BY {PARTITION_BY}",
        f"ORDER BY {ORDER_BY}",
    ]
    ttl = RAW_TTL_DAYS.get(table)
    if ttl is not None:
        lines.append(f"TTL toDateTime(event_time) + INTERVAL {ttl} DAY")
    lines.append(f"SETTINGS {dedup_settings(cluster)}")
    if doc:
        lines.append(f"COMMENT {_comment(doc)}")
    statements = ["\n".join(lines)]
    if cluster:
        statements.append(cluster.distributed(table))
    return statements


def dedup_settings(cluster: Cluster | None) -> str:
    """The table settings that make ClickHouse remember insert tokens."""
    if cluster:
        return cluster.dedup_settings(DEDUP_WINDOW)
    return f"non_replicated_deduplication_window = {DEDUP_WINDOW}"


def create_kind(layout: KindLayout, cluster: Cluster | None = None) -> list[str]:
    """The tables of a kind's first version."""
    return [sql for table in layout.tables for sql in create_table(layout, table, cluster)]


def upgrade_kind(old: KindLayout, new: KindLayout, cluster: Cluster | None = None) -> list[str]:
    """What turns the tables of `old` into those of `new`: new tables are created, new
    columns added after their predecessor, changed types (Avro promotions, a field made
    optional) modified. Columns a version dropped stay: old rows keep their values, new
    rows get the column's default. On a cluster each ALTER runs on the `_local` table
    and then on the Distributed one, which must list the same columns."""
    out: list[str] = []
    for table in new.tables:
        if table not in old.tables:
            out.extend(create_table(new, table, cluster))
            continue
        before = {c.name: c for c in old.columns_of(table)}
        clauses = list(_alter(before, new.columns_of(table)))
        if cluster is None:
            out.extend(f"ALTER TABLE {quote(table)} {clause}" for clause in clauses)
            continue
        for target in (cluster.local(table), table):
            out.extend(f"ALTER TABLE {quote(target)}{cluster.on()} {clause}" for clause in clauses)
    return out


def _alter(before: dict[str, Column], after: Sequence[Column]) -> Iterator[str]:
    """The clauses of the ALTER TABLE statements that turn `before` into `after`."""
    previous = None
    for column in after:
        old = before.get(column.name)
        if old is None:
            where = f" AFTER {quote(previous)}" if previous else " FIRST"
            yield f"ADD COLUMN IF NOT EXISTS {_column_sql(column)}{where}"
        elif old.type != column.type:
            yield f"MODIFY COLUMN {quote(column.name)} {column.type}"
        previous = column.name
