"""A site offline for two hours, then back: its backlog arrives at once, every kind on its
own topic. With the default cadence (10 s heartbeats) and lateness (600 s), the hours of the
outage count every record: the utilisation KPIs equal the simulator's own counters, and
nothing is dead-lettered as late."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from stream_harness import Outputs, Worker, produce

from deploy.settings import StackSettings
from producers.simulator.replay import new_fleet, replay
from schemas import SchemaRegistry

HOUR_MS = 3_600_000
START_MS = 1_741_910_400_000  # 2025-03-14T00:00:00Z
SEED = 5
REGISTRY = SchemaRegistry.load_default()
# Defaults but where the pipeline starts and how often the status line comes.
ENV = {"PRINTFLEET_WORKER_START_AT": "latest", "PRINTFLEET_WORKER_STATUS_EVERY_S": "1"}


def _hours(out: Outputs) -> dict[tuple[str, int], dict[str, Any]]:
    """The newest record of each printer's hour window."""
    newest = {(r["device_id"], r["window_start"], r["window_end"]): r for r in out.of("utilisation")}
    return {(d, s): r for (d, s, e), r in newest.items() if e - s == HOUR_MS}


async def test_a_two_hour_outage_backlog_counts_every_record(stack: StackSettings, tmp_path: Path) -> None:
    site = f"site-{uuid.uuid4().hex[:8]}"
    sim = replay(new_fleet(4, SEED, START_MS), REGISTRY, duration_ms=5 * HOUR_MS, site_id=site, heartbeat_s=10)
    live_1 = [(k, r) for k, r in sim.records if r["event_time"] < START_MS + HOUR_MS]
    outage = [(k, r) for k, r in sim.records if START_MS + HOUR_MS <= r["event_time"] < START_MS + 3 * HOUR_MS]
    live_2 = [(k, r) for k, r in sim.records if r["event_time"] >= START_MS + 3 * HOUR_MS]
    worker = Worker(stack.kafka_bootstrap, f"backlog-{site}", tmp_path, **ENV).start()
    try:
        await worker.ready()
        async with Outputs(stack.kafka_bootstrap, site) as out:
            sent = 0
            # The first hour as it happens (in the order the collector uploads: poll order),
            # the two hours of the outage at once when the site is back, then live again;
            # each upload committed as the gateway commits it.
            for part in (live_1, outage, live_2):
                sent += await produce(stack.kafka_bootstrap, part)
                await out.until(lambda o: worker.status().get("applied", 0) >= sent, worker, timeout_s=180)
            await out.until(lambda o: {s for (_, s) in _hours(o)} >= {START_MS + h * HOUR_MS for h in range(4)},
                            worker, timeout_s=120)
            await out.settle()
    finally:
        await worker.stop()

    assert not out.dead_letters, (len(out.dead_letters), [h for _, h in out.dead_letters][:3])
    hours = _hours(out)
    for pid, device in sim.device_ids.items():
        for h in range(4):  # the hour before, the two of the outage, the one after
            start = START_MS + h * HOUR_MS
            window = hours[(device, start)]
            t0, t1 = sim.truth[start][pid], sim.truth[start + HOUR_MS][pid]
            c0, c1 = sim.counters[start][pid], sim.counters[start + HOUR_MS][pid]
            assert window["jobs_completed"] == t1["jobs_completed"] - t0["jobs_completed"], (pid, h)
            assert abs(window["material_consumed_kg"]
                       - (c1["total_material_consumed_kg"] - c0["total_material_consumed_kg"])) < 1e-3, (pid, h)
            assert abs(window["agent_consumed_cm3"]
                       - (c1["total_agent_consumed_cm3"] - c0["total_agent_consumed_cm3"])) < 0.01, (pid, h)
            assert abs(window["layers_printed"] - (c1["total_layers"] - c0["total_layers"])) <= 8, (pid, h)
