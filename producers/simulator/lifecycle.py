"""The job flow of a printer: the transitions that take a job from the queue through
warm-up, printing and cooling to completion (or failure), and the build units with it.

    submit -> (kick) -> warm-up -> print_done -> cooled -> COMPLETED
                                 \\-> fail -> ERROR -> clear_error -> service -> idle
    at print end the build unit cools in the printer; when jobs wait and another unit is
    ready, the operator swaps it out after a short cool-down and it cools outside.

`HANDLERS` maps transition kinds to functions `(printer, t, payload) -> None`; only
`Printer.advance_to` calls them, in simulated-time order. Each handler draws from the
printer's generator only, so the result does not depend on polling.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Final

from producers.simulator import upkeep
from producers.simulator.catalogue import EVENTS, PRINTHEAD_SLOTS
from producers.simulator.jobs import new_job, plan_print
from producers.simulator.model import BuildUnit, Job, JobWarning, PrinterSession
from producers.simulator.wear import Segment

if TYPE_CHECKING:
    from producers.simulator.printer import Printer

MINUTE: Final = 60_000
HOUR: Final = 60 * MINUTE
CANCEL_RATE: Final = 0.03  # queued jobs the operator cancels instead of starting
SESSIONS_KEPT: Final = 20  # printer sessions a build unit remembers
MAX_QUEUE: Final = 10  # jobs a printer queues; build preparation holds back the rest


def on_submit(p: Printer, t: int, payload: Any) -> None:
    if payload != "initial":
        p.schedule(t + 1 + int(p.rng.expovariate(1.0 / p.submit_mean_ms)), "submit")
    if len(p.queue) >= MAX_QUEUE:
        return
    job = new_job(
        p.rng, number=p.new_job_number(), now_ms=t, people=p.people,
        material=p.material, envelope_mm=p.model.size_mm,
    )
    p.queue.append(job)
    p.remember(job)
    p.jobs_submitted += 1
    p.snapshot(t, job)
    p.emit(t, "job_received", job=job)
    kick(p, t)


def kick(p: Printer, t: int) -> None:
    """Start what can start now: a build-unit swap while cooling, or the next job."""
    if p.status == "ERROR":
        return
    spare = next((u for u in p.build_units if u.status == "EMPTY" and not u.in_printer), None)
    if p.activity == "COOLING_DOWN":
        if p.queue and spare is not None and p.inserted is not None and not p.unload_pending:
            p.unload_pending = True
            earliest = p.cooling_started_ms + p.rng.randint(20 * MINUTE, 40 * MINUTE)
            p.schedule(max(t, earliest), "unload", p.inserted)
        return
    if p.activity != "IDLE" or not p.queue or spare is None:
        return
    if p.status == "SLEEPING":
        p.status = "POWERED_ON"
        p.emit(t, "printer_wake")
    service_ms = upkeep.service(p, t, p.queue[0])
    if service_ms:
        p.set_activity(t, "MAINTENANCE", Segment(t, t + service_ms, agent_system=True))
        p.schedule(t + service_ms, "maint_done")
        return
    job = p.queue.popleft()
    if p.rng.random() < CANCEL_RATE:
        job.status, job.end_ms = "CANCELLED", t
        p.jobs_cancelled += 1
        p.snapshot(t, job)
        p.emit(t, "job_cancelled", job=job)
        p.add_log(t, "FRONT_PANEL", t - 10 * MINUTE, private=(job.name,), lines=(10, 40))
        kick(p, t)  # depth bounded by the queue length
        return
    _insert(p, t, spare, job)
    warm = p.rng.randint(10 * MINUTE, 20 * MINUTE)
    job.status, job.warmup_start_ms = "PREPARING", t
    step = warm // (len(job.parts) + 1)  # the printer processes parts one by one
    for i, part in enumerate(job.parts):
        part.processing_start_ms, part.processing_end_ms = t + i * step, t + (i + 1) * step
    p.base.jobs += 1
    p.current = job
    p.set_activity(t, "WARMING_UP", Segment(t, t + warm, lamp=True, agent_system=True))
    p.snapshot(t, job)
    p.emit(t, "warmup_started", job=job)
    p.schedule(t + warm, "warm_done", job)


def _insert(p: Printer, t: int, unit: BuildUnit, job: Job) -> None:
    powder = job.material_in_parts_kg + job.recyclable_kg / 0.82
    unit.in_printer, unit.status, unit.job = True, "LOADED", job
    unit.insertions += 1
    unit.quantity_kg = round(powder * p.rng.uniform(1.05, 1.2), 1)
    unit.recycled_pct = round(p.rng.uniform(70.0, 85.0), 1)  # typical PA12 refresh ratio
    unit.sessions.append(PrinterSession(p.model.model_number, p.serial, p.firmware, t))
    del unit.sessions[:-SESSIONS_KEPT]
    p.inserted = unit
    p.total_insertions += 1
    job.build_unit_serial = unit.serial
    p.emit(t, "build_unit_inserted", serial=unit.serial)


def on_warm_done(p: Printer, t: int, job: Job) -> None:
    assert p.inserted is not None
    plan_print(p.rng, job, t, p.base_layer_s(t))
    assert job.print_end_ms is not None and job.warmup_start_ms is not None
    job.status = p.inserted.status = "PRINTING"
    segment = Segment(t, job.print_end_ms, lamp=True, cooling=True, agent_system=True, job=job)
    p.set_activity(t, "PRINTING", segment)
    p.snapshot(t, job)
    p.emit(t, "job_started", job=job, layers=job.layer_count)
    p.add_log(t, "TROLLEY_WARMING", job.warmup_start_ms, lines=(30, 120))
    for warning in job.warnings:
        p.schedule(warning.raised_ms, "job_warning", (job, warning))
    if p.rng.random() < 0.35:
        p.schedule(t + int(p.rng.random() * (job.print_end_ms - t)), "printhead_wear", job)
    p.schedule(job.print_end_ms, "fail" if job.fail_kind else "print_done", job)


def on_job_warning(p: Printer, t: int, payload: tuple[Job, JobWarning]) -> None:
    job, warning = payload
    if job.status == "PRINTING":
        debug = {"layer": str(warning.layer), "warning_id": warning.warning_id}
        p.emit(t, warning.kind, job=job, debug=debug | upkeep.readings(p, warning.kind), layer=warning.layer)


def on_print_done(p: Printer, t: int, job: Job) -> None:
    unit = p.inserted
    assert unit is not None and job.warmup_start_ms is not None and job.print_start_ms is not None
    cool = p.rng.randint(3 * HOUR, 5 * HOUR)
    p.set_activity(t, "COOLING_DOWN", Segment(t, t + cool, cooling=True))
    p.cooling_started_ms = t
    job.status, job.cooling_end_ms = "COOLING", t + cool
    unit.status, unit.cooling_end_ms = "COOLING", t + cool
    p.base.parts += len(job.parts)
    p.snapshot(t, job)
    p.emit(t, "job_printed", job=job)
    p.add_log(t, "PRINTER_SESSION", job.warmup_start_ms, private=_job_private(job), lines=(200, 800))
    p.add_log(t, "LAMP_CONTROL", job.print_start_ms, lines=(100, 400))
    p.schedule(t + cool, "cooled", unit)
    upkeep.check_thresholds(p, t)
    kick(p, t)


def on_fail(p: Printer, t: int, job: Job) -> None:
    unit = p.inserted
    assert unit is not None and job.warmup_start_ms is not None and job.fail_kind is not None
    p.set_activity(t, "PAUSED")
    p.status, p.current = "ERROR", None
    job.status, job.end_ms = "FAILED", t
    p.jobs_failed += 1
    p.base.system_errors += 1
    p.base.parts += sum(1 for part in job.parts if part.last_layer < job.layers_printed)
    slot = p.rng.randrange(PRINTHEAD_SLOTS)
    if job.fail_kind == "fail_printhead":
        head = p.printheads[slot]
        head.failed, head.last_error_code, head.last_error_ms = True, EVENTS[job.fail_kind].code, t
    p.snapshot(t, job)
    debug = {"layer": str(job.layers_printed)} | upkeep.readings(p, job.fail_kind)
    p.emit(t, job.fail_kind, job=job, debug=debug, slot=slot, layer=job.layers_printed, serial=unit.serial)
    p.add_log(t, "PRINTER_SESSION", job.warmup_start_ms, private=_job_private(job), lines=(200, 800))
    # the aborted build still has to cool before it can be unpacked
    unit.status = "FAULTY" if job.fail_kind == "fail_build_unit_link" else "COOLING"
    cool = p.rng.randint(HOUR, 5 * HOUR // 2)
    unit.cooling_end_ms = t + cool
    p.schedule(t + cool, "cooled", unit)
    p.schedule(t + p.rng.randint(20 * MINUTE, 2 * HOUR), "clear_error")


def on_clear_error(p: Printer, t: int, _: Any) -> None:
    p.status = "POWERED_ON"
    p.emit(t, "error_cleared")
    p.add_log(t, "FRONT_PANEL", t - 30 * MINUTE, lines=(10, 60))
    p.boot_ms = t  # the operator restarts the printer to clear the fault
    p.emit(t, "printer_started", firmware=p.firmware)
    service_ms = upkeep.service(p, t, None) + p.rng.randint(10 * MINUTE, 25 * MINUTE)
    p.set_activity(t, "MAINTENANCE", Segment(t, t + service_ms, agent_system=True))
    p.schedule(t + service_ms, "maint_done")


def on_maint_done(p: Printer, t: int, _: Any) -> None:
    if p.needs_calibration:  # new printheads must be aligned before printing
        p.needs_calibration = False
        calibrate = p.rng.randint(8 * MINUTE, 15 * MINUTE)
        p.set_activity(t, "CALIBRATING", Segment(t, t + calibrate, agent_system=True))
        p.schedule(t + calibrate, "calibrated")
        return
    _after_service(p, t)


def on_calibrated(p: Printer, t: int, _: Any) -> None:
    p.emit(t, "calibration_done")
    _after_service(p, t)


def _after_service(p: Printer, t: int) -> None:
    if p.inserted is not None:  # the unit of a failed job is still inside
        on_unload(p, t, p.inserted)
    else:
        go_idle(p, t)


def on_cooled(p: Printer, t: int, unit: BuildUnit) -> None:
    unit.status = "READY_TO_UNPACK"
    job = unit.job
    if job is not None and job.status == "COOLING":
        job.status, job.end_ms = "COMPLETED", t
        p.base.completed_jobs += 1
        p.jobs_completed += 1
        p.snapshot(t, job)
        p.emit(t, "job_completed", job=job)
    if not unit.in_printer:
        p.schedule(t + _unpack_ms(p), "unpacked", unit)
    elif p.inserted is unit and p.activity == "COOLING_DOWN":
        p.add_log(t, "COOLING_SERVO", p.cooling_started_ms, lines=(60, 300))
        p.unload_pending = True
        on_unload(p, t, unit)
    # else: a failed job's unit inside a printer under service; unloaded after service


def on_unload(p: Printer, t: int, unit: BuildUnit) -> None:
    if p.inserted is not unit or p.activity == "UNLOADING_BUILD_UNIT":
        return
    p.set_activity(t, "UNLOADING_BUILD_UNIT")
    p.schedule(t + p.rng.randint(8 * MINUTE, 15 * MINUTE), "unload_done", unit)


def on_unload_done(p: Printer, t: int, unit: BuildUnit) -> None:
    session = unit.sessions[-1]
    session.disconnected_ms = t
    unit.usage_ms += t - session.connected_ms
    unit.in_printer = False
    p.inserted, p.unload_pending = None, False
    if p.current is not None and p.current is unit.job:
        p.current = None
    p.emit(t, "build_unit_removed", serial=unit.serial)
    p.add_log(t, "BUILD_MODULE", session.connected_ms, lines=(50, 300))
    if unit.status == "READY_TO_UNPACK":
        p.schedule(t + _unpack_ms(p), "unpacked", unit)
    go_idle(p, t)


def on_unpacked(p: Printer, t: int, unit: BuildUnit) -> None:
    unit.status, unit.job, unit.cooling_end_ms = "EMPTY", None, None
    unit.quantity_kg, unit.recycled_pct = 0.0, 0.0
    kick(p, t)


def go_idle(p: Printer, t: int) -> None:
    p.set_activity(t, "IDLE")
    p.idle_token += 1
    p.schedule(t + p.rng.randint(60 * MINUTE, 90 * MINUTE), "sleep", p.idle_token)
    kick(p, t)


def on_sleep(p: Printer, t: int, token: int) -> None:
    if token == p.idle_token and p.activity == "IDLE" and p.status == "POWERED_ON":
        p.status = "SLEEPING"
        p.emit(t, "printer_sleep")


def _unpack_ms(p: Printer) -> int:
    return p.rng.randint(45 * MINUTE, 2 * HOUR)  # unpacking, sieving, cleaning the unit


def _job_private(job: Job) -> tuple[str, ...]:
    return (job.name, job.file_path, job.user, job.computer)


HANDLERS: Final[dict[str, Callable[[Printer, int, Any], None]]] = {
    "submit": on_submit,
    "warm_done": on_warm_done,
    "job_warning": on_job_warning,
    "print_done": on_print_done,
    "fail": on_fail,
    "clear_error": on_clear_error,
    "maint_done": on_maint_done,
    "calibrated": on_calibrated,
    "cooled": on_cooled,
    "unload": on_unload,
    "unload_done": on_unload_done,
    "unpacked": on_unpacked,
    "sleep": on_sleep,
    **upkeep.HANDLERS,
}
