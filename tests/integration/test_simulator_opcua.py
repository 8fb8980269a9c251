"""The simulator's OPC UA side (producers/simulator/opcua_server.py) through a real asyncua
client on 127.0.0.1: the machines, their values against the printer API of the same
fleet, events by subscription and by history across a restart, the security set-up, and
the private strings a collector must never copy. Needs no Kafka or ClickHouse."""

from __future__ import annotations

import asyncio
import io
import logging
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from asyncua import ua
from asyncua.client.client import Client
from asyncua.common.node import Node
from asyncua.common.ua_utils import is_subtype
from asyncua.crypto.security_policies import SecurityPolicyBasic256Sha256
from asyncua.ua.uaerrors import BadCertificateUntrusted, BadUserAccessDenied, UaError

from printfleet import cmd_simulate
from producers.opcua_model import CertificatePair, Role, ensure_certificate, names
from producers.simulator import Fleet, SimClock, SimulatorServer, SimulatorSettings
from producers.simulator import opcua_view as view
from producers.simulator.opcua_server import APPLICATION_URI, OpcUaServer

START_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
CLIENT_URI = "urn:printfleet:collector:test"
pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest.fixture(autouse=True, scope="module")
def _quiet_import() -> None:
    # asyncua's warnings while importing the nodesets (docs/opcua.md) are not under test.
    for name in ("asyncua.common.xmlimporter", "asyncua.ua.uatypes"):
        logging.getLogger(name).setLevel(logging.ERROR)


@dataclass
class Site:
    sim: SimulatorServer
    opcua: OpcUaServer
    client_pair: CertificatePair
    rogue_pair: CertificatePair
    user: str
    password: str


def _settings(tmp: Path, **kw: Any) -> SimulatorSettings:
    return SimulatorSettings(
        printers=4, seed=11, start_ms=START_MS, port=0, ca_dir=tmp / "ca", opcua_printers=2, opcua_port=0,
        opcua_dir=tmp / "opcua", opcua_tick_s=0.1, **kw,
    )


async def _trust_client(tmp: Path, opcua_dir: Path) -> tuple[CertificatePair, CertificatePair]:
    client = await ensure_certificate(tmp / "collector", "collector", CLIENT_URI, role=Role.CLIENT)
    rogue = await ensure_certificate(tmp / "rogue", "rogue", CLIENT_URI, role=Role.CLIENT)
    (opcua_dir / "trusted").mkdir(parents=True, exist_ok=True)
    (opcua_dir / "trusted" / "collector.der").write_bytes(client.der())
    return client, rogue


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def site(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Site]:
    tmp = tmp_path_factory.mktemp("opcua-site")
    settings = _settings(tmp)
    client_pair, rogue_pair = await _trust_client(tmp, settings.opcua_dir)
    fleet = Fleet(settings)
    fleet.advance_to(START_MS + 86_400_000)  # a simulated day: finished jobs, events of every kind
    async with SimulatorServer(settings, fleet=fleet) as sim:
        sim.clock.pause()  # the truth stays put while the tests compare
        assert sim.opcua is not None
        user, password = sim.opcua.users_file.read_text().strip().split(":", 1)  # type: ignore[union-attr]
        yield Site(sim, sim.opcua, client_pair, rogue_pair, user, password)


async def _client(
    url: str, server_cert: Path, pair: CertificatePair, *, user: str | None = None, password: str | None = None,
    identity: CertificatePair | None = None, watchdog_s: float = 1.0,
) -> Client:
    c = Client(url, timeout=10, watchdog_intervall=watchdog_s)
    c.application_uri = pair.application_uri
    await c.set_security(
        SecurityPolicyBasic256Sha256, str(pair.cert_file), str(pair.key_file),
        server_certificate=str(server_cert), mode=ua.MessageSecurityMode.SignAndEncrypt,
    )
    if user is not None:
        c.set_user(user)
        c.set_password(password or "")
    if identity is not None:
        await c.load_client_certificate(str(identity.cert_file))
        await c.load_private_key(identity.key_file)
    return c


async def connect(site: Site, *, password: str | None = None, pair: CertificatePair | None = None) -> Client:
    assert site.opcua.server_certificate is not None
    return await _client(
        site.opcua.url, site.opcua.server_certificate.cert_file, pair or site.client_pair,
        user=site.user, password=site.password if password is None else password,
    )


async def machines_by_type(c: Client) -> dict[str, Node]:
    """What a collector does: every child of Machines whose type is AdditiveManufacturingType."""
    ns = await names.namespace_indices(c)
    am_type = names.node_id(names.ADDITIVE_MANUFACTURING_TYPE, ns)
    found: dict[str, Node] = {}
    for child in await c.get_node(names.node_id(names.MACHINES_FOLDER, ns)).get_children():
        type_id = await child.read_type_definition()
        if type_id is not None and (type_id == am_type or await is_subtype(c.get_node(type_id), am_type)):
            found[(await child.read_browse_name()).Name] = child
    return found


async def event_types(c: Client) -> list[Node]:
    """The simulator's two event types, found under MachineTool's by browse name."""
    ns = await names.namespace_indices(c)
    sim = ns[names.SIMULATOR_URI]
    alert = c.get_node(names.node_id(names.MT_ALERT_TYPE, ns))
    notification = c.get_node(names.node_id(names.MT_NOTIFICATION_EVENT_TYPE, ns))
    return [
        await alert.get_child(ua.QualifiedName(names.ALERT_EVENT_TYPE_NAME, sim)),
        await notification.get_child(ua.QualifiedName(names.NOTIFICATION_EVENT_TYPE_NAME, sim)),
    ]


async def read(c: Client, machine: Node, path: tuple[names.Name, ...]) -> Any:
    ns = await names.namespace_indices(c)
    return await (await machine.get_child(names.path(ns, path))).read_value()


async def test_the_last_printers_are_found_in_machines_by_their_type(site: Site) -> None:
    async with await connect(site) as c:
        found = await machines_by_type(c)
    assert sorted(found) == site.sim.fleet.printer_ids[-2:] == site.opcua.machine_ids
    assert site.sim.fleet.printer_ids[0] not in found
    # The HTTPS side serves every printer and says which are OPC UA machines too.
    context = ssl.create_default_context(cafile=str(site.sim.ca_file))
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context)) as session:
        async with session.get(f"{site.sim.url}/sim/printers") as response:
            listed = {p["printer_id"]: p["opcua"] for p in (await response.json())["printers"]}
    assert listed == {pid: pid in found for pid in site.sim.fleet.printer_ids}


async def test_identification_state_and_counters_equal_the_printer_api(site: Site) -> None:
    fleet = site.sim.fleet
    async with await connect(site) as c:
        found = await machines_by_type(c)
        for pid, machine in found.items():
            identity, counters, status = (fleet.read(pid, k) for k in ("identity", "counters", "status"))
            ident = names.IDENTIFICATION
            assert await read(c, machine, ident + (names.SERIAL_NUMBER,)) == identity["serial_number"]
            assert await read(c, machine, ident + (names.PRODUCT_CODE,)) == identity["model_number"]
            assert (await read(c, machine, ident + (names.MODEL,))).Text == identity["model_name"]
            assert await read(c, machine, ident + (names.SOFTWARE_REVISION,)) == identity["firmware_release"]
            assert (await read(c, machine, ident + (names.COMPONENT_NAME,))).Text == identity["printer_name"]
            assert await read(c, machine, ident + (names.PRODUCT_INSTANCE_URI,)) == f"urn:uuid:{identity['printer_uuid']}"
            assert await read(c, machine, ident + (names.AM_TECHNOLOGY_IDENTIFIER,)) == "Powder Bed Fusion"
            assert (await read(c, machine, ident + (names.MANUFACTURER,))).Text == view.MANUFACTURER
            oc = names.OPERATION_COUNTERS
            assert await read(c, machine, oc + (names.OPERATION_DURATION,)) == counters["total_print_time_s"] * 1000
            assert await read(c, machine, oc + (names.OPERATION_CYCLE_COUNTER,)) == counters["total_jobs"]
            assert await read(c, machine, oc + (names.POWER_ON_DURATION,)) == identity["uptime_s"] * 1000
            state = view.machine_state(status["status"], status["activity"])
            assert (await read(c, machine, names.MACHINERY_ITEM_STATE + (names.CURRENT_STATE,))).Text == state.item_state
            assert (await read(c, machine, names.MACHINERY_OPERATION_MODE + (names.CURRENT_STATE,))).Text == state.operation_mode
            assert await read(c, machine, names.MONITORING_MACHINE_TOOL + (names.MT_OPERATION_MODE,)) == state.machine_tool_mode


def _param(params: list[Any], pid: str) -> Any:
    return next(p.Value.Value for p in params if p.ID == pid)


async def test_jobs_equal_the_printer_api(site: Site) -> None:
    fleet = site.sim.fleet
    async with await connect(site) as c:
        await c.load_data_type_definitions()
        for pid, machine in (await machines_by_type(c)).items():
            status = fleet.read(pid, "status")
            orders = await read(c, machine, names.JOB_ORDER_LIST)
            waiting = [o for o in orders if o.State[0].StateText.Text == "AllowedToStart"]
            assert len(waiting) == status["pending_job_count"]
            responses = {r.JobOrderID: r for r in await read(c, machine, names.JOB_ORDER_RESPONSE_LIST)}
            if status["current_job_id"]:
                running = orders[0]
                assert running.JobOrder.JobOrderID == status["current_job_id"]
                assert _param(running.JobOrder.JobOrderParameters, "LayersPlanned") == status["layers_total"]
                if status["current_job_status"] != "PREPARING":
                    run = _param(responses[status["current_job_id"]].JobResponseData, "Runs")[0]
                    assert run.CurrentLayer == status["layers_done"]
            # every finished job of the printer API's jobs endpoint, as it ended
            ended = {}
            for snap in fleet.read(pid, "jobs", limit=50)["jobs"]:
                if snap["completion_status"] in ("COMPLETED", "FAILED", "CANCELLED"):
                    ended[snap["job_id"]] = snap
            assert ended, "the simulated day should have finished jobs"
            for job_id, snap in ended.items():
                r = responses[job_id]
                expected_state = {"COMPLETED": "Ended", "FAILED": "Aborted", "CANCELLED": "Aborted"}[snap["completion_status"]]
                assert r.JobState[0].StateText.Text == expected_state
                assert r.JobState[1].StateText.Text == snap["completion_status"].capitalize()
                assert int(r.EndTime.timestamp() * 1000) == snap["completed_at"]
                if snap["started_at"] is not None:
                    assert int(r.StartTime.timestamp() * 1000) == snap["started_at"]
                assert _param(r.JobResponseData, "LayersPlanned") == snap["layer_count"]
                assert r.MaterialActuals[0].MaterialDefinitionID == snap["material_type"]
                assert float(r.MaterialActuals[0].Quantity) == pytest.approx(snap["material_in_parts_kg"], abs=5e-4)


class _Events:
    def __init__(self) -> None:
        self.received: list[Any] = []
        self.arrived = asyncio.Event()

    def event_notification(self, event: Any) -> None:
        self.received.append(event)
        self.arrived.set()


async def test_a_subscribed_event_arrives_with_its_code(site: Site) -> None:
    fleet, opcua = site.sim.fleet, site.opcua
    pid = opcua.machine_ids[-1]
    printer = fleet.printer(pid)
    async with await connect(site) as c:
        machine = (await machines_by_type(c))[pid]
        handler, standard = _Events(), _Events()
        sub = await c.create_subscription(50, handler)
        await sub.subscribe_events(machine, await event_types(c))
        # A driver that knows only MachineTool's types gets the same events (subtypes).
        ns = await names.namespace_indices(c)
        standard_sub = await c.create_subscription(50, standard)
        await standard_sub.subscribe_events(
            machine,
            [c.get_node(names.node_id(names.MT_ALERT_TYPE, ns)), c.get_node(names.node_id(names.MT_NOTIFICATION_EVENT_TYPE, ns))],
        )
        before = printer.events.last_seq
        # Two simulated hours later, the printer has raised new events.
        fleet.advance_to(fleet.now_ms + 2 * 3_600_000)
        assert printer.events.last_seq > before
        await opcua.sync()
        for _ in range(400):  # up to 20 s on a loaded machine; usually well under one
            if min(len(handler.received), len(standard.received)) >= printer.events.last_seq - before:
                break
            await asyncio.sleep(0.05)
        await sub.delete()
        await standard_sub.delete()
    api = {e["seq"]: e for e in fleet.read(pid, "events", after=before)["events"]}
    got = {int(getattr(ev, names.EVENT_SEQUENCE_FIELD)): ev for ev in handler.received}
    assert sorted(got) == sorted(api)
    for seq, ev in got.items():
        e = api[seq]
        code = ev.ErrorCode if e["severity"] in view.ALERT_SEVERITIES else ev.Identifier
        assert code == e["code"]
        assert ev.Severity == view.SEVERITY[e["severity"]]
        assert int(ev.Time.timestamp() * 1000) == e["event_time"]
    by_id = {ev.EventId: ev for ev in handler.received}
    assert sorted(by_id) == sorted(ev.EventId for ev in standard.received)
    for ev in standard.received:
        mine = by_id[ev.EventId]
        assert (ev.ErrorCode, ev.Identifier, ev.Severity) == (mine.ErrorCode, mine.Identifier, mine.Severity)


async def test_wrong_password_is_refused_with_bad_user_access_denied(site: Site) -> None:
    c = await connect(site, password="not-the-password")
    with pytest.raises(BadUserAccessDenied):
        await c.connect()
    await c.disconnect()


async def test_an_untrusted_client_certificate_is_refused(site: Site) -> None:
    c = await connect(site, pair=site.rogue_pair)
    with pytest.raises(BadCertificateUntrusted):
        await c.connect()
    await c.disconnect()


async def test_a_trusted_client_certificate_is_an_identity(site: Site) -> None:
    assert site.opcua.server_certificate is not None
    c = await _client(site.opcua.url, site.opcua.server_certificate.cert_file, site.client_pair, identity=site.client_pair)
    async with c:
        assert sorted(await machines_by_type(c)) == site.opcua.machine_ids


async def test_only_basic256sha256_sign_and_encrypt_is_offered_without_anonymous(site: Site) -> None:
    endpoints = await Client(site.opcua.url, timeout=10).connect_and_get_server_endpoints()
    assert endpoints
    assert {(e.SecurityPolicyUri, e.SecurityMode) for e in endpoints} == {
        (SecurityPolicyBasic256Sha256.URI, ua.MessageSecurityMode.SignAndEncrypt)
    }
    tokens = {t.TokenType for e in endpoints for t in e.UserIdentityTokens}
    assert ua.UserTokenType.Anonymous not in tokens
    assert {ua.UserTokenType.UserName, ua.UserTokenType.Certificate} <= tokens
    plain = Client(site.opcua.url, timeout=10)
    with pytest.raises(UaError):  # asyncua finds no endpoint of security policy None
        await plain.connect()
    await plain.disconnect()


async def test_private_strings_of_the_printer_are_in_the_address_space(site: Site) -> None:
    fleet = site.sim.fleet
    seen: set[str] = set()
    file_names: set[str] = set()
    async with await connect(site) as c:
        await c.load_data_type_definitions()
        for pid, machine in (await machines_by_type(c)).items():
            for o in await read(c, machine, names.JOB_ORDER_LIST):
                seen.update(t.Text for t in _param(o.JobOrder.JobOrderParameters, "JobName"))
                seen.update(w.ID for w in o.JobOrder.WorkMasterID)
                seen.update(d.Text for d in o.JobOrder.Description)
            seen.add(await read(c, machine, names.JOB_ORDER_CONTROL + (names.PERSONNEL_ID,)))
            seen.add(await read(c, machine, names.ACTIVE_PROGRAM_NAME))
            files = await machine.get_child(names.path(await names.namespace_indices(c), names.WORK_MASTER_FILES))
            file_names.update([(await f.read_browse_name()).Name for f in await files.get_children(nodeclassmask=ua.NodeClass.Object)])
            for ev in await machine.read_event_history(None, None, 0):
                seen.add(getattr(ev, "Message").Text)
        private = {s for p in fleet.truth()["printers"] if p["printer_id"] in site.opcua.machine_ids for s in p["private_strings"]}
    assert len(file_names) == 2 and file_names <= private  # one job file per machine, in FileSystem
    text = "\n".join(seen)
    job = fleet.printer(site.opcua.machine_ids[-1]).current or fleet.printer(site.opcua.machine_ids[0]).current
    assert job is not None, "a printer of the fixture is printing"
    for secret in (job.name, job.file_name, job.user, job.computer):
        assert secret in text and secret in private
    assert any(f"(job '{s}')" in m for s in private for m in seen)  # a job's event names the job


async def test_a_restarted_server_answers_history_of_events_before_the_restart(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    client_pair, _ = await _trust_client(tmp_path, settings.opcua_dir)
    fleet = Fleet(settings)
    clock = SimClock(fleet.now_ms, settings.acceleration)
    clock.pause()
    pid = fleet.printer_ids[-1]

    async def history(opcua: OpcUaServer) -> list[tuple[int, bytes]]:
        assert opcua.server_certificate is not None
        user, password = opcua.users_file.read_text().strip().split(":", 1)  # type: ignore[union-attr]
        async with await _client(opcua.url, opcua.server_certificate.cert_file, client_pair, user=user, password=password) as c:
            machine = (await machines_by_type(c))[pid]
            events = await machine.read_event_history(None, None, 0, await event_types(c))
        return [(int(getattr(ev, names.EVENT_SEQUENCE_FIELD)), bytes(getattr(ev, "EventId"))) for ev in events]

    async with OpcUaServer(settings, fleet, clock.now_ms) as first:
        pinned = first.server_certificate
        before = await history(first)
    fleet.advance_to(fleet.now_ms + 3 * 3_600_000)  # the server is down while the printer goes on
    async with OpcUaServer(settings, fleet, clock.now_ms) as second:
        assert second.server_certificate is not None and pinned is not None
        assert second.server_certificate.der() == pinned.der()  # made once per state folder
        after = await history(second)
    last = fleet.printer(pid).events.last_seq
    assert [seq for seq, _ in before] == list(range(1, len(before) + 1))
    assert len(before) < last
    assert after[: len(before)] == before  # the same events, the same EventIds
    assert [seq for seq, _ in after] == list(range(1, last + 1))  # nothing lost, nothing twice
    assert len({event_id for _, event_id in after}) == last


async def test_the_simulate_command_prints_the_opcua_url_machines_and_files(tmp_path: Path) -> None:
    out = io.StringIO()
    stop = asyncio.Event()
    settings = _settings(tmp_path)
    task = asyncio.create_task(cmd_simulate.serve(settings, out=out, stop=stop))
    for _ in range(600):
        await asyncio.sleep(0.05)
        if "OPC UA:" in out.getvalue() or task.done():
            break
    stop.set()
    assert await task == 0
    text = out.getvalue()
    assert "OPC UA:     opc.tcp://127.0.0.1:" in text and "/printfleet/  machines p003 p004" in text
    assert f"server certificate (pin it): {settings.opcua_dir / 'server-cert.der'}" in text
    assert f"users: {settings.opcua_dir / 'users.txt'}" in text


class TcpProxy:
    """A TCP relay to the OPC UA server whose connections the test can cut, while the
    server keeps the session and the subscription (a network drop, not a restart)."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []

    async def __aenter__(self) -> TcpProxy:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.drop()
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def _relay(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        server_r, server_w = await asyncio.open_connection("127.0.0.1", self.target_port)
        self._writers += [client_w, server_w]

        async def pipe(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            try:
                while data := await r.read(65536):
                    w.write(data)
                    await w.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                w.close()

        await asyncio.gather(pipe(client_r, server_w), pipe(server_r, client_w))

    def drop(self) -> None:
        for w in self._writers:
            w.transport.abort()
        self._writers.clear()


async def test_a_dropped_connection_resumes_the_subscription_without_losing_or_repeating_events(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    client_pair, _ = await _trust_client(tmp_path, settings.opcua_dir)
    fleet = Fleet(settings)
    clock = SimClock(fleet.now_ms, settings.acceleration)
    clock.pause()
    pid = fleet.printer_ids[-1]
    printer = fleet.printer(pid)
    handler = _Events()

    async def received_up_to(last: int, timeout_s: float) -> None:
        for _ in range(int(timeout_s / 0.05)):
            seqs = {int(getattr(ev, names.EVENT_SEQUENCE_FIELD)) for ev in handler.received}
            if seqs and max(seqs) >= last:
                return
            await asyncio.sleep(0.05)

    async with OpcUaServer(settings, fleet, clock.now_ms) as opcua, TcpProxy(opcua.port) as proxy:
        assert opcua.server_certificate is not None
        user, password = opcua.users_file.read_text().strip().split(":", 1)  # type: ignore[union-attr]
        url = opcua.url.replace(f":{opcua.port}/", f":{proxy.port}/")
        c = await _client(url, opcua.server_certificate.cert_file, client_pair, user=user, password=password, watchdog_s=0.5)
        await c.connect(auto_reconnect=True, reconnect_max_delay=1.0)
        try:
            machine = (await machines_by_type(c))[pid]
            sub = await c.create_subscription(100, handler)
            await sub.subscribe_events(machine, await event_types(c))
            first = printer.events.last_seq + 1
            fleet.advance_to(fleet.now_ms + 2 * 3_600_000)
            await opcua.sync()
            await received_up_to(printer.events.last_seq, 20)
            before_drop = len(handler.received)
            proxy.drop()
            fleet.advance_to(fleet.now_ms + 2 * 3_600_000)  # events raised while the network is down
            await opcua.sync()
            await received_up_to(printer.events.last_seq, 30)
        finally:
            await c.disconnect()
    seqs = [int(getattr(ev, names.EVENT_SEQUENCE_FIELD)) for ev in handler.received]
    assert 0 < before_drop < len(seqs)
    assert seqs == list(range(first, printer.events.last_seq + 1))  # none lost, none twice


async def test_without_trusted_certificates_every_client_is_refused(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    client_pair = await ensure_certificate(tmp_path / "collector", "collector", CLIENT_URI, role=Role.CLIENT)
    fleet = Fleet(settings)
    clock = SimClock(fleet.now_ms, settings.acceleration)
    async with OpcUaServer(settings, fleet, clock.now_ms) as opcua:
        assert opcua.server_certificate is not None and opcua.users_file is not None
        assert list((settings.opcua_dir / "trusted").iterdir()) == []
        user, password = opcua.users_file.read_text().strip().split(":", 1)
        c = await _client(opcua.url, opcua.server_certificate.cert_file, client_pair, user=user, password=password)
        with pytest.raises(BadCertificateUntrusted):
            await c.connect()
        await c.disconnect()
