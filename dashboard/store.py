"""The dashboard's reads from ClickHouse: recent alerts, utilisation, the anonymous
benchmark and a printer's consumables (queries in `sinks/queries.py`, DASHBOARD_*).

Every query is bound to one site by a ClickHouse parameter, never formatted into the
SQL. One connection, opened at the first request (so the dashboard starts, and shows the
live fleet, while ClickHouse is still coming up) and reopened after a failure. Raises
`ClickHouseUnavailable` (retriable) or `ClickHouseRejected`, as `sinks.client` does.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import decimal
from collections import defaultdict
from collections.abc import Mapping
from typing import Any

from common.alert_view import AlertFilter
from sinks import queries
from sinks.client import ClickHouseClient
from sinks.connection import ClickHouseSettings
from sinks.errors import ClickHouseUnavailable

Row = dict[str, Any]
_TIMESTAMPS = frozenset({"bucket", "event_time", "raised_at", "cleared_at", "predicted_failure_at", "reported_at"})


def to_ms(value: Any) -> Any:
    """A ClickHouse DateTime/DateTime64 value as milliseconds since the epoch (naive
    values are UTC wall clock, as clickhouse-connect returns DateTime64(3, 'UTC'))."""
    if isinstance(value, dt.datetime):
        aware = value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)
        return round(aware.timestamp() * 1000)
    if isinstance(value, dt.date):
        return round(dt.datetime(value.year, value.month, value.day, tzinfo=dt.timezone.utc).timestamp() * 1000)
    return value


def _plain(name: str, value: Any) -> Any:
    if name in _TIMESTAMPS:
        return to_ms(value)
    if isinstance(value, decimal.Decimal):
        return float(value)
    return value


def rows_of(columns: list[str], rows: list[tuple[Any, ...]]) -> list[Row]:
    return [{c: _plain(c, v) for c, v in zip(columns, row)} for row in rows]


class Store:
    """`close()` is idempotent and safe before the first query."""

    def __init__(self, settings: ClickHouseSettings) -> None:
        self.settings = settings
        self._client: ClickHouseClient | None = None
        self._lock = asyncio.Lock()

    async def _query(self, sql: str, parameters: Mapping[str, Any]) -> list[Row]:
        async with self._lock:
            if self._client is None:
                client = ClickHouseClient(self.settings)
                await client.start()
                self._client = client
            client = self._client
        try:
            columns, rows = await client.query(sql, parameters)
        except ClickHouseUnavailable:
            await self._drop(client)
            raise
        return rows_of(columns, rows)

    async def _drop(self, client: ClickHouseClient) -> None:
        async with self._lock:
            if self._client is client:
                self._client = None
        await client.close()

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.close()

    async def ping(self) -> bool:
        client = self._client
        return client is not None and await client.ping()

    async def recent_alerts(self, site: str, wanted: AlertFilter, days: int, limit: int) -> list[Row]:
        """Alerts of `site` whose latest lifecycle record is at most `days` old, with
        their recommended parts, newest first."""
        params = {**wanted.parameters(), "site": site, "days": days, "limit": limit}
        alerts = await self._query(queries.DASHBOARD_RECENT_ALERTS, params)
        return await self._with_parts(alerts, queries.DASHBOARD_ALERT_PARTS, {"site": site})

    async def open_alerts(self) -> list[Row]:
        """Every site's open alerts with their recommended parts (the feed's start)."""
        alerts = await self._query(queries.DASHBOARD_OPEN_ALERTS, {})
        return await self._with_parts(alerts, queries.DASHBOARD_OPEN_ALERT_PARTS, {})

    async def _with_parts(self, alerts: list[Row], sql: str, parameters: Mapping[str, Any]) -> list[Row]:
        if not alerts:
            return []
        parts = await self._query(sql, {**parameters, "record_ids": [a["record_id"] for a in alerts]})
        by_record: dict[str, list[Row]] = defaultdict(list)
        for p in parts:
            by_record[p.pop("record_id")].append(p)
        return [{**a, "recommended_parts": by_record.get(a["record_id"], [])} for a in alerts]

    async def utilisation(self, site: str, grain: str, printer: str, days: int) -> list[Row]:
        return await self._query(queries.DASHBOARD_UTILISATION[grain],
                                 {"site": site, "printer": printer, "days": days})

    async def benchmark(self, site: str, printer: str, days: int) -> list[Row]:
        return await self._query(queries.DASHBOARD_BENCHMARK, {"site": site, "printer": printer, "days": days})

    async def consumables(self, site: str, printer: str, printhead_life_h: float) -> list[Row]:
        return await self._query(queries.DASHBOARD_CONSUMABLES,
                                 {"site": site, "printer": printer, "printhead_life_h": printhead_life_h})
