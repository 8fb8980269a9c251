"""How the schema is laid out on a ClickHouse cluster (`--cluster NAME`).

`sinks.ddl`, `sinks.rollups` and `sinks.migrations` ask a `Cluster` (or None: one server,
the DDL as it always was) how to spell each statement:

- every statement gets `ON CLUSTER NAME`, so it runs on every node of the cluster;
- each table is stored as `<table>_local` on every node, a Replicated engine
  (`ReplicatedMergeTree`, `ReplicatedAggregatingMergeTree`, ...) at
  `/clickhouse/tables/{shard}/{database}/{table}` with replica `{replica}` (the servers'
  macros), deduplicating retried inserts by `replicated_deduplication_window`;
- a Distributed table over it takes the table's own name (`heartbeat` over
  `heartbeat_local`), sharded by `cityHash64(site_id, device_id)`: every SQL that reads
  the tables (named queries, dashboards, users' own) stays unchanged, and one printer's
  records, with their child rows and rollups, live on one shard;
- the sink inserts into the Distributed tables with `distributed_foreground_insert`
  (sinks/client.py): the insert is acknowledged only once each shard stored its rows,
  and a retried batch is cut into the same rows per shard with the same token, so each
  shard drops its repeat (docs/sink.md has the reasoning and what was tested);
- materialized views read and write the `_local` tables of their node, so the rows a
  shard stores are rolled up on that shard.

Pure text; nothing here talks to a server.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from sinks.connection import ClickHouseSettings
from sinks.ddl import quote

LOCAL_SUFFIX: Final = "_local"
SHARDING_KEY: Final = "cityHash64(site_id, device_id)"
REPLICA_PATH: Final = "/clickhouse/tables/{shard}/{database}/{table}"
REPLICA_NAME: Final = "{replica}"
# Tokens of retried inserts, per table: as many blocks as on one server (sinks.ddl), kept
# for 7 days. ClickHouse's default keeps them one hour (replicated_deduplication_window_seconds
# = 3600 on 26.9), after which a batch retried by a sink that was down longer would be
# stored twice; the count bounds what Keeper holds.
DEDUP_WINDOW_SECONDS: Final = 7 * 24 * 3600


def _literal(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


@dataclass(frozen=True, slots=True)
class Cluster:
    """The cluster NAME (from `remote_servers`) and the database the tables live in."""

    name: str
    database: str

    def on(self) -> str:
        """The ` ON CLUSTER ...` clause, with its leading space."""
        return f" ON CLUSTER {quote(self.name)}"

    def local(self, table: str) -> str:
        """The name of the replicated table on each node that stores `table`'s rows."""
        return table + LOCAL_SUFFIX

    def engine(self, engine: str) -> str:
        """`MergeTree` -> `ReplicatedMergeTree('/clickhouse/tables/...', '{replica}')`,
        likewise for the Aggregating, Replacing and Summing kinds. An engine with
        arguments (ReplacingMergeTree(version)) keeps them after the two."""
        name, _, args = engine.partition("(")
        args = args.rstrip(")").strip()
        replica = f"{_literal(REPLICA_PATH)}, {_literal(REPLICA_NAME)}"
        return f"Replicated{name}({replica}{', ' + args if args else ''})"

    def dedup_settings(self, window: int) -> str:
        return (f"replicated_deduplication_window = {window}, "
                f"replicated_deduplication_window_seconds = {DEDUP_WINDOW_SECONDS}")

    def distributed(self, table: str, sharding_key: str = SHARDING_KEY) -> str:
        """CREATE the Distributed table `table` over `table`_local on every node."""
        return (
            f"CREATE TABLE IF NOT EXISTS {quote(table)}{self.on()} AS {quote(self.local(table))}\n"
            f"ENGINE = Distributed({_literal(self.name)}, {_literal(self.database)}, "
            f"{_literal(self.local(table))}, {sharding_key})"
        )


def cluster_of(settings: ClickHouseSettings) -> Cluster | None:
    """The cluster `settings` name (None: one server)."""
    return Cluster(settings.cluster, settings.database) if settings.cluster else None
