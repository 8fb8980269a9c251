"""The sink's ClickHouse client: the one place clickhouse-connect is called and its
exceptions are translated (to `ClickHouseUnavailable` or `ClickHouseRejected`).

Used by the sink (inserts), the migrations and `printfleet query`. Built on
clickhouse-connect's native async client (aiohttp), so an insert waiting on the server
does not hold up the Kafka consumer's heartbeats.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Mapping, Sequence
from typing import Any, Final

import aiohttp
import clickhouse_connect
from clickhouse_connect.driver import exceptions as ch_exc

from sinks.connection import ClickHouseSettings
from sinks.errors import ClickHouseAccessDenied, ClickHouseRejected, ClickHouseUnavailable
from sinks.native_block import NativeInsert

log = logging.getLogger(__name__)

# Server error codes that mean "not now" rather than "never": timeouts, overload, too
# many parts, memory, a table or server being restarted, network trouble in between.
# Not READONLY (164): that is a read-only user (or a read-only setting profile), which
# waiting does not change; TABLE_IS_READ_ONLY (242) is a replica that lost its Keeper
# session for a while, and stays here.
_RETRIABLE_CODES: Final = frozenset({
    3,    # UNEXPECTED_END_OF_FILE
    159,  # TIMEOUT_EXCEEDED (also an ON CLUSTER statement still under way on some host)
    202,  # TOO_MANY_SIMULTANEOUS_QUERIES
    209,  # SOCKET_TIMEOUT
    210,  # NETWORK_ERROR
    236,  # ABORTED
    241,  # MEMORY_LIMIT_EXCEEDED
    242,  # TABLE_IS_READ_ONLY
    252,  # TOO_MANY_PARTS
    279,  # ALL_CONNECTION_TRIES_FAILED (a Distributed insert could not reach a shard)
    285,  # TOO_FEW_LIVE_REPLICAS
    319,  # UNKNOWN_STATUS_OF_INSERT
    394,  # QUERY_WAS_CANCELLED
    999,  # KEEPER_EXCEPTION
})

# The user may not do it: no grant, a read-only profile, a failed login. Never retried.
_ACCESS_CODES: Final = frozenset({
    164,  # READONLY
    192,  # UNKNOWN_USER
    193,  # WRONG_PASSWORD
    194,  # REQUIRED_PASSWORD
    291,  # DATABASE_ACCESS_DENIED
    497,  # ACCESS_DENIED
    516,  # AUTHENTICATION_FAILED
})
_LOGIN_CODES: Final = frozenset({192, 193, 194, 516})
_UNKNOWN_DATABASE: Final = 81
_MISSING_GRANT: Final = re.compile(r"necessary to have the grant (.+?)\.? \(ACCESS_DENIED\)")

# Settings of every insert the sink makes; see `ClickHouseClient.insert_columns`.
INSERT_SETTINGS: Final[Mapping[str, Any]] = {
    # The sink batches itself; a synchronous insert is acknowledged only once stored.
    "async_insert": 0,
    "insert_deduplicate": 1,
    # A block dropped as a repeat in the table is dropped in every view's target too.
    "deduplicate_blocks_in_dependent_materialized_views": 1,
}
# Added in cluster mode, where the sink inserts into Distributed tables: the insert is
# acknowledged only once every shard stored its rows (by default a Distributed table
# queues them on the node's disk and acknowledges at once), and the deduplication token
# goes with each shard's rows (checked on ClickHouse 26.9, see docs/sink.md).
CLUSTER_INSERT_SETTINGS: Final[Mapping[str, Any]] = {"distributed_foreground_insert": 1}


def translate(
    exc: BaseException, what: str, user: str = "default",
) -> ClickHouseUnavailable | ClickHouseRejected:
    """The sinks error for an exception out of clickhouse-connect or its transport.
    `what` says what was being done (one line); `user` is named in access errors."""
    if isinstance(exc, ch_exc.Error) and not isinstance(exc, ch_exc.InterfaceError):
        code = exc.code
        if code in _ACCESS_CODES:
            return ClickHouseAccessDenied(_access_message(code, str(exc), what, user), code)
        if code is None or code in _RETRIABLE_CODES:
            # No server code: transport trouble (refused, reset, HTTP 5xx from a proxy).
            if code is not None or isinstance(exc, ch_exc.OperationalError) or "HTTP status 5" in str(exc):
                return ClickHouseUnavailable(f"{what}: {_short(exc)}")
        return ClickHouseRejected(f"{what}: {_short(exc)}", code)
    if isinstance(exc, (aiohttp.ClientError, OSError, asyncio.TimeoutError)):
        return ClickHouseUnavailable(f"{what}: {exc!r}")
    return ClickHouseRejected(f"{what}: {exc!r}")


def _access_message(code: int, text: str, what: str, user: str) -> str:
    """One line naming the user and the right it lacks."""
    if code in _LOGIN_CODES:
        return (f"ClickHouse user {user!r} could not log in ({what}): wrong password, no such user, "
                f"or not allowed from this address (ClickHouse error {code})")
    if code == 164:
        return (f"ClickHouse user {user!r} is read-only (readonly in its settings profile), so it may not run "
                f"{what}; the sink needs a user with CREATE, ALTER, INSERT and SELECT on its database")
    grant = _MISSING_GRANT.search(" ".join(text.split()))
    right = f"the grant {grant.group(1)}" if grant else "a right this statement needs"
    return f"ClickHouse user {user!r} lacks {right} ({what}); GRANT it, or use a user that has it"


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= 500 else text[:497] + "..."


class ClickHouseClient:
    """One database on one ClickHouse server (or a cluster, through one of its nodes),
    over HTTP(S), as `settings` say (sinks/connection.py).

    `start()` connects; only the sink and the migrations pass `create_database=True`, so
    a reader (`printfleet query`) needs no more than SELECT. `close()` is idempotent and
    safe without `start()`. Every method raises `ClickHouseUnavailable` (retriable) or
    `ClickHouseRejected` (`ClickHouseAccessDenied` when the user lacks a right).
    """

    def __init__(self, settings: ClickHouseSettings) -> None:
        self.settings = settings
        self.url = settings.url
        self.database = settings.database
        cluster = CLUSTER_INSERT_SETTINGS if settings.cluster else {}
        self._insert_settings = {**INSERT_SETTINGS, **cluster}
        self._row_settings = {"async_insert": 0, **cluster}
        self._client: Any = None

    async def start(self, *, create_database: bool = False) -> None:
        """Connect to the database; first create it (ON CLUSTER in cluster mode) if
        `create_database`. A database that does not exist is a `ClickHouseRejected`."""
        if self._client is not None:
            return
        s = self.settings
        if create_database:
            on_cluster = f" ON CLUSTER `{s.cluster}`" if s.cluster else ""
            statement = f"CREATE DATABASE IF NOT EXISTS `{self.database}`{on_cluster}"
            try:
                bootstrap = await self._connect(None)
                try:
                    await bootstrap.command(statement)
                finally:
                    await bootstrap.close()
            except Exception as exc:  # noqa: BLE001 - translated at this boundary
                raise translate(exc, statement, s.user) from exc
        try:
            self._client = await self._connect(self.database)
        except Exception as exc:  # noqa: BLE001 - translated at this boundary
            error = translate(exc, f"connecting to {self.url}", s.user)
            if isinstance(error, ClickHouseRejected) and error.code == _UNKNOWN_DATABASE:
                error = ClickHouseRejected(
                    f"database {self.database!r} does not exist on {self.url}: the sink creates it "
                    "(printfleet sink --migrate-only)", _UNKNOWN_DATABASE)
            raise error from exc

    async def _connect(self, database: str | None) -> Any:
        s = self.settings
        tls: dict[str, Any] = {}
        if s.secure:
            tls["verify"] = True
            if s.ca_file is not None:
                tls["ca_cert"] = str(s.ca_file)
            if s.cert_file is not None:
                tls["client_cert"] = str(s.cert_file)
                if s.key_file is not None:
                    tls["client_cert_key"] = str(s.key_file)
                # With a password the certificate secures the transport and the password
                # logs in ("strict"); without one the certificate is the login ("mutual":
                # clickhouse-connect sends X-ClickHouse-SSL-Certificate-Auth).
                tls["tls_mode"] = "mutual" if s.certificate_login else "strict"
        # No session-wide settings: a read-only user may not change any, and every
        # insert carries its own (INSERT_SETTINGS).
        return await clickhouse_connect.get_async_client(
            host=s.host, port=s.port, secure=s.secure, username=s.user,
            password=s.password.reveal(), database=database or "",
            connect_timeout=min(10.0, s.timeout_s), send_receive_timeout=s.timeout_s, compress=False,
            **tls,
        )

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            try:
                await client.close()
            except Exception as exc:  # noqa: BLE001 - closing a broken connection
                log.debug("event=clickhouse_close_failed error=%r", exc)

    def _ready(self) -> Any:
        if self._client is None:
            raise ClickHouseUnavailable(f"not connected to {self.url}")
        return self._client

    async def ping(self) -> bool:
        client = self._client
        if client is None:
            return False
        try:
            return bool(await client.ping())
        except Exception:  # noqa: BLE001 - ping answers a yes or no
            return False

    async def command(self, sql: str, parameters: Mapping[str, Any] | None = None) -> None:
        try:
            await self._ready().command(sql, parameters=parameters)
        except (ClickHouseUnavailable, ClickHouseRejected):
            raise
        except Exception as exc:  # noqa: BLE001 - translated at this boundary
            raise translate(exc, _first_line(sql), self.settings.user) from exc

    async def query(
        self, sql: str, parameters: Mapping[str, Any] | None = None, settings: Mapping[str, Any] | None = None,
    ) -> tuple[list[str], list[tuple[Any, ...]]]:
        """Column names and rows of a SELECT."""
        try:
            result = await self._ready().query(sql, parameters=parameters, settings=dict(settings or {}))
        except (ClickHouseUnavailable, ClickHouseRejected):
            raise
        except Exception as exc:  # noqa: BLE001 - translated at this boundary
            raise translate(exc, _first_line(sql), self.settings.user) from exc
        return list(result.column_names), [tuple(row) for row in result.result_rows]

    async def rows(self, sql: str, parameters: Mapping[str, Any] | None = None) -> list[tuple[Any, ...]]:
        return (await self.query(sql, parameters))[1]

    async def insert_rows(self, table: str, columns: list[str], rows: list[list[object]]) -> None:
        """A small row-oriented insert (bookkeeping, tests); types are looked up."""
        try:
            await self._ready().insert(table, rows, column_names=columns, settings=self._row_settings)
        except (ClickHouseUnavailable, ClickHouseRejected):
            raise
        except Exception as exc:  # noqa: BLE001 - translated at this boundary
            raise translate(exc, f"insert into {table}", self.settings.user) from exc

    async def insert_columns(
        self, table: str, names: Sequence[str], types: Sequence[str], columns: Sequence[Sequence[Any]],
        token: str,
    ) -> int:
        """Insert columns as one synchronous insert deduplicated by `token`; returns the
        rows written (0 when ClickHouse recognised the token and dropped the repeat).

        The token must name the exact rows: the same token with other rows would be
        dropped as a repeat. The sink derives it from topic, partition and offset range.
        """
        settings = dict(self._insert_settings, insert_deduplication_token=token)
        try:
            summary = await self._ready().insert(
                table, columns, column_names=list(names), column_type_names=list(types),
                column_oriented=True, settings=settings,
            )
        except (ClickHouseUnavailable, ClickHouseRejected):
            raise
        except Exception as exc:  # noqa: BLE001 - translated at this boundary
            raise translate(exc, f"insert into {table}", self.settings.user) from exc
        return int(getattr(summary, "written_rows", 0) or 0)


    async def insert_native(self, native: NativeInsert, token: str) -> None:
        """Insert a Native block built by `sinks.native_block`, deduplicated by `token`
        like `insert_columns`."""
        settings = dict(self._insert_settings, insert_deduplication_token=token)
        try:
            # `raw_insert` sends the statement and the block as they are. `command(statement,
            # data=body)` decoded the whole block as text first, to tell whether the command
            # only reads (about 5 % of the sink's time for heartbeats).
            await self._ready().raw_insert(f"`{native.table}`", list(native.columns), native.body,
                                           settings=settings, fmt="Native")
        except (ClickHouseUnavailable, ClickHouseRejected):
            raise
        except Exception as exc:  # noqa: BLE001 - translated at this boundary
            raise translate(exc, f"insert into {native.table}", self.settings.user) from exc


def _first_line(sql: str) -> str:
    line = sql.strip().splitlines()[0] if sql.strip() else ""
    return line if len(line) <= 120 else line[:117] + "..."
