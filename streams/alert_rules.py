"""Alert rules: input records -> `Condition`s for `streams.alerts.observe`.

Each rule is a pure function of one record (plus the device's known part numbers) and
returns conditions for its dedup keys, active or not; an inactive condition for a key
with no open alert is a no-op, so rules need not remember what they raised. Keys are
`<rule>:<device_id>[:<subject>]`: one open alert per printer and subject, e.g. per event
code, per printhead slot, per agent type.

Called by `streams.alert_device.process`, which also feeds maintenance predictions and
offline transitions through `rul_conditions`, `layer_conditions`, `offline_conditions`.

Confidence (how sure a rule is that its condition holds; the alert record's
`confidence`):
- 1.0 for what the printer reports itself (events, statuses, notices, levels, usage %,
  warranty dates) and for offline (no heartbeat arrived: observed, not inferred);
- `nominal_life_confidence` (0.8) where only our hours against a typical service life
  say a part is worn (printhead hours, lamp hours): parts vary, the printer has not said;
- predicted wear: the prediction's own confidence (r^2 of the trend's fit x how many
  readings x how far it is extrapolated, see `streams.maintenance`), 1.0 once crossed;
- layer anomalies: |z| / (2 x the z threshold), capped at 1: 0.5 just past the
  threshold, 1.0 at twice as far outside the printer's recent history.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from streams.alerts import SEVERITY_RANK, Condition, Part
from streams.fleet_state import Transition
from streams.maintenance import LayerVerdict, Prediction
from streams.plain import PlainState

DAY_MS: Final = 86_400_000
REPORTED: Final = 1.0  # confidence in what the printer reports, or in what we observed
FAILURE_CODES: Final = ("0057-0001-0053", "0040-0001-0002", "0030-0001-0001", "0020-0001-0009", "0203-0002-0004")
# Event codes (the maker's catalogue, as producers/simulator/catalogue.py has them) whose
# arrival clears the alerts of other codes: the error was cleared, the part replaced.
DEFAULT_CLEARS: Final[Mapping[str, tuple[str, ...]]] = {
    "0001-0002-0001": FAILURE_CODES,  # error cleared by the operator
    "0061-0002-0011": ("0061-0002-0010",),  # cleaning roll replaced
    "0057-0002-0051": ("0057-0002-0050", "0057-0002-0040", "0057-0002-0031"),  # printhead replaced
    "0070-0001-0011": ("0070-0001-0010",),  # agent cartridge replaced
    "0082-0001-0012": ("0082-0001-0010", "0082-0001-0011"),  # air filter replaced
}


@dataclass(frozen=True, slots=True)
class RuleSettings:
    min_event_severity: str = "WARNING"
    event_quiet_s: float = 6 * 3600.0  # an event alert clears after this long without one
    clears: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: dict(DEFAULT_CLEARS))
    printhead_life_h: float = 1400.0
    printhead_warn_fraction: float = 0.9
    warranty_warn_days: int = 30
    cleaning_roll_warn_pct: float = 80.0
    cleaning_roll_end_pct: float = 95.0
    agent_warn_pct: float = 20.0
    lamp_life_h: float = 15_000.0
    lamp_warn_fraction: float = 0.9
    # Part numbers the input records do not carry; descriptions are used without them.
    agent_part_numbers: Mapping[str, str] = field(default_factory=dict)
    filter_part_number: str = ""
    lamp_part_number: str = ""
    rul_horizon_days: float = 7.0
    rul_min_confidence: float = 0.5
    nominal_life_confidence: float = 0.8  # wear judged by hours against a typical life


@dataclass(slots=True)
class PartsContext(PlainState):
    """Part numbers of the device's installed consumables, learned from its records."""

    printhead: str = ""
    cleaning_roll: str = ""
    build_unit: str = ""

    def learn(self, kind: str, record: Mapping[str, Any]) -> PartsContext:
        """A copy updated from a consumable record of `kind` (others change nothing)."""
        heads = record.get("printheads") or [] if kind == "printhead_system" else []
        unit = record.get("installed_build_unit") if kind == "build_unit" else None
        return PartsContext(
            printhead=str(heads[0]["part_number"]) if heads else self.printhead,
            cleaning_roll=str(record["part_number"]) if kind == "cleaning_roll" else self.cleaning_roll,
            build_unit=str(unit["part_number"]) if unit and unit.get("part_number") else self.build_unit,
        )


def _parts(number: str, description: str, quantity: int = 1) -> tuple[Part, ...]:
    return (Part(number or "UNKNOWN", description, quantity),) if number else ()


def _cond(rule: str, device: str, subject: str, record: Mapping[str, Any], active: bool, **kw: Any) -> Condition:
    key = f"{rule}:{device}" + (f":{subject}" if subject else "")
    return Condition(rule, key, active, int(record["event_time"]), str(record["record_id"]), **kw)


def offline_conditions(device_id: str, transition: Transition, settings: RuleSettings = RuleSettings()) -> list[Condition]:
    """Printer offline (raised) and back online (cleared)."""
    offline = transition.kind == "offline"
    return [Condition(
        "printer-offline", f"printer-offline:{device_id}", offline, transition.at_ms,
        f"{transition.kind}:{transition.at_ms}", severity="WARNING", subsystem="network",
        summary="Printer sends no heartbeats (offline)",
        recommended_action="Check that the printer is switched on and reachable from the site collector PC "
        "(network cable, host name/IP, collector running).",
        evidence="no heartbeat for the configured number of intervals", confidence=REPORTED,
    )]


def event_conditions(record: Mapping[str, Any], parts: PartsContext, settings: RuleSettings = RuleSettings()) -> list[Condition]:
    """A system event at or above `min_event_severity` raises/updates the alert of its
    code (occurrences counted); a clearing code (error cleared, part replaced) clears
    the codes it resolves."""
    device, code = str(record["device_id"]), str(record["code"])
    out = [
        _cond("system-event", device, other, record, False, source_event_code=other)
        for other in settings.clears.get(code, ())
    ]
    severity = str(record.get("severity") or "UNKNOWN")
    if SEVERITY_RANK.get(severity, 0) < SEVERITY_RANK[settings.min_event_severity]:
        return out
    subsystem = str(record.get("subsystem") or "")
    failure = SEVERITY_RANK[severity] >= SEVERITY_RANK["ERROR"]
    out.append(_cond(
        "system-event", device, code, record, True, severity=severity, subsystem=subsystem or None,
        summary=f"{record.get('description') or 'Printer event'} (code {code})",
        recommended_action=(
            f"Check the {subsystem or 'printer'} subsystem; see the printer's troubleshooting page for {code}."
            + (" A technician visit is likely: bring the listed parts." if failure else "")
        ),
        parts=_event_parts(subsystem, parts) if failure or code in _PART_CODES else (),
        source_event_code=code, notify_service=failure, quiet_clear_s=settings.event_quiet_s, countable=True,
    ))
    return out


_PART_CODES: Final = frozenset({"0057-0002-0050", "0057-0002-0040", "0061-0002-0010"})


def _event_parts(subsystem: str, parts: PartsContext) -> tuple[Part, ...]:
    if subsystem == "printhead":
        return _parts(parts.printhead, "Printhead")
    if subsystem == "printhead-cleaning":
        return _parts(parts.cleaning_roll, "Printhead cleaning roll")
    if subsystem == "build-unit":
        return _parts(parts.build_unit, "Build unit")
    return ()


def printhead_conditions(record: Mapping[str, Any], settings: RuleSettings = RuleSettings()) -> list[Condition]:
    """Per slot: near end of life or failed; warranty ending or void; non-genuine or
    expired agent notices."""
    device, out = str(record["device_id"]), []
    today = int(record["event_time"]) // DAY_MS
    life_s = settings.printhead_life_h * 3600
    for head in record.get("printheads") or []:
        slot, status = str(head["slot"]), str(head.get("status") or "")
        part = _parts(str(head.get("part_number") or ""), f"Printhead ({head.get('printhead_type') or 'slot ' + slot})")
        used = float(head.get("usage_time_s") or 0) / life_s
        reported = status in ("REPLACE_SOON", "FAILED")
        worn = reported or used >= settings.printhead_warn_fraction
        out.append(_cond(
            "printhead-life", device, slot, record, worn, severity="ERROR" if status == "FAILED" else "WARNING",
            subsystem="printhead", parts=part, notify_service=True,
            confidence=REPORTED if reported else settings.nominal_life_confidence,
            evidence="reported by the printer" if reported else "usage hours against a typical printhead life",
            summary=f"Printhead in slot {slot} {'failed' if status == 'FAILED' else 'near end of life'} "
            f"({used:.0%} of {settings.printhead_life_h:,.0f} h used)",
            recommended_action=f"Replace the printhead in slot {slot} at the next service.",
        ))
        expiry, warranty = head.get("warranty_expiry_date"), str(head.get("warranty_status") or "")
        ending = expiry is not None and 0 <= int(expiry) - today <= settings.warranty_warn_days
        out.append(_cond(
            "printhead-warranty", device, slot, record, warranty in ("OUT_OF_WARRANTY", "VOID") or ending,
            severity="WARNING" if warranty == "VOID" else "INFO", subsystem="printhead", parts=part,
            summary=f"Printhead in slot {slot}: warranty " + (
                "void" if warranty == "VOID" else "expired" if warranty == "OUT_OF_WARRANTY" else "ends soon"),
            recommended_action="Plan the printhead's replacement; repairs are no longer covered."
            if warranty in ("OUT_OF_WARRANTY", "VOID") else "Have the printhead checked while it is under warranty.",
        ))
        for notice, what in (("non_genuine_agent_notice", "non-genuine"), ("expired_agent_notice", "expired")):
            out.append(_cond(
                "supplies", device, f"printhead-{slot}-{what}", record, bool(head.get(notice)),
                severity="WARNING", subsystem="agent-supply",
                summary=f"Printhead in slot {slot} reports {what} agent",
                recommended_action="Replace the agent cartridge with a genuine, in-date one; "
                "non-genuine agent can void the printhead warranty.",
            ))
    return out


def cleaning_roll_conditions(record: Mapping[str, Any], settings: RuleSettings = RuleSettings()) -> list[Condition]:
    pct, status = float(record.get("usage_pct") or 0.0), str(record.get("status") or "")
    low = pct >= settings.cleaning_roll_warn_pct or status in ("LOW", "VERY_LOW", "EMPTY")
    end = pct >= settings.cleaning_roll_end_pct or status in ("VERY_LOW", "EMPTY")
    return [_cond(
        "cleaning-roll", str(record["device_id"]), "", record, low, severity="ERROR" if end else "WARNING",
        subsystem="printhead-cleaning", parts=_parts(str(record.get("part_number") or ""), "Printhead cleaning roll"),
        summary=f"Printhead cleaning roll {pct:.0f} % used", notify_service=end,
        recommended_action="Replace the printhead cleaning roll" + (" now." if end else " at the next service."),
    )]


def counters_conditions(record: Mapping[str, Any], settings: RuleSettings = RuleSettings()) -> list[Condition]:
    """Air filter status and fusing-lamp hours from usage counters."""
    device = str(record["device_id"])
    status = str(record.get("filter_status") or "")
    out = [
        _cond(
            "air-filter", device, "", record, status in ("REPLACE_SOON", "REPLACE_NOW", "MISSING"),
            severity="WARNING" if status == "REPLACE_SOON" else "ERROR", subsystem="cooling",
            parts=_parts(settings.filter_part_number, "Air filter"),
            summary=f"Air filter: {status.replace('_', ' ').lower()}",
            recommended_action="Replace the air filter" + (" soon." if status == "REPLACE_SOON" else " now."),
        ),
    ]
    if record.get("lamp_usage_s") is None:
        return out  # a source without a lamp counter (usage_counters v2) says nothing of the lamp
    hours = float(record["lamp_usage_s"]) / 3600
    lamp_due = hours >= settings.lamp_warn_fraction * settings.lamp_life_h
    return out + [
        _cond(
            "lamp-hours", device, "", record, lamp_due, severity="WARNING", subsystem="lamp",
            parts=_parts(settings.lamp_part_number, "Fusing lamp"), notify_service=True,
            confidence=settings.nominal_life_confidence, evidence="lamp hours against a typical lamp life",
            summary=f"Fusing lamp at {hours:,.0f} h of about {settings.lamp_life_h:,.0f} h",
            recommended_action="Have the fusing lamp checked and plan its replacement.",
        ),
    ]


def agent_conditions(record: Mapping[str, Any], settings: RuleSettings = RuleSettings()) -> list[Condition]:
    """Per agent type: level low / empty / missing / faulty, and expired supplies."""
    device, out = str(record["device_id"]), []
    for agent in record.get("agents") or []:
        kind, status = str(agent["agent_type"]), str(agent.get("consumable_status") or "")
        level = float(agent.get("consumable_level_pct") or 0.0)
        part = _parts(settings.agent_part_numbers.get(kind, ""), f"{kind.capitalize()} agent cartridge")
        low = status in ("LOW", "VERY_LOW", "EMPTY", "MISSING", "FAULTY") or level <= settings.agent_warn_pct
        out.append(_cond(
            "agent-level", device, kind, record, low,
            severity="ERROR" if status in ("EMPTY", "MISSING", "FAULTY") else "WARNING", subsystem="agent-supply",
            parts=part, summary=f"{kind.capitalize()} agent: {level:.0f} % left ({status.replace('_', ' ').lower()})",
            recommended_action=f"Have a {kind.lower()} agent cartridge ready and replace it before the next job.",
        ))
        out.append(_cond(
            "supplies", device, f"agent-{kind}-expired", record, status == "EXPIRED", severity="WARNING",
            subsystem="agent-supply", parts=part, summary=f"{kind.capitalize()} agent cartridge expired",
            recommended_action="Replace the expired cartridge; expired agent affects part quality.",
        ))
    return out


def build_unit_conditions(record: Mapping[str, Any], settings: RuleSettings = RuleSettings()) -> list[Condition]:
    device, unit = str(record["device_id"]), record.get("installed_build_unit") or {}
    out = []
    for notice, what in (("non_genuine_material_notice", "non-genuine"), ("expired_material_notice", "expired")):
        out.append(_cond(
            "supplies", device, f"material-{what}", record, bool(unit.get(notice)), severity="WARNING",
            subsystem="build-unit", summary=f"Build unit reports {what} build material",
            recommended_action="Use genuine, in-date material; results with this powder are not guaranteed.",
        ))
    return out


def rul_conditions(
    device_id: str, item: str, subsystem: str, description: str, part_number: str,
    prediction: Prediction | None, at_ms: int, source_id: str, settings: RuleSettings = RuleSettings(),
    *, is_open: bool = False,
) -> list[Condition]:
    """Raised while the wear trend of `item` crosses its end of life within the horizon
    (or has crossed), with the expected date; cleared when it no longer does (replaced).
    An open alert stays open up to 1.5 x the horizon and half the confidence, so a
    prediction wobbling around the limits does not raise and clear it by turns."""
    slack = 1.5 if is_open else 1.0
    horizon = at_ms + slack * settings.rul_horizon_days * DAY_MS
    min_confidence = settings.rul_min_confidence * (0.5 if is_open else 1.0)
    active = prediction is not None and prediction.crossing_at_ms is not None and (
        prediction.crossed
        or (prediction.crossing_at_ms <= horizon and prediction.confidence >= min_confidence)
    )
    p = prediction
    return [Condition(
        "predicted-wear", f"predicted-wear:{device_id}:{item}", active, at_ms, source_id, severity="WARNING",
        subsystem=subsystem, parts=_parts(part_number, description), notify_service=True,
        summary=f"{description} will reach end of life" + (f" (wear {p.rate_per_day:+.2f}/day)" if p else ""),
        recommended_action=f"Schedule the replacement of the {description.lower()} before the expected date.",
        predicted_failure_at=p.crossing_at_ms if p else None, confidence=p.confidence if p else 0.0,
        evidence="trend of recent readings",
    )]


def layer_conditions(
    device_id: str, verdict: LayerVerdict, at_ms: int, source_id: str, z_threshold: float = 3.5
) -> list[Condition]:
    """Layers much slower (or faster) than this printer's recent normal. `z_threshold`
    is the detector's (`MaintenanceSettings.z_threshold`); confidence grows from 0.5
    there to 1.0 at twice that distance."""
    if not verdict.changed:
        return []
    slower = verdict.value_s > verdict.median_s
    return [Condition(
        "layer-duration", f"layer-duration:{device_id}", verdict.anomalous, at_ms, source_id, severity="WARNING",
        subsystem="print-engine",
        summary=f"Layers take {verdict.value_s:.1f} s against a usual {verdict.median_s:.1f} s "
        f"({'slower' if slower else 'faster'} than this printer's recent history)",
        recommended_action="Check print-data transfer, recoater and lamp warnings; compare the print mode.",
        confidence=min(1.0, abs(verdict.z) / (2 * z_threshold)), evidence=f"robust z-score {verdict.z:.1f}",
    )]
