"""Printer status and activity in words a person reads, for the fleet view.

The dashboard (and any text an alert carries) calls `state_words(status, activity)`,
e.g. "Powered on, printing" or "Offline"; `duration_words(8100)` gives "2 h 15 min";
`fleet_line(fleet_state_record)` combines them with the job progress. Unknown symbols
(a newer schema version) fall back to readable lower-case text instead of failing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

STATUS_WORDS: Final = {
    "POWERED_ON": "Powered on",
    "SLEEPING": "Sleeping",
    "ERROR": "Error",
    "SERVICE_MODE": "Service mode",
    "UNREACHABLE": "Offline",
    "UNKNOWN": "Status unknown",
}
ACTIVITY_WORDS: Final = {
    "IDLE": "idle",
    "WARMING_UP": "warming up",
    "PRINTING": "printing",
    "COOLING_DOWN": "cooling down",
    "PAUSED": "job paused",
    "CALIBRATING": "calibrating",
    "MAINTENANCE": "maintenance",
    "UNLOADING_BUILD_UNIT": "unloading the build unit",
}


def _fallback(symbol: str) -> str:
    return symbol.replace("_", " ").lower()


def state_words(status: str, activity: str) -> str:
    """"Powered on, printing", "Error, job paused", "Offline", "Sleeping"."""
    if status == "UNREACHABLE":
        return "Offline"  # the last activity is stale; saying it would mislead
    head = STATUS_WORDS.get(status) or _fallback(status).capitalize()
    if status == "SLEEPING" or activity in ("", "UNKNOWN"):
        return head
    return f"{head}, {ACTIVITY_WORDS.get(activity) or _fallback(activity)}"


def duration_words(seconds: float) -> str:
    """A duration for people: "45 s", "12 min", "2 h 15 min", "1 d 3 h"."""
    s = max(0, round(seconds))
    if s < 60:
        return f"{s} s"
    minutes = round(s / 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def fleet_line(record: Mapping[str, Any]) -> str:
    """One line for a `fleet_state` record, e.g.
    "Powered on, printing: layer 1,204 of 4,000, 7 h 40 min left, 2 jobs waiting"."""
    text = state_words(str(record.get("status", "UNKNOWN")), str(record.get("activity", "UNKNOWN")))
    details = []
    done, total = record.get("layers_done"), record.get("layers_total")
    if record.get("status") != "UNREACHABLE" and done is not None and total:
        details.append(f"layer {done:,} of {total:,}")
    remaining = record.get("estimated_remaining_s")
    if record.get("status") != "UNREACHABLE" and remaining is not None:
        details.append(f"{duration_words(remaining)} left")
    pending = int(record.get("pending_job_count") or 0)
    if pending:
        details.append(f"{pending} job{'s' if pending != 1 else ''} waiting")
    return f"{text}: {', '.join(details)}" if details else text
