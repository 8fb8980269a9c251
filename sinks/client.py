"""The sink's ClickHouse client: the one place clickhouse-connect is called and its
exceptions are translated (to `ClickHouseUnavailable` or `ClickHouseRejected`).

Used by the sink (inserts), the migrations and `printfleet query`. Built on
clickhouse-connect's native async client (aiohttp), so an insert waiting on the server
does not hold up the Kafka consumer's heartbeats.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from typing import Any, Final
from urllib.parse import urlsplit

import aiohttp
import clickhouse_connect
from clickhouse_connect.driver import exceptions as ch_exc

from sinks.errors import ClickHouseRejected, ClickHouseUnavailable
from sinks.native_block import NativeInsert

log = logging.getLogger(__name__)

# Server error codes that mean "not now" rather than "never": timeouts, overload, too
# many parts, memory, a table or server being restarted, network trouble in between.
_RETRIABLE_CODES: Final = frozenset({
    3,    # UNEXPECTED_END_OF_FILE
    159,  # TIMEOUT_EXCEEDED
    164,  # READONLY
    202,  # TOO_MANY_SIMULTANEOUS_QUERIES
    209,  # SOCKET_TIMEOUT
    210,  # NETWORK_ERROR
    236,  # ABORTED
    241,  # MEMORY_LIMIT_EXCEEDED
    242,  # TABLE_IS_READ_ONLY
    252,  # TOO_MANY_PARTS
    285,  # TOO_FEW_LIVE_REPLICAS
    319,  # UNKNOWN_STATUS_OF_INSERT
    394,  # QUERY_WAS_CANCELLED
    999,  # KEEPER_EXCEPTION
})

# Settings of every insert the sink makes; see `ClickHouseClient.insert_columns`.
INSERT_SETTINGS: Final[Mapping[str, Any]] = {
    # The sink batches itself; a synchronous insert is acknowledged only once stored.
    "async_insert": 0,
    "insert_deduplicate": 1,
    # A block dropped as a repeat in the table is dropped in every view's target too.
    "deduplicate_blocks_in_dependent_materialized_views": 1,
}


def translate(exc: BaseException, what: str) -> ClickHouseUnavailable | ClickHouseRejected:
    """The sinks error for an exception out of clickhouse-connect or its transport."""
    if isinstance(exc, ch_exc.Error) and not isinstance(exc, ch_exc.InterfaceError):
        code = exc.code
        if code is None or code in _RETRIABLE_CODES:
            # No server code: transport trouble (refused, reset, HTTP 5xx from a proxy).
            if code is not None or isinstance(exc, ch_exc.OperationalError) or "HTTP status 5" in str(exc):
                return ClickHouseUnavailable(f"{what}: {_short(exc)}")
        return ClickHouseRejected(f"{what}: {_short(exc)}", code)
    if isinstance(exc, (aiohttp.ClientError, OSError, asyncio.TimeoutError)):
        return ClickHouseUnavailable(f"{what}: {exc!r}")
    return ClickHouseRejected(f"{what}: {exc!r}")


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= 500 else text[:497] + "..."


def check_url(url: str, name: str = "ClickHouse URL") -> str:
    """`url` if it is `http(s)://host[:port]`, else ValueError naming `name` (the flag or
    variable it came from) with an example. `printfleet query` and `printfleet sink`
    call it before connecting; `ClickHouseClient` too."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - parses the port; ValueError when it is not a number
        good = parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:
        good = False
    if not good:
        example = "http://127.0.0.1:8123"
        if name.startswith("--"):
            example = f"{name} {example}"
        elif name.isupper():
            example = f"{name}={example}"
        raise ValueError(
            f"{name} {url!r} is not a ClickHouse URL: it needs http:// or https:// and a host, e.g. {example}"
        )
    return url


class ClickHouseClient:
    """One database on one ClickHouse server, over HTTP(S).

    `start()` connects and creates the database if needed; `close()` is idempotent and
    safe without `start()`. Every method raises `ClickHouseUnavailable` (retriable) or
    `ClickHouseRejected`.
    """

    def __init__(
        self, url: str, database: str, *, username: str = "default", password: str = "",
        timeout_s: float = 30.0,
    ) -> None:
        check_url(url)
        parts = urlsplit(url)
        self.url = url
        self.database = database
        self._secure = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port or (8443 if self._secure else 8123)
        self._username = username
        self._password = password
        self._timeout_s = timeout_s
        self._client: Any = None

    async def start(self) -> None:
        """Connect and ensure the database exists."""
        if self._client is not None:
            return
        try:
            bootstrap = await self._connect(None)
            try:
                await bootstrap.command(f"CREATE DATABASE IF NOT EXISTS `{self.database}`")
            finally:
                await bootstrap.close()
            self._client = await self._connect(self.database)
        except Exception as exc:  # noqa: BLE001 - translated at this boundary
            raise translate(exc, f"connecting to {self.url}") from exc

    async def _connect(self, database: str | None) -> Any:
        return await clickhouse_connect.get_async_client(
            host=self._host, port=self._port, secure=self._secure, username=self._username,
            password=self._password, database=database or "", connect_timeout=min(10.0, self._timeout_s),
            send_receive_timeout=self._timeout_s, compress=False,
            settings={"async_insert": 0},
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
            raise translate(exc, _first_line(sql)) from exc

    async def query(
        self, sql: str, parameters: Mapping[str, Any] | None = None, settings: Mapping[str, Any] | None = None,
    ) -> tuple[list[str], list[tuple[Any, ...]]]:
        """Column names and rows of a SELECT."""
        try:
            result = await self._ready().query(sql, parameters=parameters, settings=dict(settings or {}))
        except (ClickHouseUnavailable, ClickHouseRejected):
            raise
        except Exception as exc:  # noqa: BLE001 - translated at this boundary
            raise translate(exc, _first_line(sql)) from exc
        return list(result.column_names), [tuple(row) for row in result.result_rows]

    async def rows(self, sql: str, parameters: Mapping[str, Any] | None = None) -> list[tuple[Any, ...]]:
        return (await self.query(sql, parameters))[1]

    async def insert_rows(self, table: str, columns: list[str], rows: list[list[object]]) -> None:
        """A small row-oriented insert (bookkeeping, tests); types are looked up."""
        try:
            await self._ready().insert(table, rows, column_names=columns, settings={"async_insert": 0})
        except (ClickHouseUnavailable, ClickHouseRejected):
            raise
        except Exception as exc:  # noqa: BLE001 - translated at this boundary
            raise translate(exc, f"insert into {table}") from exc

    async def insert_columns(
        self, table: str, names: Sequence[str], types: Sequence[str], columns: Sequence[Sequence[Any]],
        token: str,
    ) -> int:
        """Insert columns as one synchronous insert deduplicated by `token`; returns the
        rows written (0 when ClickHouse recognised the token and dropped the repeat).

        The token must name the exact rows: the same token with other rows would be
        dropped as a repeat. The sink derives it from topic, partition and offset range.
        """
        settings = dict(INSERT_SETTINGS, insert_deduplication_token=token)
        try:
            summary = await self._ready().insert(
                table, columns, column_names=list(names), column_type_names=list(types),
                column_oriented=True, settings=settings,
            )
        except (ClickHouseUnavailable, ClickHouseRejected):
            raise
        except Exception as exc:  # noqa: BLE001 - translated at this boundary
            raise translate(exc, f"insert into {table}") from exc
        return int(getattr(summary, "written_rows", 0) or 0)


    async def insert_native(self, native: NativeInsert, token: str) -> None:
        """Insert a Native block built by `sinks.native_block`, deduplicated by `token`
        like `insert_columns`."""
        settings = dict(INSERT_SETTINGS, insert_deduplication_token=token)
        try:
            # `raw_insert` sends the statement and the block as they are. `command(statement,
            # data=body)` decoded the whole block as text first, to tell whether the command
            # only reads (about 5 % of the sink's time for heartbeats).
            await self._ready().raw_insert(f"`{native.table}`", list(native.columns), native.body,
                                           settings=settings, fmt="Native")
        except (ClickHouseUnavailable, ClickHouseRejected):
            raise
        except Exception as exc:  # noqa: BLE001 - translated at this boundary
            raise translate(exc, f"insert into {native.table}") from exc


def _first_line(sql: str) -> str:
    line = sql.strip().splitlines()[0] if sql.strip() else ""
    return line if len(line) <= 120 else line[:117] + "..."
