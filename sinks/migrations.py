"""Versioned, idempotent schema migrations, recorded in the table `schema_migrations`.

Called by the sink's `start()` (and `printfleet sink --migrate-only`) before it consumes.
The plan is derived, not hand-written: for every kind, migration `<kind>_v1` creates its
tables from schema version 1 and `<kind>_v<N>` alters them to version N (`sinks.ddl`);
then one migration per rollup (`sinks.rollups`). A new `.avsc` version therefore becomes
a new pending migration with no edit here.

Applying: every migration not yet recorded runs, in plan order, statement by statement;
its row is written after its last statement. Every statement is idempotent, so a run cut
off half way (or two sinks starting at once) repeats statements harmlessly. A recorded
migration whose statements have since changed (its checksum differs) is not re-run: the
difference is logged, since the tables were built by the old text.

On a cluster (`sinks.cluster.Cluster`) every statement runs ON CLUSTER, and
`schema_migrations` is a replicated `schema_migrations_local` on every node with a
Distributed `schema_migrations` over it: whichever node a sink connects to, it reads
what any sink recorded. A plan for one server and one for a cluster are different
plans: run one or the other against a database, never both.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from typing import Final, Protocol

from schemas import SchemaRegistry
from sinks import ddl
from sinks.cluster import Cluster
from sinks.errors import ClickHouseAccessDenied, ClickHouseError, MigrationError
from sinks.layout import layout
from sinks.rollups import ROLLUPS

log = logging.getLogger(__name__)

MIGRATIONS_TABLE: Final = "schema_migrations"

_MIGRATIONS_COLUMNS: Final = """(
    `id` String,
    `description` String,
    `checksum` String,
    `statements` UInt32,
    `applied_at` DateTime64(3, 'UTC') DEFAULT now64(3)
)"""


def migrations_table(cluster: Cluster | None = None) -> list[str]:
    """CREATE the table that records applied migrations (on a cluster: local, Distributed)."""
    if cluster is None:
        return [f"""CREATE TABLE IF NOT EXISTS `{MIGRATIONS_TABLE}`
{_MIGRATIONS_COLUMNS}
ENGINE = ReplacingMergeTree(applied_at)
ORDER BY id"""]
    local = f"""CREATE TABLE IF NOT EXISTS {ddl.quote(cluster.local(MIGRATIONS_TABLE))}{cluster.on()}
{_MIGRATIONS_COLUMNS}
ENGINE = {cluster.engine('ReplacingMergeTree(applied_at)')}
ORDER BY id"""
    return [local, cluster.distributed(MIGRATIONS_TABLE, sharding_key="cityHash64(id)")]


@dataclass(frozen=True, slots=True)
class Migration:
    id: str
    description: str
    statements: tuple[str, ...]

    @property
    def checksum(self) -> str:
        return hashlib.sha256("\n;\n".join(self.statements).encode()).hexdigest()[:16]


class Executor(Protocol):
    """What migrations need of a ClickHouse client (`sinks.client.ClickHouseClient`)."""

    async def command(self, sql: str) -> None: ...

    async def rows(self, sql: str) -> list[tuple[object, ...]]: ...

    async def insert_rows(self, table: str, columns: list[str], rows: list[list[object]]) -> None: ...


def plan(registry: SchemaRegistry, cluster: Cluster | None = None) -> list[Migration]:
    """Every migration, in the order they apply, for one server or for `cluster`.
    Raises `SchemaMappingError`."""
    out: list[Migration] = []
    for kind in sorted(registry.kinds):
        previous = None
        for schema in registry.versions(kind):
            current = layout(schema)
            if previous is None:
                statements = ddl.create_kind(current, cluster)
                what = f"tables of {kind} v{schema.version}: {', '.join(current.tables)}"
            else:
                statements = ddl.upgrade_kind(previous, current, cluster)
                what = f"{kind} v{previous.version} -> v{schema.version}"
            out.append(Migration(f"{kind}_v{schema.version}", what, tuple(statements)))
            previous = current
    out.extend(Migration(f"rollup_{r.name}", r.description, r.statements(cluster)) for r in ROLLUPS)
    return out


async def applied(client: Executor, cluster: Cluster | None = None) -> dict[str, str]:
    """Recorded migrations: id -> checksum."""
    for statement in migrations_table(cluster):
        await client.command(statement)
    rows = await client.rows(f"SELECT id, argMax(checksum, applied_at) FROM `{MIGRATIONS_TABLE}` GROUP BY id")
    return {str(r[0]): str(r[1]) for r in rows}


async def migrate(client: Executor, migrations: list[Migration], cluster: Cluster | None = None) -> list[str]:
    """Apply what is pending (`plan(registry, cluster)`); returns the ids applied now.
    Raises `MigrationError` naming the migration and statement; `ClickHouseUnavailable`
    passes through so the caller can wait for the server, `ClickHouseAccessDenied`
    so the user's missing right is said first."""
    done = await applied(client, cluster)
    now: list[str] = []
    for migration in migrations:
        recorded = done.get(migration.id)
        if recorded is not None:
            if recorded != migration.checksum:
                log.warning(
                    "event=migration_changed id=%s recorded=%s now=%s (not re-run)",
                    migration.id, recorded, migration.checksum,
                )
            continue
        for number, statement in enumerate(migration.statements, 1):
            try:
                await client.command(statement)
            except ClickHouseError as exc:
                if exc.retriable or isinstance(exc, ClickHouseAccessDenied):
                    raise
                raise MigrationError(f"migration {migration.id} statement {number}: {exc}") from exc
        await client.insert_rows(
            MIGRATIONS_TABLE, ["id", "description", "checksum", "statements"],
            [[migration.id, migration.description, migration.checksum, len(migration.statements)]],
        )
        log.info("event=migration_applied id=%s statements=%d", migration.id, len(migration.statements))
        now.append(migration.id)
    return now


def script(migrations: list[Migration], cluster: Cluster | None = None) -> str:
    """All statements as one SQL script with a comment per migration (`--print-ddl`)."""
    parts = [f"-- {MIGRATIONS_TABLE}: which migrations are applied"]
    parts.extend(statement + ";\n" for statement in migrations_table(cluster))
    for m in migrations:
        parts.append(f"-- {m.id}: {m.description}")
        parts.extend(statement + ";\n" for statement in m.statements)
    return "\n".join(parts)
