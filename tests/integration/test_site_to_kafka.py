"""The site side end to end on the real broker: 20 simulated printers for a simulated day,
polled by the collector over HTTPS, uploaded to the gateway over HTTPS, produced to Kafka."""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict
from pathlib import Path

from deploy.settings import StackSettings
from producers.collector.collector import Collector
from schemas import DEVICE_KINDS, SchemaRegistry
from site_harness import DAY_MS, START_MS, caught_up, devices_of, site_messages, start_site


async def test_a_simulated_day_of_twenty_printers_arrives_complete_and_private(stack: StackSettings, tmp_path: Path) -> None:
    registry = SchemaRegistry.load_default()
    stop = asyncio.Event()
    async with start_site(stack, tmp_path) as site, Collector(site.collector_settings, registry) as collector:
        runner = asyncio.create_task(collector.run(stop))
        try:
            while site.sim.clock.now_ms() < START_MS + DAY_MS:
                assert not runner.done(), runner
                await asyncio.sleep(1)
            site.sim.clock.pause()
            site.sim.sync()
            truth = site.sim.fleet.truth()
            await caught_up(collector, truth, timeout_s=120)
        finally:
            stop.set()
            await runner

    messages = await site_messages(stack.kafka_bootstrap, site.site_id, registry, devices_of(truth))
    truth_by_device = {p["printer_uuid"]: p for p in truth["printers"]}

    kinds = Counter(d.kind for _, d in messages)
    assert set(kinds) == set(DEVICE_KINDS), f"kinds that never arrived: {set(DEVICE_KINDS) - set(kinds)}"
    for m, d in messages:
        assert m.key == d.record["device_id"].encode()
        assert m.topic == f"telemetry.{d.kind}"

    # Counts per printer: each event, job snapshot and log the simulator emitted, once.
    distinct: dict[tuple[str, str], set[str]] = defaultdict(set)
    for _, d in messages:
        distinct[(d.record["device_id"], d.kind)].add(d.record["record_id"])
    for device, p in truth_by_device.items():
        assert len(distinct[(device, "system_event")]) == p["events"]["count"], p["printer_id"]
        assert len(distinct[(device, "job")]) == p["jobs"]["count"], p["printer_id"]
        assert len(distinct[(device, "device_log")]) == p["logs"]["count"], p["printer_id"]
        assert distinct[(device, "heartbeat")], p["printer_id"]
    assert sum(p["jobs_completed"] for p in truth["printers"]) > 20, "a day should complete jobs"

    # Privacy: not one byte of any message carries a string the printers hold privately.
    blob = b"\n".join(m.value for m, _ in messages)
    private = {s for p in truth["printers"] for s in p["private_strings"]}
    assert len(private) > 1000
    leaked = sorted(s for s in private if s.encode() in blob)
    assert not leaked, f"{len(leaked)} private strings reached Kafka, e.g. {leaked[:3]}"
