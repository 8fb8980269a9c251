"""Issue 19, point 1, on the real broker: one printer of a site that is not enrolled does
not block the site. 20 simulated printers, one missing from the gateway's sites file: the
other 19 printers' records reach Kafka while the gateway refuses the one's, which the
collector keeps aside; once the printer is enrolled (sites file rewritten, gateway
restarted) its kept records arrive, each exactly once."""

from __future__ import annotations

import asyncio
import socket
import time
import uuid
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from deploy.settings import StackSettings
from producers.collector.collector import Collector
from producers.collector.config import CollectorSettings
from producers.gateway.gateway import Gateway, GatewaySettings
from producers.gateway.sites import SiteDirectory
from producers.simulator import SimulatorServer, SimulatorSettings, ensure_site_ca, issue_server_certificate
from schemas import SchemaRegistry
from site_harness import ACCELERATION, FAST, START_MS, devices_of, site_messages

RUN_MS = 12 * 3_600_000  # twelve simulated hours: events, jobs and logs on every printer


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _until(what: str, check: Any, collector: Collector, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, f"{what}: {collector.status_line()}"
        await asyncio.sleep(0.5)


def _paged_done(collector: Collector, truth: dict[str, Any]) -> bool:
    """Every event, job and log the printers hold is polled (spooled)."""
    cursors = collector.cursors
    assert cursors is not None
    return all(cursors.get(p["printer_uuid"], endpoint) == p[endpoint]["max_seq"]
               for p in truth["printers"] for endpoint in ("events", "jobs", "logs"))


def _counts(messages: list[tuple[Any, Any]]) -> tuple[dict[tuple[str, str], set[str]], Counter[str]]:
    """Record ids per (device, kind), and copies per record id of the paged kinds (a
    heartbeat polled twice from a paused simulator is the same observation twice)."""
    distinct: dict[tuple[str, str], set[str]] = defaultdict(set)
    copies: Counter[str] = Counter()
    for _, d in messages:
        distinct[(d.record["device_id"], d.kind)].add(d.record["record_id"])
        if d.kind != "heartbeat":
            copies[d.record["record_id"]] += 1
    return distinct, copies


async def test_a_printer_not_enrolled_is_kept_aside_while_its_site_flows_then_arrives_once_enrolled(
    stack: StackSettings, tmp_path: Path
) -> None:
    registry = SchemaRegistry.load_default()
    site_id, token = f"site-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    sim_settings = SimulatorSettings(printers=20, seed=7, acceleration=ACCELERATION, port=0,
                                     ca_dir=tmp_path / "site-ca", start_ms=START_MS)
    async with SimulatorServer(sim_settings) as sim:
        cloud_dir = tmp_path / "cloud-ca"
        cert = issue_server_certificate(ensure_site_ca(cloud_dir, "printfleet cloud"), cloud_dir)
        devices = [p["printer_uuid"] for p in sim.fleet.truth()["printers"]]
        lonely, enrolled = devices[7], [d for d in devices if d != devices[7]]
        sites_file = tmp_path / "sites.toml"
        sites_file.write_text(SiteDirectory.render([(site_id, token, enrolled)]))
        # A fixed port: the collector finds the restarted gateway where it left it.
        gw_settings = GatewaySettings(kafka=stack.kafka(), sites_file=sites_file, port=_free_port(),
                                      tls_cert=cert.cert_file, tls_key=cert.key_file)
        gateway = Gateway(gw_settings, registry, SiteDirectory.load(sites_file))
        await gateway.start()
        settings = CollectorSettings(
            site_id=site_id, site_secret="it-secret", state_dir=tmp_path / "collector",
            gateway_url=gateway.url, gateway_token=token, gateway_ca_file=cloud_dir / "ca.pem",
            printer_urls=tuple(sim.base_urls.values()), printer_ca_file=sim.ca_file,
            status_port=0, cadence=FAST, resend_kept_s=3.0,
        )
        stop = asyncio.Event()
        try:
            async with Collector(settings, registry) as collector:
                runner = asyncio.create_task(collector.run(stop))
                try:
                    while sim.clock.now_ms() < START_MS + RUN_MS:
                        assert not runner.done(), runner
                        await asyncio.sleep(1)
                    sim.clock.pause()
                    sim.sync()
                    truth = sim.fleet.truth()
                    await _until("the printers polled to the end", lambda: _paged_done(collector, truth),
                                 collector, 120)

                    # Phase 1: the 19 flow, the one is refused and kept aside.
                    want = {p["printer_uuid"]: p for p in truth["printers"]}
                    keys = devices_of(truth)
                    deadline = time.monotonic() + 120
                    while True:
                        distinct, _ = _counts(await site_messages(stack.kafka_bootstrap, site_id, registry, keys))
                        if all(len(distinct[(d, kind)]) == want[d][endpoint]["count"] for d in enrolled
                               for kind, endpoint in (("system_event", "events"), ("job", "jobs"),
                                                      ("device_log", "logs"))):
                            break
                        assert time.monotonic() < deadline, collector.status_line()
                        await asyncio.sleep(2)
                    assert not any(d == lonely for d, _ in distinct), "a record of the refused printer reached Kafka"
                    paged = sum(want[lonely][e]["count"] for e in ("events", "jobs", "logs"))
                    assert paged > 0, "the lonely printer should have something to say"

                    def all_kept() -> bool:
                        # Kept records go back into the spool every resend_kept_s and return
                        # once the gateway refuses them again: look between two such rounds.
                        by_device = collector.status()["kept_aside"]["by_device"]
                        return (set(by_device) == {lonely} and set(by_device[lonely]) == {"foreign_device"}
                                and sum(by_device[lonely].values()) >= paged)  # its heartbeats too

                    await _until("everything of the refused printer kept aside", all_kept, collector, 60)
                    assert lonely in collector.status_line()  # the device id in full
                    assert collector.uploader.counters.records_rejected == 0

                    # Phase 2: enrol it; the gateway restarts with the new sites file.
                    await gateway.stop()
                    sites_file.write_text(SiteDirectory.render([(site_id, token, devices)]))
                    gateway = Gateway(gw_settings, registry, SiteDirectory.load(sites_file))
                    await gateway.start()
                    await _until("the kept records sent again and taken",
                                 lambda: collector.uploader.kept.records == 0
                                 and not collector.uploader.kept.counts()
                                 and collector.spool.stats().pending_records == 0, collector, 120)
                finally:
                    stop.set()
                    await runner
        finally:
            await gateway.stop()

    messages = await site_messages(stack.kafka_bootstrap, site_id, registry, keys)
    distinct, copies = _counts(messages)
    for kind, endpoint in (("system_event", "events"), ("job", "jobs"), ("device_log", "logs")):
        assert len(distinct[(lonely, kind)]) == want[lonely][endpoint]["count"], kind
    assert distinct[(lonely, "heartbeat")], "its heartbeats, kept aside too, arrive"
    lonely_ids = {r for (d, kind), ids in distinct.items() if d == lonely and kind != "heartbeat" for r in ids}
    assert len(lonely_ids) >= paged  # events, jobs, logs, and its counters, consumables, identity
    assert all(copies[r] == 1 for r in lonely_ids), "a kept record arrived twice"
    assert all(n == 1 for n in copies.values()), "a record of the site arrived twice"
    assert collector.uploader.kept.counters.resent >= paged
