"""A simulated site for integration tests: simulator and gateway over TLS, collector
settings pointing at both, and helpers to wait for the collector and read what reached
Kafka."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from deploy.settings import StackSettings
from producers.collector.collector import Collector
from producers.collector.config import Cadence, CollectorSettings
from producers.gateway.gateway import Gateway, GatewaySettings
from producers.simulator import SimulatorServer, SimulatorSettings, ensure_site_ca, issue_server_certificate
from producers.gateway.sites import SiteDirectory
from schemas import SchemaRegistry
from common.kafka.topics import PARTITIONS, telemetry_topics

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


@contextlib.asynccontextmanager
async def start_site(stack: StackSettings, tmp_path: Path, gateway_port: int = 0) -> AsyncIterator[Site]:
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
            kafka=stack.kafka(), sites_file=sites_file, port=gateway_port,
            tls_cert=cert.cert_file, tls_key=cert.key_file, ops_port=0,
        )
        async with Gateway(gw_settings, SchemaRegistry.load_default(), SiteDirectory.load(sites_file)) as gateway:
            collector_settings = CollectorSettings(
                site_id=site_id, site_secret="it-secret", state_dir=tmp_path / "collector",
                gateway_url=gateway.url, gateway_token=token, gateway_ca_file=cloud_dir / "ca.pem",
                printer_urls=tuple(sim.base_urls.values()), printer_ca_file=sim.ca_file,
                status_port=0, cadence=FAST,
            )
            yield Site(sim, gateway, collector_settings, site_id)


async def caught_up(collector: Collector, truth: dict[str, Any], timeout_s: float) -> None:
    """Wait until every paged record the printers hold is uploaded and the spool is empty."""
    deadline = time.monotonic() + timeout_s
    want = {p["printer_uuid"]: p for p in truth["printers"]}
    while True:
        cursors = collector.cursors
        assert cursors is not None
        done = all(
            cursors.get(uuid_, endpoint) == p[endpoint]["max_seq"]
            for uuid_, p in want.items() for endpoint in ("events", "jobs", "logs")
        )
        if done and collector.spool.stats().pending_records == 0:
            return
        assert time.monotonic() < deadline, collector.status_line()
        await asyncio.sleep(0.5)


def devices_of(truth: dict[str, Any]) -> set[bytes]:
    """The Kafka keys of the simulated printers."""
    return {p["printer_uuid"].encode() for p in truth["printers"]}


async def site_messages(
    bootstrap: str, site_id: str, registry: SchemaRegistry, devices: set[bytes] | None = None
) -> list[tuple[Any, Any]]:
    """Every telemetry message of `site_id`; `devices` (Kafka keys) narrows the decoding."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=f"it-{uuid.uuid4().hex}", enable_auto_commit=False,
                                isolation_level="read_committed")
    await consumer.start()
    try:
        tps = [TopicPartition(t, p) for t in telemetry_topics() for p in range(PARTITIONS)]
        consumer.assign(tps)
        end = await consumer.end_offsets(tps)
        await consumer.seek_to_beginning(*tps)
        out = []
        while any([await consumer.position(tp) < end[tp] for tp in tps]):
            for records in (await consumer.getmany(timeout_ms=1000, max_records=5000)).values():
                for m in records:
                    if devices is not None and m.key not in devices:
                        continue  # another test's printer: not worth decoding
                    decoded = registry.decode(m.value)
                    if decoded.record["site_id"] == site_id:
                        out.append((m, decoded))
        return out
    finally:
        await consumer.stop()


