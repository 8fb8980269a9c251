"""Everything the alert agent does for one printer, as one step per input record.

The alert agent keeps one `DeviceAlertState` per device_id and calls

    process(state, kind, record, settings)          # every device record it consumes
    process_transition(state, transition, settings) # offline/online from the fleet agent
    expire_quiet(state, now_ms)                     # timer: quiet event alerts clear

each returning `(state, alert_records)`; `open_count(state.book)` feeds the fleet view's
`open_alert_count`. The step runs the rules of `streams.alert_rules`, keeps the wear
series and layer history of `streams.maintenance`, and passes every condition through
the lifecycle of `streams.alerts`. Idempotent: see those modules.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from streams import alert_rules as rules
from streams.alert_rules import PartsContext, RuleSettings
from streams.alerts import AlertBook, AlertSettings, Condition, expire, observe
from streams.errors import record_boundary
from streams.fleet_state import Transition
from streams.maintenance import (
    LayerHistory,
    MaintenanceSettings,
    TrendSeries,
    add_reading,
    observe_layer_duration,
    predict,
)
from streams.plain import PlainState, copied


@dataclass(frozen=True, slots=True)
class AlertDeviceSettings:
    alerts: AlertSettings = AlertSettings()
    rules: RuleSettings = RuleSettings()
    maintenance: MaintenanceSettings = MaintenanceSettings()


@dataclass(slots=True)
class DeviceAlertState(PlainState):
    book: AlertBook = field(default_factory=AlertBook)
    parts: PartsContext = field(default_factory=PartsContext)
    series: dict[str, TrendSeries] = field(default_factory=dict)
    layers: LayerHistory = field(default_factory=LayerHistory)


def process(
    state: DeviceAlertState, kind: str, record: Mapping[str, Any], settings: AlertDeviceSettings = AlertDeviceSettings()
) -> tuple[DeviceAlertState, list[dict[str, Any]]]:
    """Apply one record of `kind`. A heartbeat is folded into `state` in place (the hot
    path, see `streams.device`) and only PRINTING ones reach a rule; the other kinds,
    a few a minute per printer, are applied to a copy, so one that cannot be read leaves
    `state` as it was. A record it cannot read raises KeyError, TypeError or ValueError,
    which `device.apply` (the record boundary) turns into InvalidRecordError."""
    if kind == "heartbeat":
        return _heartbeat(state, record, settings)
    s = copied(state, series=dict(state.series))
    if not s.book.site_id:
        s.book = copied(s.book, site_id=str(record["site_id"]), device_id=str(record["device_id"]))
    s.parts = s.parts.learn(kind, record)
    r = settings.rules
    conds: list[Condition] = []
    if kind == "system_event":
        conds = rules.event_conditions(record, s.parts, r)
    elif kind == "printhead_system":
        conds = rules.printhead_conditions(record, r)
        for head in record.get("printheads") or []:
            conds += _wear(s, record, f"printhead-{head['slot']}", "printhead", f"Printhead in slot {head['slot']}",
                           str(head.get("part_number") or ""), float(head.get("usage_time_s") or 0) / 3600,
                           r.printhead_life_h, True, str(head.get("printhead_uuid") or ""), settings)
    elif kind == "cleaning_roll":
        conds = rules.cleaning_roll_conditions(record, r)
        conds += _wear(s, record, "cleaning-roll", "printhead-cleaning", "Printhead cleaning roll",
                       str(record.get("part_number") or ""), float(record.get("usage_pct") or 0.0),
                       r.cleaning_roll_end_pct, True, "", settings)
    elif kind == "usage_counters":
        conds = rules.counters_conditions(record, r)
        if record.get("lamp_usage_s") is not None:  # null: the source has no lamp counter
            conds += _wear(s, record, "lamp", "lamp", "Fusing lamp", r.lamp_part_number,
                           float(record["lamp_usage_s"]) / 3600, r.lamp_life_h, True, "", settings)
    elif kind == "agent_system":
        conds = rules.agent_conditions(record, r)
        for agent in record.get("agents") or []:
            kind_ = str(agent["agent_type"])
            conds += _wear(s, record, f"agent-{kind_}", "agent-supply", f"{kind_.capitalize()} agent cartridge",
                           r.agent_part_numbers.get(kind_, ""), float(agent.get("consumable_level_pct") or 0.0),
                           0.0, False, "", settings)
    elif kind == "build_unit":
        conds = rules.build_unit_conditions(record, r)
    return _observe_all(s, conds, settings)


def _heartbeat(
    s: DeviceAlertState, record: Mapping[str, Any], settings: AlertDeviceSettings
) -> tuple[DeviceAlertState, list[dict[str, Any]]]:
    if record.get("activity") != "PRINTING":
        return s, []
    t, value = int(record["event_time"]), float(record.get("recent_layer_duration_s") or 0.0)
    device_id, record_id = str(record["device_id"]), str(record["record_id"])
    job_id = str(record.get("current_job_id") or "")
    if not s.book.site_id:
        s.book = copied(s.book, site_id=str(record["site_id"]), device_id=device_id)
    s.layers, verdict = observe_layer_duration(s.layers, t, value, job_id, settings.maintenance)
    if verdict is None or not verdict.changed:  # nearly always: only a flip makes a condition
        return s, []
    conds = rules.layer_conditions(device_id, verdict, t, record_id, settings.maintenance.z_threshold)
    return _observe_all(s, conds, settings)


@record_boundary
def process_transition(
    state: DeviceAlertState, transition: Transition, device_id: str, site_id: str,
    settings: AlertDeviceSettings = AlertDeviceSettings(),
) -> tuple[DeviceAlertState, list[dict[str, Any]]]:
    """Offline raises, online clears the printer-offline alert."""
    s = copied(state)
    if not s.book.site_id:
        s.book = copied(s.book, site_id=site_id, device_id=device_id)
    return _observe_all(s, rules.offline_conditions(device_id, transition, settings.rules), settings)


def expire_quiet(state: DeviceAlertState, now_ms: int) -> tuple[DeviceAlertState, list[dict[str, Any]]]:
    book, out = expire(state.book, now_ms)
    return (state if book is state.book else copied(state, book=book)), out


def _observe_all(
    s: DeviceAlertState, conds: list[Condition], settings: AlertDeviceSettings
) -> tuple[DeviceAlertState, list[dict[str, Any]]]:
    out: list[dict[str, Any]] = []
    for cond in conds:
        s.book, records = observe(s.book, cond, settings.alerts)
        out += records
    return s, out


def _wear(
    s: DeviceAlertState, record: Mapping[str, Any], item: str, subsystem: str, description: str, part: str,
    value: float, threshold: float, rising: bool, item_id: str, settings: AlertDeviceSettings,
) -> list[Condition]:
    """Add a wear reading to the item's series and turn its prediction into a condition."""
    t = int(record["event_time"])
    series = s.series.get(item) or TrendSeries(rising=rising)
    s.series[item] = add_reading(series, t, value, item_id, settings.maintenance)
    prediction = predict(s.series[item], threshold, t, settings.maintenance)
    is_open = f"predicted-wear:{record['device_id']}:{item}" in s.book.open
    return rules.rul_conditions(str(record["device_id"]), item, subsystem, description, part, prediction, t,
                                str(record["record_id"]), settings.rules, is_open=is_open)
