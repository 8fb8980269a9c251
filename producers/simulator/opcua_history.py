"""The OPC UA event history of the simulated machines: every event the server raised, in
one SQLite file, so a client reads back (HistoryRead) what it missed, also across a
restart of the server.

An implementation of asyncua's public storage interface (`HistoryStorageInterface`),
set on the server by `opcua_server.OpcUaServer`, which also writes each event here right
after raising it (not through asyncua's internal history subscription, which saves
asynchronously and would lose the last events at a stop). Why not asyncua's own
`HistorySQLite`: it makes one column per event field and fails for MachineTool's AlertType
(four field names twice: "duplicate column"), and it refuses string NodeIds as table
names (docs/opcua.md, asyncua quirks). Here a row holds all fields of one event as
OPC UA binary variants, so every event type fits and EventId reads back unchanged.
Value history is not kept (no historized variables).
"""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Final

from asyncua import ua
from asyncua.common.events import Event
from asyncua.common.utils import Buffer
from asyncua.server.history import HistoryStorageInterface
from asyncua.ua.ua_binary import variant_from_binary, variant_to_binary
from asyncua.ua.uaerrors import UaError

_EPOCH: Final = datetime(1601, 1, 1, tzinfo=timezone.utc)
MAX_EVENTS_PER_READ: Final = 10_000


def _ms(moment: datetime | None) -> int | None:
    """A request time as ms since the Unix epoch; None for 'not given' (OPC UA sends
    DateTime's minimum, 1601-01-01, for that)."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    if moment <= _EPOCH:
        return None
    return int(moment.timestamp() * 1000)


def event_fields(event: Event) -> dict[str, ua.Variant]:
    """The event's fields that have a value, as variants of their declared types (unset
    optional fields, e.g. a condition's ConditionName, are left out; a reader gets null)."""
    out: dict[str, ua.Variant] = {}
    for name, vtype in event.data_types.items():
        value = getattr(event, name, None)
        if value is None or name in event.internal_properties:
            continue
        out[name] = value if isinstance(value, ua.Variant) else ua.Variant(value, vtype)
    return out


def encode_fields(fields: dict[str, ua.Variant]) -> str:
    return json.dumps({name: variant_to_binary(value).hex() for name, value in sorted(fields.items())})


def decode_fields(text: str) -> dict[str, ua.Variant]:
    return {name: variant_from_binary(Buffer(bytes.fromhex(raw))) for name, raw in json.loads(text).items()}


class EventHistory(HistoryStorageInterface):
    """Events by source node and time in `<path>`; created if missing, kept across runs."""

    def __init__(self, path: Path) -> None:
        super().__init__(max_history_data_response_size=MAX_EVENTS_PER_READ)
        self.path = path
        self._db: sqlite3.Connection | None = None

    async def init(self) -> None:
        db = sqlite3.connect(self.path)
        db.execute("PRAGMA journal_mode=WAL")
        # No fsync per event (a start raises a machine's whole past, thousands of
        # events): WAL keeps the file consistent; a power cut may lose the newest rows.
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute(
            "CREATE TABLE IF NOT EXISTS events (id INTEGER PRIMARY KEY, source TEXT NOT NULL, "
            "time_ms INTEGER NOT NULL, fields TEXT NOT NULL)"
        )
        db.execute("CREATE INDEX IF NOT EXISTS events_source_time ON events (source, time_ms)")
        db.commit()
        self._db = db

    async def stop(self) -> None:
        db, self._db = self._db, None
        if db is not None:
            db.close()

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise RuntimeError("EventHistory used before init() or after stop()")
        return self._db

    # -- events -----------------------------------------------------------------------------

    async def new_historized_event(
        self, source_id: ua.NodeId, evtypes: list[Any], period: timedelta | None, count: int = 0
    ) -> None:
        """Nothing to prepare: one table holds every source and event type."""

    async def save_event(self, event: Event) -> None:
        fields = event_fields(event)
        source: ua.NodeId = getattr(event, "SourceNode")
        moment: datetime = getattr(event, "Time")
        db = self._conn()
        db.execute(
            "INSERT INTO events (source, time_ms, fields) VALUES (?, ?, ?)",
            (source.to_string(), _ms(moment) or 0, encode_fields(fields)),
        )
        db.commit()

    async def read_event_history(
        self, source_id: ua.NodeId, start: datetime | None, end: datetime | None, nb_values: int, evfilter: Any
    ) -> tuple[list[Event], datetime | None]:
        """Events of `source_id` between `start` and `end` in the order they were raised
        (newest first when only `end` is given, as Part 11 says), at most `nb_values`
        (0: all, capped at MAX_EVENTS_PER_READ)."""
        lo, hi = _ms(start), _ms(end)
        descending = lo is None and hi is not None
        limit = min(nb_values or MAX_EVENTS_PER_READ, MAX_EVENTS_PER_READ)
        rows = self._conn().execute(
            "SELECT fields FROM events WHERE source = ? AND time_ms >= ? AND time_ms <= ? "
            f"ORDER BY id {'DESC' if descending else 'ASC'} LIMIT ?",
            (source_id.to_string(), lo if lo is not None else -(2**62), hi if hi is not None else 2**62, limit),
        ).fetchall()
        return [Event.from_field_dict(decode_fields(row[0])) for row in rows], None

    # -- values: not kept --------------------------------------------------------------------

    async def new_historized_node(self, node_id: ua.NodeId, period: timedelta | None, count: int = 0) -> None:
        raise UaError("the simulator keeps no value history")

    async def save_node_value(self, node_id: ua.NodeId, datavalue: ua.DataValue) -> None:
        raise UaError("the simulator keeps no value history")

    async def read_node_history(
        self, node_id: ua.NodeId, start: datetime | None, end: datetime | None, nb_values: int
    ) -> tuple[list[ua.DataValue], datetime | None]:
        return [], None
