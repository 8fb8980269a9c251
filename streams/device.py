"""Everything the stream processors know about one printer, and the step per record.

The device agent (`streams.app`) keeps one `DeviceState` per device_id and calls

    apply(state, kind, record, settings)     # every telemetry record of the printer
    tick(state, now_ms, settings)            # timer: offline, window closing, quiet alerts
    advise(state, catalogue, key, settings)  # a device's firmware against the releases

Each returns an `Outcome`: the new state, the records to produce as `(kind, record)`, and
the input records that came too late to count (the agent dead-letters them). `apply`
changes the state it is given, in place: copying a printer's state for every heartbeat
(five copies, its sample lists among them) was most of the worker's time. `tick` and
`advise` return a new state and leave the old one as it was, so the agent can tell
that a timer pass changed nothing.

One state instead of one table per concern: every heartbeat feeds the fleet view, the
utilisation windows and the layer-anomaly rule, so one lookup and one changelog write
serve all three.

Idempotent like the modules it combines: applying a record twice is applying it once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from streams import advisories, alert_device, fleet_state, utilisation
from streams.alert_device import AlertDeviceSettings, DeviceAlertState
from streams.alerts import open_count
from streams.errors import record_boundary
from streams.fleet_state import FleetSettings, PrinterState, Transition
from streams.plain import PlainState, copied
from streams.utilisation import UtilisationSettings, UtilisationState

Output = tuple[str, dict[str, Any]]


@dataclass(frozen=True, slots=True)
class DeviceSettings:
    fleet: FleetSettings = FleetSettings()
    utilisation: UtilisationSettings = UtilisationSettings()
    alerts: AlertDeviceSettings = AlertDeviceSettings()


@dataclass(slots=True)
class DeviceState(PlainState):
    fleet: PrinterState = field(default_factory=PrinterState)
    utilisation: UtilisationState = field(default_factory=UtilisationState)
    alerts: DeviceAlertState = field(default_factory=DeviceAlertState)
    advisories: advisories.AdvisoryLog = field(default_factory=advisories.AdvisoryLog)


class Outcome(NamedTuple):
    state: DeviceState
    outputs: list[Output]
    late: list[Mapping[str, Any]]


@record_boundary
def apply(state: DeviceState, kind: str, record: Mapping[str, Any], settings: DeviceSettings = DeviceSettings()) -> Outcome:
    """Fold one telemetry record of `kind` into `state`, in place: the outcome's state is
    `state`. Raises InvalidRecordError (the agent dead-letters the record) when a step
    cannot read it. That never happens to a decoded record: the schema guarantees every
    field the steps read. (A hand-made record that fails may leave the steps before the
    failing one applied; each is idempotent, so applying the record again later is safe.)"""
    # Written out rather than through helpers, and every "if" before work: this runs for
    # every heartbeat, and a heartbeat seldom has an output.
    s = state
    out: list[Output] = []
    late: list[Mapping[str, Any]] = []
    transition: Transition | None = None
    if kind == "heartbeat":
        s.fleet, emitted, transition = fleet_state.apply_heartbeat(s.fleet, record, settings.fleet)
        if emitted is not None:
            out.append(("fleet_state", emitted))
    elif kind == "device_identity":
        s.fleet, emitted, _ = fleet_state.apply_identity(s.fleet, record, settings.fleet)
        if emitted is not None:
            out.append(("fleet_state", emitted))
    if kind in utilisation.KINDS:
        s.utilisation, windows, late = utilisation.apply(s.utilisation, kind, record, settings.utilisation)
        if windows:
            out += [("utilisation", r) for r in windows]
    if transition is not None:
        _alerts(s, out, *alert_device.process_transition(s.alerts, transition, s.fleet.device_id, s.fleet.site_id, settings.alerts))
    s.alerts, alerts = alert_device.process(s.alerts, kind, record, settings.alerts)
    if alerts:
        out += [("alert", r) for r in alerts]
    if open_count(s.alerts.book) != s.fleet.open_alert_count:
        _sync_alert_count(s, out, int(record["event_time"]), settings)
    return Outcome(s, out, late)


def tick(state: DeviceState, now_ms: int, settings: DeviceSettings = DeviceSettings()) -> Outcome:
    """Let event time `now_ms` pass for a printer that may be silent: offline detection,
    utilisation windows closing, quiet event alerts clearing."""
    s = copied(state)
    out: list[Output] = []
    step = fleet_state.check_offline(s.fleet, now_ms, settings.fleet)
    s.fleet = step.state
    _add(out, "fleet_state", step.record)
    if step.transition is not None:
        _alerts(s, out, *alert_device.process_transition(s.alerts, step.transition, s.fleet.device_id, s.fleet.site_id, settings.alerts))
    applied = utilisation.advance(s.utilisation, now_ms, settings.utilisation)
    s.utilisation = applied.state
    out += [("utilisation", r) for r in applied.records]
    _alerts(s, out, *alert_device.expire_quiet(s.alerts, now_ms))
    _sync_alert_count(s, out, now_ms, settings)
    if s.fleet is state.fleet and s.utilisation is state.utilisation and s.alerts is state.alerts and not out:
        return Outcome(state, [], [])  # unchanged: the agent need not write it again
    return Outcome(s, out, [])


def advise(
    state: DeviceState, catalogue: Sequence[advisories.Release], key: Ed25519PublicKey, at_ms: int
) -> tuple[DeviceState, list[Output], list[advisories.Release]]:
    """Advisories for the printer's firmware not sent before, and the releases whose
    signature failed (never advised; the agent logs them)."""
    f = state.fleet
    if not f.model_number or not f.firmware_release:
        return state, [], []
    device = advisories.Device(f.site_id, f.device_id, f.model_number, f.firmware_release, at_ms=at_ms)
    advice = advisories.advise(device, catalogue, key)
    log, new = advisories.unsent(state.advisories, advice.records)
    if not new:
        return state, [], advice.rejected
    return copied(state, advisories=log), [("update_advisory", dict(r)) for r in new], advice.rejected


def _add(out: list[Output], kind: str, record: dict[str, Any] | None) -> None:
    if record is not None:
        out.append((kind, record))


def _alerts(s: DeviceState, out: list[Output], alerts: DeviceAlertState, records: list[dict[str, Any]]) -> None:
    s.alerts = alerts
    if records:
        out += [("alert", r) for r in records]


def _sync_alert_count(s: DeviceState, out: list[Output], at_ms: int, settings: DeviceSettings) -> None:
    count = open_count(s.alerts.book)
    if count == s.fleet.open_alert_count:
        return
    step = fleet_state.set_open_alert_count(s.fleet, count, at_ms, settings.fleet)
    s.fleet = step.state
    _add(out, "fleet_state", step.record)
