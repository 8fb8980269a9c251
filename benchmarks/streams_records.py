"""Synthetic telemetry of a large fleet for `printfleet bench streams`.

Built from `schemas.samples` (realistic field values) with the time, device and ids of a
fleet of N printers on a steady cadence: every printer printing, layer by layer, one
heartbeat per interval. Fast to make (no simulator), so the bench measures the worker.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any, Final

from schemas.samples import sample_record

T0: Final = 1_764_000_000_000  # 2025-11-24T16:00:00Z


def device_ids(printers: int, run: str) -> list[str]:
    rng = random.Random(f"{run}-devices")
    return [f"{rng.getrandbits(128):032x}" for _ in range(printers)]


def heartbeats(devices: list[str], site_id: str, steps: int, *, interval_ms: int = 10_000, first_step: int = 0) -> Iterator[dict[str, Any]]:
    """`steps` heartbeats per printer, time-major (all printers at t, then t + interval)."""
    base = sample_record("heartbeat", seed=1)
    for step in range(first_step, first_step + steps):
        t = T0 + step * interval_ms
        for i, device in enumerate(devices):
            yield {
                **base, "record_id": f"hb-{device}-{step}", "site_id": site_id, "device_id": device, "event_time": t,
                "current_job_id": f"J{i}", "layers_total": 5000, "layers_done": 1 + step % 4999,
                "recent_layer_duration_s": 9.5,
            }


def events(devices: list[str], site_id: str, count: int, *, seed: int, severity: str = "INFO", at_ms: int = T0) -> Iterator[dict[str, Any]]:
    """System events spread over the printers; INFO by default (counted, not alerted)."""
    base = sample_record("system_event", seed=1)
    rng = random.Random(seed)
    for n in range(count):
        yield {
            **base, "record_id": f"ev-{seed}-{n}", "site_id": site_id, "device_id": devices[n % len(devices)],
            "event_time": at_ms + n, "event_id": f"E{seed}x{n}", "severity": severity,
            "code": f"0057-0001-{rng.randint(10, 99):04d}",
        }
