"""Fleet state per printer: what the fleet view shows, and when a printer goes offline.

The fleet-state agent keeps one `PrinterState` per device_id in a table and calls:

- `apply_heartbeat(state, heartbeat, settings)` for every heartbeat record,
- `apply_identity(state, device_identity)` for every device_identity record,
- `set_open_alert_count(state, n, at_ms)` when the alert agent's count for the device
  changes,
- `check_offline(state, now_ms, settings)` from a timer, for every device, with `now_ms`
  the site's event-time watermark (newest event_time seen from any printer of the site;
  see `offline_now`), so offline is detected while no record of this printer arrives.

Each returns a `Step(state, record, transition)`: the new state, a `fleet_state` record
to produce or None, and an `online`/`offline` `Transition` or None (the alert agent
turns it into an alert). `apply_heartbeat` changes the state it is given, in place (the
heartbeat path, see `streams.device`); the others return a copy and leave it as it was.

Dedup: fleet state is "newest wins", so a heartbeat is applied only if it is newer than
the newest applied one, ordered by (event_time, record_id). A redelivered or late record
is therefore a no-op, and memory is bounded (one id per printer) without a list of ids.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from streams.errors import record_boundary
from streams.eta import EtaSettings, EtaState, estimate_heartbeat, observe_heartbeat
from streams.heartbeat import Heartbeat
from streams.ids import derived_id
from streams.plain import PlainState, copied


@dataclass(frozen=True, slots=True)
class FleetSettings:
    heartbeat_interval_s: float = 30.0  # the collector's status poll interval
    missed_intervals: int = 3  # offline after this many intervals without a heartbeat
    progress_s: float = 60.0  # layer/ETA progress is re-emitted at most this often
    refresh_s: float = 300.0  # an unchanged state is re-emitted this often (last seen)
    eta: EtaSettings = EtaSettings()

    @property
    def offline_after_ms(self) -> int:
        return round(self.heartbeat_interval_s * self.missed_intervals * 1000)


@dataclass(frozen=True, slots=True)
class Transition:
    """A printer went `offline` (no heartbeat for the configured intervals, or the
    collector reported it UNREACHABLE) or came back `online`, at `at_ms` (event time)."""

    kind: str
    at_ms: int
    last_heartbeat_at: int


@dataclass(slots=True)
class PrinterState(PlainState):
    site_id: str = ""
    device_id: str = ""
    printer_name: str = ""
    model_number: str = ""
    firmware_release: str = ""  # from device_identity; fleet_state v2 shows it
    identity_at: int = 0
    status: str = "UNKNOWN"
    activity: str = "UNKNOWN"
    current_job_id: str = ""
    layers_done: int = 0
    layers_total: int = 0
    pending_job_count: int = 0
    last_heartbeat_at: int = 0  # 0 = no heartbeat yet
    last_record_id: str = ""
    offline: bool = False
    offline_at: int = 0
    eta: EtaState = field(default_factory=EtaState)
    remaining_s: float | None = None
    completion_at: int | None = None
    open_alert_count: int = 0
    emitted_shape: str = ""  # the structural content of the last record emitted
    emitted_layers: int = 0
    emitted_remaining_s: float | None = None
    emitted_at: int = 0


class Step(NamedTuple):
    state: PrinterState
    record: dict[str, Any] | None
    transition: Transition | None


def new_state(site_id: str, device_id: str) -> PrinterState:
    return PrinterState(site_id=site_id, device_id=device_id)


def offline_now(site_watermark_ms: int, watermark_seen_wall_ms: int, wall_now_ms: int) -> int:
    """The `now_ms` a timer passes to `check_offline`: the site's newest event time, moved
    on by the wall time since it was seen (so a whole site going dark is noticed too).
    Event time, not wall time alone: a collector replaying its spool after an outage
    must not make every printer look offline."""
    return site_watermark_ms + max(0, wall_now_ms - watermark_seen_wall_ms)


def apply_heartbeat(
    state: PrinterState, record: Mapping[str, Any], settings: FleetSettings = FleetSettings()
) -> Step:
    """Fold a heartbeat into `state`, in place (the heartbeat path, see `streams.device`):
    the returned step's state is `state`. Stale or repeated heartbeats change nothing and
    give no record. A record it cannot read raises KeyError, TypeError or ValueError,
    which `device.apply` (the heartbeat path's one record boundary) turns into
    InvalidRecordError: never a decoded heartbeat (the schema guarantees every field
    read here)."""
    hb = Heartbeat.of(record)
    t, rid = hb.t, str(record["record_id"])
    if state.last_heartbeat_at and (t, rid) <= (state.last_heartbeat_at, state.last_record_id):
        return Step(state, None, None)
    # Every field is read before the state changes.
    site_id, device_id = str(record["site_id"]), str(record["device_id"])
    status, activity = hb.status or "UNKNOWN", hb.activity or "UNKNOWN"
    eta = estimate_heartbeat(observe_heartbeat(state.eta, hb, settings.eta), hb, settings.eta)
    s = state
    s.site_id, s.device_id = s.site_id or site_id, s.device_id or device_id
    transition = None
    if status == "UNREACHABLE" and not s.offline:
        s.offline, s.offline_at = True, t
        transition = Transition("offline", t, s.last_heartbeat_at or t)
    elif status != "UNREACHABLE" and s.offline:
        s.offline, s.offline_at = False, 0
        transition = Transition("online", t, t)
    s.status, s.activity, s.current_job_id = status, activity, hb.job
    s.layers_done, s.layers_total, s.pending_job_count = hb.layers_done, hb.layers_total, hb.pending_job_count
    s.last_heartbeat_at, s.last_record_id = t, rid
    s.remaining_s, s.completion_at = (eta.remaining_s, eta.completion_at_ms) if eta else (None, None)
    s, out = _maybe_emit(s, t, ("fleet_state", s.device_id, t, rid), settings, force=transition is not None)
    return Step(s, out, transition)


@record_boundary
def apply_identity(
    state: PrinterState, record: Mapping[str, Any], settings: FleetSettings = FleetSettings()
) -> Step:
    """Take name, model and firmware from a device_identity record (newest wins).
    Emits a record when the visible name, model or firmware changed and a heartbeat is
    known."""
    t = int(record["event_time"])
    if t <= state.identity_at:
        return Step(state, None, None)
    s = copied(
        state,
        site_id=state.site_id or str(record["site_id"]),
        device_id=state.device_id or str(record["device_id"]),
        printer_name=str(record.get("printer_name") or ""),
        model_number=str(record.get("model_number") or ""),
        firmware_release=str(record.get("firmware_release") or ""),
        identity_at=t,
    )
    if not s.last_heartbeat_at:
        return Step(s, None, None)
    # Stamped with the heartbeat the record shows: identity comes on its own topic and may
    # be read hours ahead of the heartbeats; a later stamp would hold back their refreshes.
    s, out = _maybe_emit(s, s.last_heartbeat_at, ("fleet_state", s.device_id, "identity", t), settings)
    return Step(s, out, None)


def set_open_alert_count(
    state: PrinterState, count: int, at_ms: int, settings: FleetSettings = FleetSettings()
) -> Step:
    """Record how many alerts of the device are open; emits when it changed."""
    if count == state.open_alert_count:
        return Step(state, None, None)
    s = copied(state, open_alert_count=count)
    if not s.last_heartbeat_at:
        return Step(s, None, None)
    at = s.last_heartbeat_at  # the heartbeat the record shows (see apply_identity)
    s, out = _maybe_emit(s, at, ("fleet_state", s.device_id, "alerts", at_ms, count), settings)
    return Step(s, out, None)


def check_offline(state: PrinterState, now_ms: int, settings: FleetSettings = FleetSettings()) -> Step:
    """Mark the printer offline when no heartbeat came for `missed_intervals` intervals.

    The offline moment is last heartbeat + the threshold, not `now_ms`, so a timer that
    fires late or twice produces the same record (same id, same content)."""
    if state.offline or not state.last_heartbeat_at:
        return Step(state, None, None)
    if now_ms - state.last_heartbeat_at <= settings.offline_after_ms:
        return Step(state, None, None)
    at = state.last_heartbeat_at + settings.offline_after_ms
    s = copied(state, offline=True, offline_at=at, remaining_s=None, completion_at=None)
    s, out = _maybe_emit(s, at, ("fleet_state", s.device_id, "offline", at), settings, force=True)
    return Step(s, out, Transition("offline", at, state.last_heartbeat_at))


def to_record(state: PrinterState, event_time: int, record_id: str) -> dict[str, Any]:
    """The `fleet_state` record of `state` (offline shows UNREACHABLE and no job)."""
    offline = state.offline
    job = state.current_job_id if not offline else ""
    return {
        "record_id": record_id,
        "site_id": state.site_id,
        "device_id": state.device_id,
        "event_time": event_time,
        "printer_name": state.printer_name,
        "model_number": state.model_number,
        "firmware_release": state.firmware_release,
        "status": "UNREACHABLE" if offline else state.status,
        "activity": "UNKNOWN" if offline else state.activity,
        "current_job_id": job or None,
        "layers_done": state.layers_done if job else None,
        "layers_total": state.layers_total if job else None,
        "estimated_completion_at": None if offline else state.completion_at,
        "estimated_remaining_s": None if offline else state.remaining_s,
        "pending_job_count": state.pending_job_count,
        "last_heartbeat_at": state.last_heartbeat_at,
        "open_alert_count": state.open_alert_count,
    }


def _shape(s: PrinterState) -> str:
    # Everything whose change a person must see at once; progress is throttled instead.
    return (f"{s.offline}|{s.status}|{s.activity}|{s.current_job_id}|{s.layers_total}|{s.pending_job_count}|"
            f"{s.open_alert_count}|{s.printer_name}|{s.model_number}|{s.firmware_release}|{s.remaining_s is None}")


def _maybe_emit(
    s: PrinterState, t: int, id_parts: tuple[object, ...], settings: FleetSettings, *, force: bool = False
) -> tuple[PrinterState, dict[str, Any] | None]:
    """The record to emit, if one is due; its id is `derived_id(*id_parts)`, made only
    then (a uuid5 per heartbeat was a tenth of the agent's time)."""
    shape = _shape(s)
    since = (t - s.emitted_at) / 1000.0
    progressed = s.layers_done != s.emitted_layers or _eta_moved(s.emitted_remaining_s, s.remaining_s)
    due = (
        force
        or shape != s.emitted_shape
        or (progressed and since >= settings.progress_s)
        or since >= settings.refresh_s
    )
    if not due:
        return s, None
    s.emitted_shape, s.emitted_layers, s.emitted_remaining_s, s.emitted_at = shape, s.layers_done, s.remaining_s, t
    return s, to_record(s, t, derived_id(*id_parts))


def _eta_moved(before: float | None, now: float | None) -> bool:
    if before is None or now is None:
        return before is not now
    return abs(now - before) > max(60.0, 0.02 * before)
