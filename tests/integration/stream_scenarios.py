"""Scripted printer scenarios for the stream-worker tests: each a list of (kind, record)
for one printer, built on the realistic sample records, playing out one alert rule from
the condition arising to its resolution."""

from __future__ import annotations

import random
from typing import Any

from schemas.samples import sample_record

HOUR_MS = 3_600_000
Record = dict[str, Any]
Step = tuple[str, Record]


class Printer:
    """One printer of a test site: makes records with its envelope and unique ids."""

    def __init__(self, site_id: str, device_id: str, t0: int) -> None:
        self.site_id, self.device_id, self.t0 = site_id, device_id, t0
        self._n = 0

    def record(self, kind: str, t: int, **fields: Any) -> Step:
        self._n += 1
        base = sample_record(kind, seed=3)
        return kind, {**base, "site_id": self.site_id, "device_id": self.device_id, "event_time": t,
                      "record_id": f"{self.device_id}-{kind}-{self._n}", **fields}

    def heartbeat(self, t: int, *, activity: str = "PRINTING", layer_s: float = 9.5, layers_done: int = 100, job: str = "J1") -> Step:
        return self.record("heartbeat", t, status="POWERED_ON", activity=activity, current_job_id=job,
                           layers_done=layers_done, layers_total=5000, recent_layer_duration_s=layer_s,
                           pending_job_count=2, cooling_remaining_s=0.0)

    def identity(self, t: int, firmware: str, model: str = "M0P44A") -> Step:
        return self.record("device_identity", t, firmware_release=firmware, model_number=model)

    def event(self, t: int, code: str, severity: str, subsystem: str, n: int = 0) -> Step:
        return self.record("system_event", t, code=code, severity=severity, subsystem=subsystem,
                           event_id=f"{self.device_id}-E{n}-{t}", description="Printhead failure detected")


def event_storm(p: Printer, times: int, code: str = "0057-0001-0053") -> list[Step]:
    """A printhead error repeated `times` times a second apart, then the operator clears it.
    A printhead_system record first, so the alert knows the printhead's part number."""
    steps = [p.record("printhead_system", p.t0 - 1000)]
    steps += [p.event(p.t0 + i * 1000, code, "ERROR", "printhead", i) for i in range(times)]
    steps.append(p.event(p.t0 + times * 1000 + 60_000, "0001-0002-0001", "INFO", "system", times))
    return steps


def cleaning_roll_wear(p: Printer) -> list[Step]:
    """A cleaning roll used 1.5 % an hour from 50 % until 99 %, then replaced (3 %)."""
    steps = []
    for h in range(34):
        pct = 50.0 + 1.5 * h
        status = "OK" if pct < 80 else "LOW" if pct < 95 else "VERY_LOW"
        steps.append(p.record("cleaning_roll", p.t0 + h * HOUR_MS, usage_pct=pct, status=status, part_number="3ED60A"))
    steps.append(p.record("cleaning_roll", p.t0 + 34 * HOUR_MS, usage_pct=3.0, status="OK", part_number="3ED60A"))
    steps.append(p.record("cleaning_roll", p.t0 + 35 * HOUR_MS, usage_pct=4.5, status="OK", part_number="3ED60A"))
    return steps


def slow_layers(p: Printer, seed: int) -> list[Step]:
    """Layers at a steady 9.5 s (with noise) for 60 heartbeats, 8 at 25 s, 40 back at 9.5 s."""
    rng = random.Random(seed)
    durations = [9.5 + rng.uniform(-0.2, 0.2) for _ in range(60)] + [25.0] * 8 + [9.5 + rng.uniform(-0.2, 0.2) for _ in range(40)]
    return [p.heartbeat(p.t0 + i * 30_000, layer_s=d, layers_done=100 + 3 * i) for i, d in enumerate(durations)]


def printhead_wear(p: Printer) -> list[Step]:
    """The printhead in slot 0, hourly: usage climbing from 1,250 h past 90 % of a typical
    life (1,260 of 1,400 h), its warranty ending in 20 days, non-genuine agent reported
    from the sixth hour; then a new printhead (new uuid, 10 h, in warranty, genuine)."""
    base = dict(sample_record("printhead_system", seed=3)["printheads"][0], slot=0, status="OK", part_number="3ED59A")
    today = p.t0 // (24 * HOUR_MS)
    steps = []
    for h in range(16):
        head = {**base, "usage_time_s": (1_250 + h) * 3600, "warranty_status": "IN_WARRANTY",
                "warranty_expiry_date": today + 20, "non_genuine_agent_notice": h >= 5, "expired_agent_notice": False}
        steps.append(p.record("printhead_system", p.t0 + h * HOUR_MS, printheads=[head]))
    new = {**base, "printhead_uuid": "new-head", "usage_time_s": 10 * 3600, "warranty_status": "IN_WARRANTY",
           "warranty_expiry_date": today + 700, "non_genuine_agent_notice": False, "expired_agent_notice": False}
    steps.append(p.record("printhead_system", p.t0 + 16 * HOUR_MS, printheads=[new]))
    return steps


def filter_and_lamp(p: Printer) -> list[Step]:
    """Usage counters, hourly: the air filter goes REPLACE_SOON, then REPLACE_NOW, then is
    replaced (OK); the fusing lamp passes 90 % of a typical life (13,500 of 15,000 h) and
    is replaced (lamp hours back to 2)."""
    filters = ["OK"] * 3 + ["REPLACE_SOON"] * 3 + ["REPLACE_NOW"] * 3 + ["OK"] * 3
    steps = []
    for h, status in enumerate(filters):
        lamp_h = 13_490 + 2 * h if h < 10 else 2 + h - 10
        steps.append(p.record("usage_counters", p.t0 + h * HOUR_MS, filter_status=status, lamp_usage_s=lamp_h * 3600))
    return steps


def agents_run_low(p: Printer) -> list[Step]:
    """Agent levels, hourly: the fusing agent falls from 40 % to empty and is replaced; the
    detailing agent cartridge reports EXPIRED for three hours, then a fresh one."""
    base = sample_record("agent_system", seed=3)["agents"]
    fusing = [(40.0, "OK"), (30.0, "OK"), (18.0, "LOW"), (8.0, "VERY_LOW"), (0.0, "EMPTY"), (100.0, "OK"), (99.0, "OK")]
    steps = []
    for h, (level, status) in enumerate(fusing):
        agents = [{**base[0], "agent_type": "FUSING", "consumable_level_pct": level, "consumable_status": status},
                  {**base[1], "agent_type": "DETAILING", "consumable_level_pct": 80.0,
                   "consumable_status": "EXPIRED" if 1 <= h <= 3 else "OK"}]
        steps.append(p.record("agent_system", p.t0 + h * HOUR_MS, agents=agents))
    return steps


def non_genuine_material(p: Printer) -> list[Step]:
    """A build unit reporting non-genuine material for three hours, then a genuine one."""
    unit = sample_record("build_unit", seed=3)["installed_build_unit"]
    return [p.record("build_unit", p.t0 + h * HOUR_MS,
                     installed_build_unit={**unit, "non_genuine_material_notice": 1 <= h <= 3, "expired_material_notice": False})
            for h in range(6)]
