"""What service tools see of an alert: the filters they choose alerts by and the one row
shape every output uses (`printfleet alerts list` from ClickHouse, `printfleet alerts
follow` from the alerts topic), so both print the same columns with the same values.

Pure: no I/O. Timestamps in rows are ISO 8601 text in UTC, as `printfleet query` prints
ClickHouse's DateTime64 values.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

# The alert schema's Severity symbols, least serious first (schemas/avro/alert/*.avsc).
SEVERITIES: Final = ("UNKNOWN", "INFO", "WARNING", "ERROR", "CRITICAL")

# Every output's columns, in order; `updated_at` is the event time of the alert's latest
# lifecycle record (when it was raised, last updated or cleared); `recommended_part_numbers`
# the part numbers of its `recommended_parts`, in the record's order (what a technician
# orders; description and quantity stay in the record).
COLUMNS: Final = (
    "alert_id", "site_id", "device_id", "severity", "rule_id", "lifecycle", "raised_at", "updated_at",
    "cleared_at", "occurrences", "confidence", "subsystem", "source_event_code", "predicted_failure_at",
    "summary", "recommended_action", "recommended_part_numbers", "notify_service", "dedup_key",
)
# The text table's: what fits on a terminal line.
TABLE_COLUMNS: Final = (
    "site_id", "device_id", "severity", "rule_id", "lifecycle", "raised_at", "occurrences", "recommended_part_numbers",
    "summary",
)
# How a list (the part numbers) is written in one CSV or table cell: part numbers hold no
# spaces, so a space keeps the cell readable and splits back unambiguously.
LIST_SEPARATOR: Final = " "

_TIMESTAMPS: Final = frozenset({"raised_at", "updated_at", "cleared_at", "predicted_failure_at"})


@dataclass(frozen=True, slots=True)
class AlertFilter:
    """Which alerts a tool wants; an empty field matches every alert. `min_severity`
    keeps alerts at least that serious (WARNING keeps WARNING, ERROR and CRITICAL)."""

    site: str = ""
    printer: str = ""
    rule: str = ""
    min_severity: str = ""

    def __post_init__(self) -> None:
        if self.min_severity and self.min_severity not in SEVERITIES:
            raise ValueError(f"unknown severity {self.min_severity!r}; one of {', '.join(SEVERITIES)}")

    @property
    def min_rank(self) -> int:
        return SEVERITIES.index(self.min_severity) if self.min_severity else 0

    def matches(self, alert: Mapping[str, Any]) -> bool:
        """True when a decoded alert record passes every filter."""
        severity = str(alert.get("severity", "UNKNOWN"))
        rank = SEVERITIES.index(severity) if severity in SEVERITIES else 0
        return ((not self.site or alert.get("site_id") == self.site)
                and (not self.printer or alert.get("device_id") == self.printer)
                and (not self.rule or alert.get("rule_id") == self.rule)
                and rank >= self.min_rank)

    def parameters(self) -> dict[str, Any]:
        """The values of the open-alerts SQL's parameters (bound by ClickHouse)."""
        return {"site": self.site, "printer": self.printer, "rule": self.rule, "min_rank": self.min_rank}


def _iso(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        return dt.datetime.fromtimestamp(value / 1000, dt.timezone.utc).isoformat()
    if isinstance(value, dt.datetime):
        # ClickHouse's DateTime64(3, 'UTC') may come back naive: its wall clock is UTC.
        aware = value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)
        return aware.astimezone(dt.timezone.utc).isoformat()
    return value


def record_row(alert: Mapping[str, Any]) -> dict[str, Any]:
    """A decoded alert record (timestamps in ms) as an output row."""
    parts = [str(p["part_number"]) for p in alert.get("recommended_parts") or ()]
    values = {**alert, "updated_at": alert["event_time"], "recommended_part_numbers": parts}
    return {name: (_iso(values.get(name)) if name in _TIMESTAMPS else values.get(name)) for name in COLUMNS}


def query_row(columns: list[str], row: tuple[Any, ...]) -> dict[str, Any]:
    """A row of the open-alerts query (ClickHouse values) as an output row."""
    values = dict(zip(columns, row))
    values["recommended_part_numbers"] = [str(p) for p in values.get("recommended_part_numbers") or ()]
    return {name: (_iso(values.get(name)) if name in _TIMESTAMPS else values.get(name)) for name in COLUMNS}


def cell(value: Any) -> Any:
    """A row's value as one CSV or table cell: None is empty, a list its items joined by
    `LIST_SEPARATOR` (JSON keeps both as they are)."""
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return LIST_SEPARATOR.join(str(v) for v in value)
    return value
