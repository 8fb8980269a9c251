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
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from typing import Final, Protocol

from schemas import SchemaRegistry
from sinks import ddl
from sinks.errors import ClickHouseError, MigrationError
from sinks.layout import layout
from sinks.rollups import ROLLUPS

log = logging.getLogger(__name__)

MIGRATIONS_TABLE: Final = "schema_migrations"

_CREATE_MIGRATIONS: Final = f"""CREATE TABLE IF NOT EXISTS `{MIGRATIONS_TABLE}`
(
    `id` String,
    `description` String,
    `checksum` String,
    `statements` UInt32,
    `applied_at` DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(applied_at)
ORDER BY id"""


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


def plan(registry: SchemaRegistry) -> list[Migration]:
    """Every migration, in the order they apply. Raises `SchemaMappingError`."""
    out: list[Migration] = []
    for kind in sorted(registry.kinds):
        previous = None
        for schema in registry.versions(kind):
            current = layout(schema)
            if previous is None:
                statements = ddl.create_kind(current)
                what = f"tables of {kind} v{schema.version}: {', '.join(current.tables)}"
            else:
                statements = ddl.upgrade_kind(previous, current)
                what = f"{kind} v{previous.version} -> v{schema.version}"
            out.append(Migration(f"{kind}_v{schema.version}", what, tuple(statements)))
            previous = current
    out.extend(Migration(f"rollup_{r.name}", r.description, r.statements) for r in ROLLUPS)
    return out


async def applied(client: Executor) -> dict[str, str]:
    """Recorded migrations: id -> checksum."""
    await client.command(_CREATE_MIGRATIONS)
    rows = await client.rows(f"SELECT id, argMax(checksum, applied_at) FROM `{MIGRATIONS_TABLE}` GROUP BY id")
    return {str(r[0]): str(r[1]) for r in rows}


async def migrate(client: Executor, migrations: list[Migration]) -> list[str]:
    """Apply what is pending; returns the ids applied now. Raises `MigrationError`
    naming the migration and statement; `ClickHouseUnavailable` passes through so the
    caller can wait for the server."""
    done = await applied(client)
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
                if exc.retriable:
                    raise
                raise MigrationError(f"migration {migration.id} statement {number}: {exc}") from exc
        await client.insert_rows(
            MIGRATIONS_TABLE, ["id", "description", "checksum", "statements"],
            [[migration.id, migration.description, migration.checksum, len(migration.statements)]],
        )
        log.info("event=migration_applied id=%s statements=%d", migration.id, len(migration.statements))
        now.append(migration.id)
    return now


def script(migrations: list[Migration]) -> str:
    """All statements as one SQL script with a comment per migration (`--print-ddl`)."""
    parts = []
    for m in migrations:
        parts.append(f"-- {m.id}: {m.description}")
        parts.extend(statement + ";\n" for statement in m.statements)
    return "\n".join(parts)
