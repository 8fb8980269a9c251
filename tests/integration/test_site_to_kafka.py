"""The site side end to end on the real broker: 20 simulated printers for a simulated day,
polled by the collector over HTTPS, uploaded to the gateway over HTTPS, produced to Kafka."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from deploy.settings import StackSettings
from producers.collector import Collector
from producers.collector_config import Cadence, CollectorSettings
from producers.gateway import Gateway, GatewaySettings
from producers.simulator import SimulatorServer, SimulatorSettings, ensure_site_ca, issue_server_certificate
from producers.sites import SiteDirectory
from schemas import DEVICE_KINDS, SchemaRegistry
from schemas.topics import TELEMETRY_PARTITIONS, telemetry_topics

DAY_MS = 86_400_000
START_MS = 1_742_025_600_000  # 2025-03-15 08:00 UTC
ACCELERATION = 2_400.0  # a simulated day in 36 s
FAST = Cadence(heartbeat_s=0.5, events_s=0.5, jobs_s=1.0, logs_s=2.0, counters_s=2.0, consumables_s=2.0, identity_s=30.0)


@dataclass
class Site:
    sim: SimulatorServer
    gateway: Gateway
    collector_settings: CollectorSettings
    site_id: str


@pytest.fixture
async def site(stack: StackSettings, tmp_path: Path) -> AsyncIterator[Site]:
    site_id, token = f"site-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    sim_settings = SimulatorSettings(
        printers=20, seed=42, acceleration=ACCELERATION, port=0, ca_dir=tmp_path / "site-ca", start_ms=START_MS
    )
    async with SimulatorServer(sim_settings) as sim:
        cloud_dir = tmp_path / "cloud-ca"
        cert = issue_server_certificate(ensure_site_ca(cloud_dir, "printfleet cloud"), cloud_dir)
        devices = [p["printer_uuid"] for p in sim.fleet.truth()["printers"]]
        sites_file = tmp_path / "sites.toml"
        sites_file.write_text(SiteDirectory.render([(site_id, token, devices)]))
        gw_settings = GatewaySettings(
            kafka_bootstrap=stack.kafka_bootstrap, sites_file=sites_file, port=0,
            tls_cert=cert.cert_file, tls_key=cert.key_file,
        )
        async with Gateway(gw_settings, SchemaRegistry.load_default(), SiteDirectory.load(sites_file)) as gateway:
            collector_settings = CollectorSettings(
                site_id=site_id, site_secret="it-secret", state_dir=tmp_path / "collector",
                gateway_url=gateway.url, gateway_token=token, gateway_ca_file=cloud_dir / "ca.pem",
                printer_urls=tuple(sim.base_urls.values()), printer_ca_file=sim.ca_file,
                status_port=0, cadence=FAST,
            )
            yield Site(sim, gateway, collector_settings, site_id)


async def _caught_up(collector: Collector, truth: dict[str, Any], timeout_s: float) -> None:
    """Wait until every paged record the printers hold is uploaded and the spool is empty."""
    deadline = time.monotonic() + timeout_s
    want = {p["printer_uuid"]: p for p in truth["printers"]}
    while True:
        cursors = collector.pollers[0]._cursors  # shared by all pollers
        done = all(
            cursors.get(uuid_, endpoint) == p[endpoint]["max_seq"]
            for uuid_, p in want.items() for endpoint in ("events", "jobs", "logs")
        )
        if done and collector.spool.stats().pending_records == 0:
            return
        assert time.monotonic() < deadline, collector.status_line()
        await asyncio.sleep(0.5)


async def _site_messages(bootstrap: str, site_id: str, registry: SchemaRegistry) -> list[tuple[Any, Any]]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=f"it-{uuid.uuid4().hex}", enable_auto_commit=False)
    await consumer.start()
    try:
        tps = [TopicPartition(t, p) for t in telemetry_topics() for p in range(TELEMETRY_PARTITIONS)]
        consumer.assign(tps)
        end = await consumer.end_offsets(tps)
        await consumer.seek_to_beginning(*tps)
        out = []
        while any([await consumer.position(tp) < end[tp] for tp in tps]):
            for records in (await consumer.getmany(timeout_ms=1000, max_records=5000)).values():
                for m in records:
                    decoded = registry.decode(m.value)
                    if decoded.record["site_id"] == site_id:
                        out.append((m, decoded))
        return out
    finally:
        await consumer.stop()


async def test_a_simulated_day_of_twenty_printers_arrives_complete_and_private(site: Site, stack: StackSettings) -> None:
    registry = SchemaRegistry.load_default()
    stop = asyncio.Event()
    async with Collector(site.collector_settings, registry) as collector:
        runner = asyncio.create_task(collector.run(stop))
        try:
            while site.sim.clock.now_ms() < START_MS + DAY_MS:
                assert not runner.done(), runner
                await asyncio.sleep(1)
            site.sim.clock.pause()
            site.sim.sync()
            truth = site.sim.fleet.truth()
            await _caught_up(collector, truth, timeout_s=120)
        finally:
            stop.set()
            await runner

    messages = await _site_messages(stack.kafka_bootstrap, site.site_id, registry)
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
