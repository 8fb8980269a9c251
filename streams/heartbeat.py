"""What a heartbeat record reports, read once into typed fields.

The fleet view and its completion estimate read the same fields of every heartbeat; this
reads them once (the hot path, see `streams.device`). Missing or empty fields read as
the schema's "none" (an empty string or 0), so hand-made records work too; the ids are
left to the steps, which require them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple


class Heartbeat(NamedTuple):
    t: int  # event_time, ms
    status: str
    activity: str
    job: str  # current_job_id
    layers_done: int
    layers_total: int
    recent_layer_duration_s: float
    pending_job_count: int
    cooling_remaining_s: float

    @staticmethod
    def of(record: Mapping[str, Any]) -> Heartbeat:
        """Raises KeyError without event_time, TypeError or ValueError for a field of
        the wrong type."""
        get = record.get
        return Heartbeat(
            int(record["event_time"]), str(get("status") or ""), str(get("activity") or ""), str(get("current_job_id") or ""),
            int(get("layers_done") or 0), int(get("layers_total") or 0), float(get("recent_layer_duration_s") or 0.0),
            int(get("pending_job_count") or 0), float(get("cooling_remaining_s") or 0.0),
        )
