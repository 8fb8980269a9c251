"""Upkeep of a printer: consumables that run low and get replaced, printhead wear and
errors, background events from sensors and subsystems, and logs rolled over on a timer.

`service` and `check_thresholds` are called by the job flow (`lifecycle.py`) at the
moments an operator would act; `HANDLERS` are transitions of their own. All draw from the
printer's generator in transition order.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Final

from producers.simulator import initial
from producers.simulator.catalogue import (
    AGENT_CARTRIDGE_CM3,
    BACKGROUND,
    EVENTS,
    PERIODIC_LOGS,
    PRINTHEAD_LIFE_S,
)
from producers.simulator.model import AgentCartridge, AirFilter, Job
from producers.simulator.wear import (
    cartridge_level_pct,
    filter_status,
    printhead_usage_s,
    roll_usage_pct,
)

if TYPE_CHECKING:
    from producers.simulator.printer import Printer

MINUTE: Final = 60_000
HOUR: Final = 60 * MINUTE


def service(p: Printer, t: int, next_job: Job | None) -> int:
    """Replace what is worn out before the next job (or after an error); returns the
    service time in ms (0 when nothing was due). Emits an event per replacement."""
    totals = p.totals_at(t)
    rng = p.rng
    service_ms = 0
    if roll_usage_pct(p.roll, totals) >= 90.0:
        p.roll = initial.cleaning_roll(rng, totals, t, used=False)
        p.emit(t, "cleaning_roll_replaced", debug={"roll_serial": p.roll.serial})
        service_ms += rng.randint(8 * MINUTE, 15 * MINUTE)
    for i, head in enumerate(p.printheads):
        if head.failed or printhead_usage_s(head, totals) >= 0.97 * PRINTHEAD_LIFE_S:
            old = head.serial
            p.printheads[i] = initial.new_printhead(rng, p.model, head.slot, totals, t, history=False)
            p.needs_calibration = True
            p.emit(t, "printhead_replaced", debug={"slot": str(head.slot), "old_serial": old}, slot=head.slot)
            service_ms += rng.randint(15 * MINUTE, 25 * MINUTE)
    if filter_status(p.air_filter, totals) == "REPLACE_NOW":
        p.air_filter = AirFilter(installed_ms=t, cooling_ms_at_install=totals.cooling_ms)
        p.emit(t, "filter_replaced")
        service_ms += rng.randint(8 * MINUTE, 12 * MINUTE)
    for agent, cartridge in list(p.cartridges.items()):
        level = cartridge_level_pct(cartridge, totals)
        # capped: a job needing more than a cartridge would otherwise be serviced forever
        need = min(0.8 * AGENT_CARTRIDGE_CM3, next_job.agent_cm3.get(agent, 0.0) if next_job else 0.0)
        if level < 15.0 or level / 100.0 * AGENT_CARTRIDGE_CM3 < 1.1 * need:
            p.cartridges[agent] = AgentCartridge(agent, t, totals.agent_cm3.get(agent, 0.0), p.total_insertions)
            p.emit(t, "agent_replaced", debug={"level_pct": f"{level:.1f}"}, agent=agent.capitalize())
            service_ms += rng.randint(3 * MINUTE, 6 * MINUTE)
    if service_ms:  # the operator's front-panel session; logs never lie in the future
        p.add_log(t, "FRONT_PANEL", t - 5 * MINUTE, lines=(10, 60))
    return service_ms


def check_thresholds(p: Printer, t: int) -> None:
    """Warn once per consumable when it crosses into LOW / REPLACE_SOON territory."""
    totals = p.totals_at(t)
    pct = roll_usage_pct(p.roll, totals)
    if pct >= 80.0 and not p.roll.low_reported:
        p.roll.low_reported = True
        p.emit(t, "cleaning_roll_low", debug={"usage_pct": f"{pct:.1f}"}, pct=round(pct))
    for head in p.printheads:
        if printhead_usage_s(head, totals) >= 0.9 * PRINTHEAD_LIFE_S and not head.replace_soon_reported:
            head.replace_soon_reported = True
            p.emit(t, "printhead_replace_soon", debug={"slot": str(head.slot)}, slot=head.slot)
    status = filter_status(p.air_filter, totals)
    if status != "OK" and status != p.air_filter.reported:
        p.air_filter.reported = status
        p.emit(t, "filter_replace_soon" if status == "REPLACE_SOON" else "filter_replace_now")
    for agent, cartridge in p.cartridges.items():
        level = cartridge_level_pct(cartridge, totals)
        if level < 20.0 and not cartridge.low_reported:
            cartridge.low_reported = True
            p.emit(t, "agent_low", debug={"level_pct": f"{level:.1f}"}, agent=agent.capitalize(), pct=round(level))


def readings(p: Printer, kind: str) -> dict[str, str]:
    """Sensor values a printer attaches to an event of `kind` (debug details)."""
    rng = p.rng
    subsystem = EVENTS[kind].subsystem
    if subsystem in ("lamp", "thermal"):
        return {"lamp_temp_c": f"{rng.uniform(150.0, 195.0):.1f}", "bed_temp_c": f"{rng.uniform(165.0, 178.0):.1f}"}
    if subsystem == "build-unit":
        return {"recoater_current_a": f"{rng.uniform(0.8, 2.4):.2f}", "powder_level_pct": f"{rng.uniform(5.0, 60.0):.0f}"}
    if subsystem == "printhead":
        return {"nozzles_out": str(rng.randint(0, 180)), "head_temp_c": f"{rng.uniform(48.0, 62.0):.1f}"}
    if subsystem == "sensor":
        return {"sensor": "ambient_rh", "value": f"{rng.uniform(8.0, 85.0):.1f}"}
    if subsystem in ("storage", "memory"):
        return {"used_pct": f"{rng.uniform(80.0, 97.0):.1f}"}
    return {"fw_module": subsystem}


def on_printhead_wear(p: Printer, t: int, job: Job) -> None:
    """During a print a printhead needs recovery, reports an error, or flags its agent."""
    if p.activity != "PRINTING" or p.current is not job:
        return
    head = p.printheads[p.rng.randrange(len(p.printheads))]
    r = p.rng.random()
    debug = {"slot": str(head.slot)} | readings(p, "printhead_error")
    if r < 0.6:
        head.recovery_level = min(4, head.recovery_level + 1)
        p.emit(t, "printhead_recovery", job=job, debug=debug, slot=head.slot, level=head.recovery_level)
    elif r < 0.9:
        head.last_error_code, head.last_error_ms = EVENTS["printhead_error"].code, t
        p.emit(t, "printhead_error", job=job, debug=debug, slot=head.slot)
    elif r < 0.95:
        head.non_genuine_notice = True
        p.emit(t, "non_genuine_agent", debug=debug, slot=head.slot)
    else:
        head.expired_notice = True
        p.emit(t, "expired_agent", debug=debug, slot=head.slot)


def on_background(p: Printer, t: int, _: Any) -> None:
    p.schedule(t + 1 + int(p.rng.expovariate(1.0 / (2.5 * HOUR))), "background")
    kind = p.rng.choice(BACKGROUND)
    p.emit(t, kind, debug=readings(p, kind))


def on_periodic_log(p: Printer, t: int, log_type: str) -> None:
    period = int(PERIODIC_LOGS[log_type] * HOUR)
    p.add_log(t, log_type, t - period, lines=(50, 400))
    p.schedule(t + period, "periodic_log", log_type)


HANDLERS: Final[dict[str, Callable[[Printer, int, Any], None]]] = {
    "printhead_wear": on_printhead_wear,
    "background": on_background,
    "periodic_log": on_periodic_log,
}
