"""What each endpoint of a printer's API returns, as JSON-ready dicts (docs/printer-api.md).

Field names are the Avro field names of the matching schema (without the envelope's
record_id, schema_version, site_id and device_id); timestamps are int ms since the
epoch, dates int days since the epoch, enums their symbols. Private data sits in keys
named for what it is (`job_name`, `user_name`, ...). Called by `Fleet.read` with a printer
already advanced to `now`; nothing here changes the printer (log digests are cached).
"""

from __future__ import annotations

from typing import Any, Final

from producers.simulator import logtext
from producers.simulator.catalogue import AGENT_TYPES, BUILD_UNIT_PART, CLEANING_ROLL_PART
from producers.simulator.jobview import render_job
from producers.simulator.printer import Printer
from producers.simulator.wear import (
    cartridge_level_pct,
    cartridge_status,
    carriage_cycles,
    filter_status,
    intermediate_tanks_used,
    printhead_agent_cm3,
    printhead_maintenance_cycles,
    printhead_status,
    printhead_usage_s,
    roll_status,
    roll_usage_pct,
    warranty_status,
)

RECENT_LAYERS: Final = 10  # layers averaged for recent_layer_duration_s


def identity(p: Printer, now: int) -> dict[str, Any]:
    x, y, z = p.model.size_mm
    return {
        "printer_id": p.printer_id,
        "event_time": now,
        "printer_name": p.printer_name,
        "model_number": p.model.model_number,
        "model_name": p.model.model_name,
        "serial_number": p.serial,
        "firmware_release": p.firmware,
        "printer_uuid": p.uuid,
        "printer_size": {"x_mm": x, "y_mm": y, "z_mm": z},
        "disk_capacity_bytes": p.disk_bytes,
        "memory_capacity_bytes": p.memory_bytes,
        "device_date": now + p.clock_skew_ms,
        "uptime_s": max(0, now - p.boot_ms) // 1000,
    }


def status(p: Printer, now: int) -> dict[str, Any]:
    job = p.current
    done = job.layers_done(now) if job is not None else 0
    recent = 0.0
    if job is not None and done > 0:
        m = min(RECENT_LAYERS, done)
        last = job.layer_ends[done - 1]
        first = job.layer_ends[done - 1 - m] if done - 1 - m >= 0 else 0
        recent = round((last - first) / m / 1000.0, 3)
    cooling = 0.0
    unit = p.inserted
    if p.activity == "COOLING_DOWN" and unit is not None and unit.cooling_end_ms is not None:
        cooling = max(0.0, (unit.cooling_end_ms - now) / 1000.0)
    return {
        "printer_id": p.printer_id,
        "event_time": now,
        "status": p.status,
        "activity": p.activity,
        "current_job_id": job.job_id if job is not None else "",
        "layers_done": done,
        "layers_total": job.layer_count if job is not None else 0,
        "recent_layer_duration_s": recent,
        "pending_job_count": len(p.queue),
        "cooling_remaining_s": cooling,
        "current_job_status": job.status if job is not None else "",
        "job_name": job.name if job is not None else "",  # private
    }


def counters(p: Printer, now: int) -> dict[str, Any]:
    t = p.totals_at(now)
    return {
        "event_time": now,
        "total_jobs": t.jobs,
        "total_completed_jobs": t.completed_jobs,
        "total_layers": t.layers,
        "total_parts": t.parts,
        "total_print_volume_cm3": round(t.volume_cm3, 3),
        "total_print_time_s": t.print_ms // 1000,
        "total_agent_consumed_cm3": round(t.agent_total_cm3, 3),
        "total_material_consumed_kg": round(t.material_kg, 4),
        "cooling_system_working_time_s": t.cooling_ms // 1000,
        "filter_status": filter_status(p.air_filter, t),
        "lamp_usage_s": t.lamp_ms // 1000,
        "intermediate_tanks_used": intermediate_tanks_used(t),
        "agent_system_working_time_s": t.agent_system_ms // 1000,
        "printhead_maintenance_cycles": printhead_maintenance_cycles(t),
        "carriage_cycles": carriage_cycles(t),
        "total_system_errors": t.system_errors,
    }


def consumables(p: Printer, now: int) -> dict[str, Any]:
    t = p.totals_at(now)
    usage = roll_usage_pct(p.roll, t)
    agents = []
    for agent in AGENT_TYPES:
        cartridge = p.cartridges[agent]
        level = cartridge_level_pct(cartridge, t)
        agents.append(
            {
                "agent_type": agent,
                "agent_used_cm3": round(t.agent_cm3.get(agent, 0.0), 3),
                "build_unit_insertions": p.total_insertions - cartridge.insertions_at_install,
                "consumable_status": cartridge_status(level),
                "consumable_level_pct": round(level, 2),
                "cartridge_installed_at": cartridge.installed_ms,
            }
        )
    heads = []
    for head in p.printheads:
        heads.append(
            {
                "slot": head.slot,
                "printhead_type": p.model.printhead_type,
                "printhead_uuid": head.uuid,
                "status": printhead_status(head, t, now),
                "part_number": p.model.printhead_part,
                "serial_number": head.serial,
                "agent_consumed_cm3": round(printhead_agent_cm3(head, t), 3),
                "installed_at": head.installed_ms,
                "usage_time_s": int(printhead_usage_s(head, t)),
                "recovery_level": head.recovery_level,
                "last_error_code": head.last_error_code,
                "last_error_at": head.last_error_ms,
                "non_genuine_agent_notice": head.non_genuine_notice,
                "expired_agent_notice": head.expired_notice,
                "warranty_expiry_date": head.warranty_expiry_day,
                "warranty_status": warranty_status(head, t, now),
                "manufacturing_date": head.manufactured_day,
            }
        )
    return {
        "event_time": now,
        "cleaning_roll": {
            "event_time": now,
            "part_number": CLEANING_ROLL_PART,
            "status": roll_status(usage),
            "usage_pct": round(usage, 3),
            "serial_number": p.roll.serial,
            "installed_at": p.roll.installed_ms,
        },
        "agent_system": {"event_time": now, "agents": agents},
        "printhead_system": {"event_time": now, "printheads": heads},
        "build_unit": {
            "event_time": now,
            "total_build_unit_insertions": p.total_insertions,
            "installed_build_unit": _installed_unit(p, now),
        },
    }


def _installed_unit(p: Printer, now: int) -> dict[str, Any] | None:
    unit = p.inserted
    if unit is None:
        return None
    open_ms = now - unit.sessions[-1].connected_ms if unit.in_printer and unit.sessions else 0
    return {
        "part_number": BUILD_UNIT_PART,
        "serial_number": unit.serial,
        "insertion_count": unit.insertions,
        "status": unit.status,
        "usage_time_s": (unit.usage_ms + max(0, open_ms)) // 1000,
        "material_type": unit.material,
        "recycled_material_pct": unit.recycled_pct,
        "material_quantity_kg": unit.quantity_kg,
        "non_genuine_material_notice": unit.non_genuine_notice,
        "expired_material_notice": unit.expired_notice,
        "printers": [
            {
                "product_number": s.product_number,
                "serial_number": s.serial_number,
                "firmware_release": s.firmware_release,
                "connected_at": s.connected_ms,
                "disconnected_at": s.disconnected_ms,
            }
            for s in unit.sessions
        ],
        "cooling_end_at": unit.cooling_end_ms,
    }


def events_page(p: Printer, after: int, limit: int) -> dict[str, Any]:
    entries = p.events.after(after, limit)
    return {
        "printer_id": p.printer_id,
        "events": [
            {
                "seq": e.seq,
                "event_time": e.time_ms,
                "event_id": e.event_id,
                "code": e.code,
                "description": e.description,
                "severity": e.severity,
                "firmware_version": e.firmware,
                "subsystem": e.subsystem,
                "debug_details": dict(e.debug),
                "job_id": e.job_id,
            }
            for e in entries
        ],
        **_paging(entries[-1].seq if entries else None, p.events.last_seq, p.events.oldest_seq),
    }


def jobs_page(p: Printer, after: int, limit: int) -> dict[str, Any]:
    entries = p.snapshots.after(after, limit)
    return {
        "printer_id": p.printer_id,
        "jobs": [{"seq": s.seq, **render_job(s.job, s.status, s.time_ms)} for s in entries],
        **_paging(entries[-1].seq if entries else None, p.snapshots.last_seq, p.snapshots.oldest_seq),
    }


def logs_page(p: Printer, after: int, limit: int) -> dict[str, Any]:
    entries = p.logs.after(after, limit)
    out = []
    for log in entries:
        size, lines, sha = logtext.digest(log)
        out.append(
            {
                "seq": log.seq,
                "event_time": log.time_ms,
                "log_id": log.log_id,
                "log_type": log.log_type,
                "started_at": log.started_ms,
                "ended_at": log.time_ms,
                "size_bytes": size,
                "line_count": lines,
                "content_sha256": sha,
                "content_sanitised": False,
                "content_ref": None,
                "firmware_version": log.firmware,
                "content_path": f"api/v1/logs/{log.log_id}/content",
            }
        )
    return {
        "printer_id": p.printer_id,
        "logs": out,
        **_paging(entries[-1].seq if entries else None, p.logs.last_seq, p.logs.oldest_seq),
    }


def _paging(page_last: int | None, last_seq: int, oldest_seq: int) -> dict[str, Any]:
    return {
        "last_seq": last_seq,
        "oldest_seq": oldest_seq,
        "more": page_last is not None and page_last < last_seq,
    }
