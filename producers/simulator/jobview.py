"""A job as the printer's jobs endpoint shows it at one moment (a snapshot's time).

The job object holds its whole planned timeline; `render_job` shows only what had
happened by `at`, so a snapshot renders the same whenever it is read. Field names are
the job schema's; private fields (`job_name`, `user_name`, `computer_name`, `file_name`,
`file_path`, and per part `part_name`, `file_name`, `file_path`) sit beside them.
Called by `views.jobs_page`.
"""

from __future__ import annotations

import random
from typing import Any

from producers.simulator.catalogue import EVENTS
from producers.simulator.model import Job, Part

TERMINAL = ("COMPLETED", "FAILED", "CANCELLED")


def _seen(ms: int | None, at: int) -> int | None:
    return ms if ms is not None and ms <= at else None


def render_job(job: Job, status: str, at: int) -> dict[str, Any]:
    """The job as of its snapshot at `at` with `status`. A QUEUED snapshot shows the job
    just before anything else that happened in the same millisecond (its warm-up may
    start at once), so it hides everything from `at` on."""
    at = at - 1 if status == "QUEUED" else at
    done = job.layers_done(at)
    x, y, z = job.bbox_mm
    return {
        "event_time": at + 1 if status == "QUEUED" else at,
        "job_id": job.job_id,
        "completion_status": status,
        "created_at": job.created_ms,
        "started_at": _seen(job.print_start_ms, at),
        "completed_at": _seen(job.end_ms, at),
        "source_application": job.application,
        "source_host_pseudonym": None,  # the collector fills it from computer_name
        "bounding_box": {"x_mm": x, "y_mm": y, "z_mm": z},
        "volume_cm3": job.volume_cm3,
        "surface_area_cm2": job.area_cm2,
        "packing_density_pct": job.density_pct,
        "layer_count": job.layer_count,
        "layer_thickness_um": 80.0,
        "material_type": job.material,
        "material_in_parts_kg": job.material_in_parts_kg,
        "recyclable_material_kg": job.recyclable_kg,
        "print_mode": job.print_mode,
        "build_unit_id": job.build_unit_serial if _seen(job.warmup_start_ms, at) is not None else None,
        "warnings": [
            {"warning_id": w.warning_id, "message": w.message, "severity": w.severity, "raised_at": w.raised_ms}
            for w in job.warnings
            if w.raised_ms <= at
        ],
        "sub_jobs": _sub_jobs(job, status, at, done),
        "parts": [_part(job, part, status, at, done) for part in job.parts],
        "layers": _layers(job, done),
        # private: never leaves the site
        "job_name": job.name,
        "user_name": job.user,
        "computer_name": job.computer,
        "file_name": job.file_name,
        "file_path": job.file_path,
    }


def _part(job: Job, part: Part, status: str, at: int, done: int) -> dict[str, Any]:
    started = (
        job.print_start_ms is not None
        and part.first_layer <= done
        and part.first_layer < job.layer_count
        and job.layer_start_ms(part.first_layer) <= at
    )
    finished = part.last_layer < done
    failed = status == "FAILED"
    if finished:
        state = "COMPLETED"
    elif status == "CANCELLED" or (failed and not started):
        state = "CANCELLED"
    elif failed:
        state = "FAILED"
    else:
        state = "IN_PROGRESS" if started else "PENDING"
    x, y, z = part.bbox_mm
    return {
        "part_id": part.part_id,
        "created_at": part.created_ms,
        "processing_started_at": _seen(part.processing_start_ms, at),
        "processing_ended_at": _seen(part.processing_end_ms, at),
        "print_started_at": job.layer_start_ms(part.first_layer) if started else None,
        "print_completed_at": job.layer_end_ms(part.last_layer) if finished else None,
        "bounding_box": {"x_mm": x, "y_mm": y, "z_mm": z},
        "volume_cm3": part.volume_cm3,
        "surface_area_cm2": part.area_cm2,
        "material_used_g": part.material_g,
        "completion_status": state,
        "completion_error_code": EVENTS[job.fail_kind].code if state == "FAILED" and job.fail_kind else None,
        # private: never leaves the site
        "part_name": part.name,
        "file_name": part.file_name,
        "file_path": part.file_path,
    }


def _sub_jobs(job: Job, status: str, at: int, done: int) -> list[dict[str, Any]]:
    """The job's three phases as sub-print-jobs: warm-up, print, cooling."""
    phases = (
        ("WARM_UP", "PREPARING", job.warmup_start_ms, job.print_start_ms),
        ("PRINT", "PRINTING", job.print_start_ms, job.print_end_ms),
        ("COOL", "COOLING", job.print_end_ms if job.fail_kind is None else None, job.cooling_end_ms),
    )
    out = []
    for phase, running, start_ms, end_ms in phases:
        start, end = _seen(start_ms, at), _seen(end_ms, at)
        if start is None:
            state, pct, duration = ("CANCELLED" if status in TERMINAL else "QUEUED"), 0.0, 0.0
        else:
            if phase == "PRINT":
                pct = 100.0 * done / job.layer_count
            elif end is not None:
                pct = 100.0
            else:
                planned = (end_ms or at) - start
                pct = 100.0 * (at - start) / planned if planned > 0 else 0.0
            if end is None:
                state = running
            elif phase == "PRINT" and job.fail_kind is not None:
                state = "FAILED"
            else:
                state = "COMPLETED"
            duration = ((end if end is not None else at) - start) / 1000.0
        out.append(
            {
                "status": state,
                "complete_pct": round(pct, 2),
                "duration_s": duration,
                "started_at": start,
                "ended_at": end,
                "phase": phase,
            }
        )
    return out


def _layers(job: Job, done: int) -> list[dict[str, Any]]:
    if done == 0 or job.print_start_ms is None:
        return []
    # Print-data sizes follow the cross-section: small at the bottom and top, larger in
    # the middle, with noise. Drawn from the job's own seed, so a prefix never changes.
    rng = random.Random(job.seed)
    n, start, ends = job.layer_count, job.print_start_ms, job.layer_ends
    out = []
    previous = 0
    for i in range(done):
        bulge = 1.0 - abs(2.0 * i / n - 1.0)
        size = int(60_000 + 900_000 * bulge * (0.6 + 0.8 * rng.random()))
        out.append(
            {
                "layer_index": i,
                "size_bytes": size,
                "duration_s": (ends[i] - previous) / 1000.0,
                "started_at": start + previous,
                "ended_at": start + ends[i],
            }
        )
        previous = ends[i]
    return out
