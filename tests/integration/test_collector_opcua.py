"""The collector's OPC UA driver (producers/collector/drivers/opcua.py) against the
simulator's real OPC UA server (asyncua, Basic256Sha256 SignAndEncrypt) on 127.0.0.1: a
real Collector spools to a temp folder, and the test reads the spool back. A mixed site
(printer API and OPC UA), a server restart, the refusals, and the private strings. Needs
no Kafka or ClickHouse (nothing is uploaded)."""

from __future__ import annotations

import asyncio
import logging
import shutil
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from asyncua import ua
from asyncua.server.server import Server

from producers.collector.collector import Collector
from producers.collector.config import Cadence, CollectorSettings
from producers.collector.printer_tables import OpcUaPrinter
from producers.collector.device_sink import PrinterStatus
from producers.collector.drivers.opcua import client_certificate
from producers.collector.pseudonym import pseudonym
from producers.opcua_model import CertificatePair, Role, ensure_certificate
from producers.simulator import Fleet, SimClock, SimulatorServer, SimulatorSettings
from producers.simulator.opcua_server import OpcUaServer
from producers.spool.spool import Spool
from schemas import SchemaRegistry

START_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
SITE = "site-opcua"
SECRET = "it-secret"
FAST = Cadence(heartbeat_s=0.5, events_s=0.5, jobs_s=0.5, logs_s=0.5, counters_s=1.0, consumables_s=1.0,
               identity_s=60.0)
RESTART_PORT = 23841  # the restarted server must listen where the collector looks
pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest.fixture(autouse=True, scope="module")
def _quiet_import() -> None:
    for name in ("asyncua.common.xmlimporter", "asyncua.ua.uatypes"):
        logging.getLogger(name).setLevel(logging.ERROR)


def _sim_settings(tmp: Path, **kw: Any) -> SimulatorSettings:
    values: dict[str, Any] = dict(printers=4, seed=11, start_ms=START_MS, port=0, ca_dir=tmp / "ca", opcua_printers=2,
                                  opcua_port=0, opcua_dir=tmp / "opcua", opcua_tick_s=0.1)
    values.update(kw)
    return SimulatorSettings(**values)


async def _trusted_collector_pair(tmp: Path, state_dir: Path, opcua_dir: Path) -> CertificatePair:
    """The collector's own pair (as it makes it at start), trusted by the simulator."""
    pair = await client_certificate(state_dir, SITE)
    (opcua_dir / "trusted").mkdir(parents=True, exist_ok=True)
    (opcua_dir / "trusted" / "collector.der").write_bytes(pair.der())
    return pair


def _opcua_table(opcua: OpcUaServer, tmp: Path, *, password: str | None = None, pin: Path | None = None) -> OpcUaPrinter:
    assert opcua.users_file is not None and opcua.server_certificate is not None
    user, real = opcua.users_file.read_text().strip().split(":", 1)
    password_file = tmp / f"password-{password or 'good'}"
    password_file.write_text((password or real) + "\n")
    return OpcUaPrinter(url=opcua.url, server_certificate=pin or opcua.server_certificate.cert_file, user=user,
                        password_file=password_file)


def _collector_settings(state_dir: Path, printers: tuple[OpcUaPrinter, ...], urls: tuple[str, ...] = (),
                        ca_file: Path | None = None) -> CollectorSettings:
    return CollectorSettings(
        site_id=SITE, site_secret=SECRET, state_dir=state_dir, gateway_url="https://127.0.0.1:9",
        gateway_token="unused", printer_urls=urls, printer_ca_file=ca_file, status_port=-1, cadence=FAST,
        request_timeout_s=5.0, printers=printers,
    )



class Running:
    """A Collector whose drivers run (no uploader: the spool is what the test reads)."""

    def __init__(self, settings: CollectorSettings) -> None:
        self.collector = Collector(settings)
        self.stop = asyncio.Event()
        self._task: asyncio.Task[Any] | None = None

    async def __aenter__(self) -> Running:
        await self.collector.start()
        self._task = asyncio.create_task(self._run())
        return self

    async def _run(self) -> None:
        await asyncio.gather(*(d.run(self.stop) for d in self.collector.drivers))

    async def __aexit__(self, *exc: object) -> None:
        self.stop.set()
        if self._task is not None:
            await asyncio.wait_for(self._task, 60)
        await self.collector.stop()

    def statuses(self) -> list[PrinterStatus]:
        return self.collector.printer_statuses()

    async def until(self, done: Callable[[], bool], timeout_s: float, what: str) -> None:
        for _ in range(int(timeout_s / 0.1)):
            if done():
                return
            if self._task is not None and self._task.done():
                self._task.result()
            await asyncio.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what}: {[(s.base_url, s.spooled_by_kind, s.last_error) for s in self.statuses()]}")


def spooled(state_dir: Path) -> list[tuple[str, dict[str, Any]]]:
    """(kind, record) of everything in the (closed) collector's spool, in order."""
    registry = SchemaRegistry.load_default()
    spool = Spool(state_dir / "spool", max_bytes=256 << 20)
    spool.open()
    try:
        batch = spool.peek(max_records=1 << 30, max_bytes=1 << 40)
        decoded = [registry.decode(r.payload) for r in batch.records]
    finally:
        spool.close()
    return [(d.kind, d.record) for d in decoded]


def all_events(fleet: Fleet, pid: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    while True:
        page = fleet.read(pid, "events", after=out[-1]["seq"] if out else 0, limit=5000)
        out += page["events"]
        if not page.get("more"):
            return out


def finished_jobs(fleet: Fleet, pid: str) -> dict[str, dict[str, Any]]:
    """The printer API's last snapshot of each finished job: the truth an OPC UA job is
    checked against."""
    finished: dict[str, dict[str, Any]] = {}
    after = 0
    while True:
        page = fleet.read(pid, "jobs", after=after, limit=50)
        for snap in page["jobs"]:
            if snap["completion_status"] in ("COMPLETED", "FAILED", "CANCELLED"):
                finished[snap["job_id"]] = snap
        if not page.get("more"):
            return finished
        after = page["jobs"][-1]["seq"]


def device_of(fleet: Fleet, pid: str) -> str:
    return str(fleet.read(pid, "identity")["printer_uuid"])


def assert_events_once(records: list[tuple[str, dict[str, Any]]], fleet: Fleet, pid: str) -> None:
    device = device_of(fleet, pid)
    got = [r for k, r in records if k == "system_event" and r["device_id"] == device]
    want = all_events(fleet, pid)
    assert len({r["record_id"] for r in got}) == len(got)
    def key(e: dict[str, Any]) -> tuple[int, str, str]:
        return e["event_time"], e["code"], e["severity"]
    assert sorted(key(r) for r in got) == sorted(key(e) for e in want)
    firmware = fleet.read(pid, "identity")["firmware_release"]
    assert {r["firmware_version"] for r in got} == {firmware}


def assert_jobs_once(records: list[tuple[str, dict[str, Any]]], fleet: Fleet, pid: str) -> None:
    """Each finished job once, as job v2: what JobOrderResponseList says, with the fields
    OPC 40540 has no node for null or UNKNOWN (docs/opcua.md)."""
    device = device_of(fleet, pid)
    got = [r for k, r in records if k == "job" and r["device_id"] == device]
    want = finished_jobs(fleet, pid)
    assert want
    assert sorted(r["job_id"] for r in got) == sorted(pseudonym(SECRET.encode(), "job", j) for j in want)
    by_id = {r["job_id"]: r for r in got}
    for local_id, snap in want.items():
        job = by_id[pseudonym(SECRET.encode(), "job", local_id)]
        fields = ("completion_status", "started_at", "completed_at", "layer_count", "material_type")
        assert {f: job[f] for f in fields} == {f: snap[f] for f in fields}, local_id
        assert job["event_time"] == snap["completed_at"]
        assert (job["created_at"], job["print_mode"], job["parts"], job["layers"]) == (None, "UNKNOWN", [], [])


def assert_snapshots(records: list[tuple[str, dict[str, Any]]], fleet: Fleet, pid: str) -> None:
    """The newest identity and counters of the machine, as v2 records: what OPC UA has a
    node for equals the printer API's answer; the rest is null, never invented."""
    device = device_of(fleet, pid)
    [*_, identity] = [r for k, r in records if k == "device_identity" and r["device_id"] == device]
    truth = fleet.read(pid, "identity")
    for f in ("printer_uuid", "printer_name", "model_number", "serial_number", "firmware_release"):
        assert identity[f] == truth[f], f
    assert (identity["printer_size"], identity["disk_capacity_bytes"]) == (None, None)
    assert START_MS < identity["device_date"] <= fleet.now_ms  # the server's clock: simulated time
    [*_, counters] = [r for k, r in records if k == "usage_counters" and r["device_id"] == device]
    truth = fleet.read(pid, "counters")
    assert (counters["total_jobs"], counters["total_print_time_s"]) == (truth["total_jobs"], truth["total_print_time_s"])
    assert counters["total_layers"] is None and counters["lamp_usage_s"] is None
    assert counters["filter_status"] == "UNKNOWN"
    # Consumables from the feedstock list: the agents' levels, the build unit's material.
    truth = fleet.read(pid, "consumables")
    [*_, agents] = [r for k, r in records if k == "agent_system" and r["device_id"] == device]
    assert {a["agent_type"]: a["consumable_level_pct"] for a in agents["agents"]} == pytest.approx(
        {a["agent_type"]: a["consumable_level_pct"] for a in truth["agent_system"]["agents"]})
    assert all(a["agent_used_cm3"] is None and a["build_unit_insertions"] is None for a in agents["agents"])
    [*_, unit] = [r for k, r in records if k == "build_unit" and r["device_id"] == device]
    installed = truth["build_unit"]["installed_build_unit"]
    if installed is None:
        assert unit["installed_build_unit"] is None
    else:
        assert (unit["installed_build_unit"]["material_type"], unit["installed_build_unit"]["material_quantity_kg"]) \
            == (installed["material_type"], pytest.approx(installed["material_quantity_kg"]))
        assert unit["installed_build_unit"]["serial_number"] is None


def events_spooled(run: Running, fleet: Fleet, pids: list[str]) -> Callable[[], bool]:
    want = {device_of(fleet, pid): len(all_events(fleet, pid)) for pid in pids}

    def done() -> bool:
        have = {s.device_id: s.spooled_by_kind.get("system_event", 0) for s in run.statuses()}
        return all(have.get(d, 0) >= n for d, n in want.items())
    return done


@dataclass
class MixedSite:
    sim: SimulatorServer
    tmp: Path
    state_dir: Path


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def mixed(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[MixedSite]:
    tmp = tmp_path_factory.mktemp("mixed")
    settings = _sim_settings(tmp)
    state_dir = tmp / "collector"
    await _trusted_collector_pair(tmp, state_dir, settings.opcua_dir)
    fleet = Fleet(settings)
    fleet.advance_to(START_MS + 86_400_000)  # a simulated day: finished jobs, events of every kind
    async with SimulatorServer(settings, fleet=fleet) as sim:
        sim.clock.pause()
        yield MixedSite(sim, tmp, state_dir)


async def test_a_mixed_site_spools_each_opcua_machines_events_and_jobs_once(mixed: MixedSite) -> None:
    sim, fleet = mixed.sim, mixed.sim.fleet
    assert sim.opcua is not None
    opcua_ids = sim.opcua.machine_ids
    api_ids = [pid for pid in fleet.printer_ids if pid not in opcua_ids]
    settings = _collector_settings(mixed.state_dir, (_opcua_table(sim.opcua, mixed.tmp),),
                                   tuple(sim.base_urls[pid] for pid in api_ids), sim.ca_file)
    async with Running(settings) as run:
        await run.until(events_spooled(run, fleet, fleet.printer_ids), 120, "the day's events")
        # Two simulated hours more: new events come by subscription, jobs end.
        fleet.advance_to(fleet.now_ms + 2 * 3_600_000)
        await sim.opcua.sync()
        await run.until(events_spooled(run, fleet, fleet.printer_ids), 60, "the new events")
        await asyncio.sleep(2 * FAST.heartbeat_s + 1)  # a heartbeat and a tick after the last change
        statuses = {s.device_id: s for s in run.statuses()}
    records = spooled(mixed.state_dir)
    for pid in fleet.printer_ids:
        assert_events_once(records, fleet, pid)
    for pid in opcua_ids:
        device = device_of(fleet, pid)
        assert statuses[device].driver == "opcua" and statuses[device].reachable
        assert statuses[device].printer_name == fleet.read(pid, "identity")["printer_name"]
        assert_jobs_once(records, fleet, pid)
        assert_snapshots(records, fleet, pid)
        status = fleet.read(pid, "status")
        beats = [r for k, r in records if k == "heartbeat" and r["device_id"] == device]
        assert beats and (beats[-1]["status"], beats[-1]["activity"]) == (status["status"], status["activity"]) or \
            status["activity"] in ("UNLOADING_BUILD_UNIT",)  # read as CALIBRATING (docs/opcua.md)
        assert beats[-1]["pending_job_count"] == status["pending_job_count"]
        # Stamped by the machine's clock (the server's CurrentTime), as the printer API's
        # heartbeats are by the printer's: here the simulated time, not the wall clock.
        assert beats[-1]["event_time"] == status["event_time"] == fleet.now_ms
        assert beats[-1]["layers_total"] == (status["layers_total"] if status["current_job_id"] else None)
    assert {s.driver for s in statuses.values()} == {"opcua", "printer-api"}


async def test_a_restarted_collector_resumes_from_its_cursors_without_repeating(mixed: MixedSite) -> None:
    sim, fleet = mixed.sim, mixed.sim.fleet
    assert sim.opcua is not None
    opcua_ids = sim.opcua.machine_ids
    settings = _collector_settings(mixed.state_dir, (_opcua_table(sim.opcua, mixed.tmp),))
    before = spooled(mixed.state_dir)
    async with Running(settings) as run:
        await run.until(lambda: all(s.reachable for s in run.statuses()) and len(run.statuses()) == 2, 60,
                        "the machines again")
        had = {device_of(fleet, pid): len(all_events(fleet, pid)) for pid in opcua_ids}
        fleet.advance_to(fleet.now_ms + 3_600_000)  # and an hour more while it runs
        await sim.opcua.sync()
        new = {device_of(fleet, pid): len(all_events(fleet, pid)) - had[device_of(fleet, pid)] for pid in opcua_ids}
        assert any(new.values())
        await run.until(lambda: all(s.spooled_by_kind.get("system_event", 0) >= new[s.device_id]
                                    for s in run.statuses()), 60, "the hour's events")
        await asyncio.sleep(2)  # a tick more: anything repeated would be spooled by now
    records = spooled(mixed.state_dir)
    assert len(records) > len(before)
    for pid in opcua_ids:
        assert_events_once(records, fleet, pid)  # the first run's and this run's, each once
        assert_jobs_once(records, fleet, pid)


async def test_machines_names_the_only_machines_read(mixed: MixedSite) -> None:
    sim = mixed.sim
    assert sim.opcua is not None
    wanted = sim.opcua.machine_ids[0]
    table = replace(_opcua_table(sim.opcua, mixed.tmp), machines=(wanted, "no-such-machine"))
    state_dir = mixed.tmp / "filtered"
    shutil.copytree(mixed.state_dir / "opcua", state_dir / "opcua")  # the trusted key pair
    async with Running(_collector_settings(state_dir, (table,))) as run:
        await run.until(lambda: run.statuses()[0].spooled_by_kind.get("heartbeat", 0) > 0, 60, "a heartbeat")
        statuses = run.statuses()
    assert [(s.base_url, s.device_id) for s in statuses] == [
        (f"{sim.opcua.url}#{wanted}", device_of(sim.fleet, wanted))]


async def test_no_private_string_of_an_opcua_machine_is_in_any_byte_the_collector_wrote(mixed: MixedSite) -> None:
    sim = mixed.sim
    assert sim.opcua is not None
    private = {s for p in sim.fleet.truth()["printers"] if p["printer_id"] in sim.opcua.machine_ids
               for s in p["private_strings"]}
    assert private
    files = [f for f in mixed.state_dir.rglob("*") if f.is_file()]
    assert any(f.parent.name == "spool" or "spool" in f.parts for f in files)
    for f in files:
        data = f.read_bytes()
        for secret in private:
            assert secret.encode() not in data, f"{secret!r} in {f}"


async def _unavailable_line(mixed: MixedSite, caplog: pytest.LogCaptureFixture, table: OpcUaPrinter,
                            state_dir: Path) -> str:
    settings = _collector_settings(state_dir, (table,))
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="producers.collector"):
        async with Running(settings) as run:
            await run.until(lambda: run.statuses()[0].poll_failures >= 2, 60, "two refusals")
    lines = [r for r in caplog.records if "printer_unavailable" in r.getMessage()]
    assert len(lines) == 1, [r.getMessage() for r in caplog.records]  # once, not per attempt
    assert lines[0].exc_info is None and "\n" not in lines[0].getMessage()
    return lines[0].getMessage()


async def test_a_wrong_password_is_one_clear_line(mixed: MixedSite, caplog: pytest.LogCaptureFixture) -> None:
    assert mixed.sim.opcua is not None
    table = _opcua_table(mixed.sim.opcua, mixed.tmp, password="not-the-password")
    state_dir = mixed.tmp / "wrong-password"
    shutil.copytree(mixed.state_dir / "opcua", state_dir / "opcua")  # the trusted key pair
    line = await _unavailable_line(mixed, caplog, table, state_dir)
    assert "user name or password refused (BadUserAccessDenied)" in line


async def test_an_untrusted_collector_certificate_is_one_clear_line(mixed: MixedSite,
                                                                     caplog: pytest.LogCaptureFixture) -> None:
    assert mixed.sim.opcua is not None
    # Another state folder: another collector key pair, which the machine does not trust.
    line = await _unavailable_line(mixed, caplog, _opcua_table(mixed.sim.opcua, mixed.tmp), mixed.tmp / "untrusted")
    assert "does not trust this collector's certificate (BadCertificateUntrusted)" in line


async def test_a_changed_server_certificate_is_one_line_naming_both_thumbprints(
        mixed: MixedSite, caplog: pytest.LogCaptureFixture) -> None:
    assert mixed.sim.opcua is not None and mixed.sim.opcua.server_certificate is not None
    other = await ensure_certificate(mixed.tmp / "other", "server", "urn:printfleet:simulator", role=Role.SERVER)
    table = _opcua_table(mixed.sim.opcua, mixed.tmp, pin=other.cert_file)
    line = await _unavailable_line(mixed, caplog, table, mixed.state_dir.parent / "changed")
    assert (f"server certificate changed: offered sha256 {mixed.sim.opcua.server_certificate.thumbprint()}, "
            f"pinned sha256 {other.thumbprint()}") in line


async def test_a_server_without_a_secure_endpoint_is_one_clear_line(mixed: MixedSite,
                                                                     caplog: pytest.LogCaptureFixture) -> None:
    assert mixed.sim.opcua is not None
    server = Server()
    await server.init()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"opc.tcp://127.0.0.1:{port}/"
    server.set_endpoint(url)
    server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
    async with server:
        table = replace(_opcua_table(mixed.sim.opcua, mixed.tmp), url=url)
        line = await _unavailable_line(mixed, caplog, table, mixed.tmp / "insecure")
    assert f"{url}: no Basic256Sha256 SignAndEncrypt endpoint (offered: None/None)" in line


async def test_a_server_restart_loses_and_repeats_nothing(tmp_path: Path) -> None:
    settings = _sim_settings(tmp_path, opcua_port=RESTART_PORT)
    state_dir = tmp_path / "collector"
    await _trusted_collector_pair(tmp_path, state_dir, settings.opcua_dir)
    fleet = Fleet(settings)
    fleet.advance_to(START_MS + 12 * 3_600_000)
    clock = SimClock(fleet.now_ms, settings.acceleration)
    clock.pause()
    pids = fleet.printer_ids[-2:]
    first = OpcUaServer(settings, fleet, clock.now_ms)
    await first.start()
    try:
        async with Running(_collector_settings(state_dir, (_opcua_table(first, tmp_path),))) as run:
            await run.until(events_spooled(run, fleet, pids), 120, "the events before the restart")
            await first.stop()
            fleet.advance_to(fleet.now_ms + 3 * 3_600_000)  # the printers go on while the server is down
            await run.until(lambda: all(not s.reachable for s in run.statuses()), 30, "the machines unreachable")
            await asyncio.sleep(2 * FAST.heartbeat_s)  # UNREACHABLE heartbeats meanwhile
            async with OpcUaServer(settings, fleet, clock.now_ms):
                await run.until(events_spooled(run, fleet, pids), 120, "the events after the restart")
                await asyncio.sleep(2)  # a tick more: anything repeated would be spooled by now
    finally:
        await first.stop()
    records = spooled(state_dir)
    for pid in pids:
        assert_events_once(records, fleet, pid)
        assert_jobs_once(records, fleet, pid)
        device = device_of(fleet, pid)
        assert any(r["status"] == "UNREACHABLE" for k, r in records if k == "heartbeat" and r["device_id"] == device)
