"""Realistic sample records, one builder per kind, for the bench, tests and demos.

`sample_record("heartbeat", seed=7)` is a 4200-class printer mid-print; the same seed
always gives the same record. Records fit the latest version of their kind and leave
`schema_version` out (the writer schema fills it in). Nothing here is a real customer's
data: ids are random, and no record carries anything the catalogue forbids.
"""

from __future__ import annotations

import random
import struct
import uuid
from typing import Any, Callable, Final

from schemas.errors import UnknownSchemaError

Record = dict[str, Any]

_T0: Final = 1_741_944_413_589  # 2025-03-14T09:26:53.589Z, a weekday morning
_MODELS: Final = (("M0P44A", "Jet Fusion 4200"), ("4WY25A", "Jet Fusion 5200"))
_MATERIALS: Final = ("PA12", "PA11", "PA12GB", "TPA")
_ALNUM: Final = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"


def _f32(value: float, digits: int = 2) -> float:
    # Avro `float` is 32-bit: keep samples exactly representable so round trips compare equal.
    return float(struct.unpack("<f", struct.pack("<f", round(value, digits)))[0])


def _rid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _random_id(rng: random.Random, length: int = 10) -> str:
    return "".join(rng.choice(_ALNUM) for _ in range(length))


def _envelope(rng: random.Random, seed: int) -> Record:
    return {
        "record_id": _rid(rng),
        "site_id": f"site-{seed % 97:04d}",
        "device_id": str(uuid.UUID(int=(seed % 997) * 0x9E3779B97F4A7C15 + 1, version=4)),
        "event_time": _T0 + seed * 30_000,
    }


def _heartbeat(rng: random.Random, seed: int) -> Record:
    total = rng.randint(2_000, 4_750)
    return {
        **_envelope(rng, seed),
        "status": "POWERED_ON",
        "activity": "PRINTING",
        "current_job_id": _random_id(rng),
        "layers_done": rng.randint(1, total - 1),
        "layers_total": total,
        "recent_layer_duration_s": _f32(rng.uniform(7.5, 11.0)),
        "pending_job_count": rng.randint(0, 6),
        "cooling_remaining_s": 0.0,
    }


def _device_identity(rng: random.Random, seed: int) -> Record:
    model, _ = _MODELS[seed % len(_MODELS)]
    return {
        **_envelope(rng, seed),
        "printer_name": f"Hall B printer {seed % 12 + 1}",
        "model_number": model,
        "serial_number": f"SG{rng.randint(10_000_000, 99_999_999)}",
        "firmware_release": "5.8.2.11",
        "printer_uuid": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "printer_size": {"x_mm": 380.0, "y_mm": 284.0, "z_mm": 380.0},
        "disk_capacity_bytes": 512 * 10**9,
        "memory_capacity_bytes": 32 * 2**30,
        "device_date": _T0 + seed * 30_000 - rng.randint(0, 2_000),
        "uptime_s": rng.randint(3_600, 40 * 86_400),
    }


def _system_event(rng: random.Random, seed: int) -> Record:
    return {
        **_envelope(rng, seed),
        "event_id": _random_id(rng, 12),
        "code": f"0057-0001-{rng.randint(10, 99):04d}",
        "description": "Fusing lamp temperature out of range; printing continues",
        "severity": rng.choice(("INFO", "WARNING", "ERROR")),
        "firmware_version": "5.8.2.11",
        "subsystem": "lamp",
        "debug_details": {"lamp": "2", "temp_c": f"{rng.uniform(180, 240):.1f}", "retry": "1"},
    }


def _job(rng: random.Random, seed: int) -> Record:
    t_start = _T0 - 6 * 3_600_000
    layer_count = 40  # a sample, not a full build: real jobs have thousands of layers
    layers = [
        {
            "layer_index": i,
            "size_bytes": rng.randint(40_000, 400_000),
            "duration_s": _f32(rng.uniform(7.5, 11.0)),
            "started_at": t_start + i * 9_000,
            "ended_at": t_start + i * 9_000 + 8_800,
        }
        for i in range(layer_count)
    ]
    parts = [
        {
            "part_id": _random_id(rng, 12),
            "created_at": t_start - 86_400_000,
            "processing_started_at": t_start - 600_000,
            "processing_ended_at": t_start - 60_000,
            "print_started_at": t_start,
            "print_completed_at": None,
            "bounding_box": {"x_mm": 42.5, "y_mm": 18.0, "z_mm": 96.25},
            "volume_cm3": round(rng.uniform(5, 60), 3),
            "surface_area_cm2": round(rng.uniform(30, 200), 3),
            "material_used_g": round(rng.uniform(5, 60), 2),
            "completion_status": "IN_PROGRESS",
            "completion_error_code": None,
        }
        for _ in range(6)
    ]
    return {
        **_envelope(rng, seed),
        "job_id": _random_id(rng),
        "completion_status": "PRINTING",
        "created_at": t_start - 86_400_000,
        "started_at": t_start,
        "completed_at": None,
        "source_application": "Build preparation 5.3",
        "source_host_pseudonym": "h:" + uuid.UUID(int=rng.getrandbits(128)).hex[:16],
        "bounding_box": {"x_mm": 372.0, "y_mm": 276.0, "z_mm": 301.5},
        "volume_cm3": 1_845.2,
        "surface_area_cm2": 9_310.7,
        "packing_density_pct": _f32(11.8),
        "layer_count": 3_769,
        "layer_thickness_um": 80.0,
        "material_type": rng.choice(_MATERIALS),
        "material_in_parts_kg": 1.87,
        "recyclable_material_kg": 14.2,
        "print_mode": "BALANCED",
        "build_unit_id": f"BU{rng.randint(100_000, 999_999)}",
        "warnings": [
            {"warning_id": "W-17", "message": "Detailing agent low", "severity": "WARNING",
             "raised_at": t_start + 3_600_000},
        ],
        "sub_jobs": [
            {"status": "COMPLETED", "complete_pct": 100.0, "duration_s": 1_820.0,
             "started_at": t_start - 1_900_000, "ended_at": t_start - 80_000},
            {"status": "PRINTING", "complete_pct": 31.5, "duration_s": 21_600.0,
             "started_at": t_start, "ended_at": None},
        ],
        "parts": parts,
        "layers": layers,
    }


def _usage_counters(rng: random.Random, seed: int) -> Record:
    jobs = rng.randint(400, 3_000)
    return {
        **_envelope(rng, seed),
        "total_jobs": jobs,
        "total_completed_jobs": jobs - rng.randint(0, 40),
        "total_layers": jobs * 3_100,
        "total_parts": jobs * 55,
        "total_print_volume_cm3": jobs * 1_650.0,
        "total_print_time_s": jobs * 36_000,
        "total_agent_consumed_cm3": jobs * 410.0,
        "total_material_consumed_kg": jobs * 2.1,
        "cooling_system_working_time_s": jobs * 41_000,
        "filter_status": "OK",
        "lamp_usage_s": jobs * 30_000,
        "intermediate_tanks_used": 12,
        "agent_system_working_time_s": jobs * 33_000,
        "printhead_maintenance_cycles": jobs * 18,
        "carriage_cycles": jobs * 6_200,
        "total_system_errors": rng.randint(0, 300),
    }


def _cleaning_roll(rng: random.Random, seed: int) -> Record:
    return {**_envelope(rng, seed), "part_number": "3ED58A", "status": "OK",
            "usage_pct": _f32(rng.uniform(0, 95), 1)}


def _agent_system(rng: random.Random, seed: int) -> Record:
    return {
        **_envelope(rng, seed),
        "agents": [
            {"agent_type": agent, "agent_used_cm3": round(rng.uniform(1e4, 9e5), 1),
             "build_unit_insertions": rng.randint(100, 2_000), "consumable_status": "OK",
             "consumable_level_pct": _f32(rng.uniform(5, 100), 1)}
            for agent in ("FUSING", "DETAILING")
        ],
    }


def _printhead_system(rng: random.Random, seed: int) -> Record:
    return {
        **_envelope(rng, seed),
        "printheads": [
            {"slot": slot, "printhead_type": "fusing" if slot < 3 else "detailing",
             "printhead_uuid": _rid(rng), "status": "OK", "part_number": "3ED59A",
             "serial_number": f"PH{rng.randint(10**7, 10**8 - 1)}",
             "agent_consumed_cm3": round(rng.uniform(100, 9_000), 1),
             "installed_at": _T0 - rng.randint(1, 200) * 86_400_000,
             "usage_time_s": rng.randint(10**4, 10**7), "recovery_level": rng.randint(0, 3),
             "last_error_code": None, "last_error_at": None,
             "non_genuine_agent_notice": False, "expired_agent_notice": False,
             "warranty_expiry_date": 20_500 + slot, "warranty_status": "IN_WARRANTY",
             "manufacturing_date": 19_900 + slot}
            for slot in range(6)
        ],
    }


def _build_unit(rng: random.Random, seed: int) -> Record:
    return {
        **_envelope(rng, seed),
        "total_build_unit_insertions": rng.randint(100, 2_000),
        "installed_build_unit": {
            "part_number": "4QW24A", "serial_number": f"BU{rng.randint(100_000, 999_999)}",
            "insertion_count": rng.randint(10, 900), "status": "PRINTING",
            "usage_time_s": rng.randint(10**5, 10**7), "material_type": rng.choice(_MATERIALS),
            "recycled_material_pct": 80.0, "material_quantity_kg": 18.5,
            "non_genuine_material_notice": False, "expired_material_notice": False,
            "printers": [
                {"product_number": "M0P44A", "serial_number": f"SG{rng.randint(10**7, 10**8 - 1)}",
                 "firmware_release": "5.8.2.11", "connected_at": _T0 - 7_200_000,
                 "disconnected_at": None},
            ],
        },
    }


def _device_log(rng: random.Random, seed: int) -> Record:
    return {
        **_envelope(rng, seed),
        "log_id": _random_id(rng, 16), "log_type": "LAMP_CONTROL",
        "started_at": _T0 - 3_600_000, "ended_at": _T0, "size_bytes": rng.randint(10**4, 10**7),
        "line_count": rng.randint(100, 10**5), "content_sha256": uuid.UUID(int=rng.getrandbits(128)).hex * 2,
        "content_sanitised": True, "content_ref": None, "firmware_version": "5.8.2.11",
    }


def _alert(rng: random.Random, seed: int) -> Record:
    return {
        **_envelope(rng, seed),
        "alert_id": _rid(rng), "dedup_key": f"printhead-wear:{seed}:slot-2", "lifecycle": "RAISED",
        "severity": "WARNING", "rule_id": "printhead-wear", "subsystem": "printhead",
        "summary": "Printhead in slot 2 is likely to fail within 5 days",
        "source_event_code": None, "raised_at": _T0, "cleared_at": None,
        "predicted_failure_at": _T0 + 5 * 86_400_000,
        "recommended_action": "Replace the printhead in slot 2 at the next build-unit change",
        "recommended_parts": [{"part_number": "3ED59A", "description": "Printhead", "quantity": 1}],
        "notify_service": True, "confidence": 0.8, "occurrences": 3,
    }


def _utilisation(rng: random.Random, seed: int) -> Record:
    printing = rng.uniform(30_000, 70_000)
    return {
        **_envelope(rng, seed),
        "window_start": _T0 - 86_400_000, "window_end": _T0, "printing_s": printing,
        "warming_s": 3_600.0, "cooling_s": 9_000.0, "idle_s": 86_400 - printing - 12_600.0,
        "error_s": 0.0, "unreachable_s": 0.0, "utilisation_pct": _f32(printing / 864),
        "jobs_completed": rng.randint(0, 3), "layers_printed": rng.randint(1_000, 8_000),
        "material_consumed_kg": round(rng.uniform(2, 20), 2), "packing_density_pct": 12.5,
        "material_recycled_pct": 80.0, "agent_consumed_cm3": round(rng.uniform(50, 900), 1),
    }


def _fleet_state(rng: random.Random, seed: int) -> Record:
    return {
        **_envelope(rng, seed),
        "printer_name": f"Hall B printer {seed % 12 + 1}", "model_number": "M0P44A", "firmware_release": "5.8.2.11",
        "status": "POWERED_ON", "activity": "COOLING_DOWN", "current_job_id": _random_id(rng),
        "layers_done": 3_769, "layers_total": 3_769, "estimated_completion_at": _T0 + 3_600_000,
        "estimated_remaining_s": 3_600.0, "pending_job_count": rng.randint(0, 6),
        "last_heartbeat_at": _T0, "open_alert_count": rng.randint(0, 2),
    }


def _benchmark(rng: random.Random, seed: int) -> Record:
    return {
        **_envelope(rng, seed), "site_id": "ANONYMOUS", "device_id": "ANONYMOUS",
        "cohort_id": "M0P44A/PA12/2025-W11", "model_number": "M0P44A", "material_type": "PA12",
        "window_start": _T0 - 7 * 86_400_000, "window_end": _T0, "site_count": rng.randint(5, 80),
        "device_count": rng.randint(12, 300), "utilisation_p25_pct": 31.0, "utilisation_p50_pct": 46.5,
        "utilisation_p75_pct": 61.25, "packing_density_p50_pct": 11.5, "material_recycled_p50_pct": 78.0,
        "jobs_completed_p50_per_day": 0.75,
    }


def _update_advisory(rng: random.Random, seed: int) -> Record:
    return {
        **_envelope(rng, seed),
        "advisory_id": "FW-5.9.0-M0P44A", "advisory_type": "FIRMWARE", "severity": "INFO",
        "model_number": "M0P44A", "installed_version": "5.8.2.11", "available_version": "5.9.0.4",
        "material_type": None, "released_at": _T0 - 86_400_000,
        "summary": "Faster warm-up; fixes a rare lamp calibration stop",
        "release_notes_url": "https://support.example.com/printfleet/fw/5.9.0",
        "package_sha256": uuid.UUID(int=rng.getrandbits(128)).hex * 2,
    }


_BUILDERS: Final[dict[str, Callable[[random.Random, int], Record]]] = {
    "device_identity": _device_identity,
    "heartbeat": _heartbeat,
    "system_event": _system_event,
    "job": _job,
    "usage_counters": _usage_counters,
    "cleaning_roll": _cleaning_roll,
    "agent_system": _agent_system,
    "printhead_system": _printhead_system,
    "build_unit": _build_unit,
    "device_log": _device_log,
    "alert": _alert,
    "utilisation": _utilisation,
    "fleet_state": _fleet_state,
    "benchmark": _benchmark,
    "update_advisory": _update_advisory,
}


def sample_record(kind: str, *, seed: int = 0) -> Record:
    """A realistic record of `kind`, deterministic for a seed. Raises `UnknownSchemaError`."""
    try:
        builder = _BUILDERS[kind]
    except KeyError:
        raise UnknownSchemaError(kind) from None
    return builder(random.Random(f"{kind}:{seed}"), seed)


def sample_records(kind: str, count: int, *, first_seed: int = 0) -> list[Record]:
    """`count` different records of `kind` (seeds `first_seed` onwards)."""
    return [sample_record(kind, seed=first_seed + i) for i in range(count)]
