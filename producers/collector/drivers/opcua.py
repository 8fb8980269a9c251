"""The OPC UA driver: the machines of one OPC 40540 server (docs/opcua.md, the contract).

One driver per `[[printer]]` table with `driver = "opcua"`; one session to its endpoint;
every AdditiveManufacturingType (or subtype) instance in Machinery's Machines folder
(optionally only the `machines` named) is one device with its own `DeviceSink`:

    precheck   GetEndpoints over the unsecured channel: a Basic256Sha256 SignAndEncrypt
               endpoint must be offered, with the pinned certificate (else one clear line
               naming both thumbprints; connecting would only time out)
    connect    Basic256Sha256 + SignAndEncrypt, the pinned certificate, user + password or
               certificate identity; the collector's own key pair from its state folder
    per machine: read Identification (the device id), subscribe to the two state machines,
               IsWarmUp, JobOrderList, JobOrderResponseList and the machine's events; read
               the event history from the cursor on (after every (re)connect), so events
               raised while the session was down are spooled, once
    per tick   events and finished jobs past their cursors; a heartbeat from the current
               values at the heartbeat cadence; counters, the feedstock list (build unit,
               agents) and identity read at theirs; snapshots stamped with the
               server's clock (ServerStatus/CurrentTime), as the printer API's are

Any failure of the session (refused, lost, timed out) ends it: every machine counts it,
spools an UNREACHABLE heartbeat at the heartbeat cadence, and the driver connects again.
asyncua's errors are translated here, at `_boundary`, into `PrinterUnavailable` (whose
`OpcUaRefused` leaf says why a server refused us) with a one-line reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections.abc import AsyncIterator, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from asyncua import ua
from asyncua.client.client import Client
from asyncua.common.node import Node
from asyncua.common.ua_utils import is_subtype
from asyncua.crypto.security_policies import SecurityPolicyBasic256Sha256
from asyncua.ua.object_ids import ObjectIds
from asyncua.ua.uaerrors import BadCertificateUntrusted, BadUserAccessDenied, UaError

from producers.collector.config import Cadence
from producers.collector.device_sink import DeviceSink, PrinterStatus, SinkShared
from producers.collector.drivers import opcua_mapping as mapping
from producers.collector.drivers.opcua_machine import Machine, MachineNodes
from producers.collector.printer_tables import OpcUaPrinter
from producers.errors import OpcUaRefused, PrinterUnavailable, SpoolFull
from producers.opcua_model import CertificatePair, Role, ensure_certificate, names
from producers.spool.spool import RecordClass

NAME = "opcua"
log = logging.getLogger(__name__)

PUBLISHING_INTERVAL_MS = 500
# Events read back from the history per call (the simulator answers at most 10,000).
HISTORY_PAGE = 10_000
TICK_S = 1.0
SECURE = (SecurityPolicyBasic256Sha256.URI, ua.MessageSecurityMode.SignAndEncrypt)


async def client_certificate(state_dir: Path, site_id: str) -> CertificatePair:
    """The collector's OPC UA key and certificate, made once in `state_dir/opcua/` and
    reused: a site trusts this certificate on its machines. Logs where it is."""
    pair = await ensure_certificate(state_dir / "opcua", "collector", f"urn:printfleet:collector:{site_id}",
                                    role=Role.CLIENT)
    log.warning("event=opcua_client_certificate path=%s sha256=%s: trust this certificate on the OPC UA "
                "machines", pair.cert_file, pair.thumbprint())
    return pair


def thumbprint(der: bytes) -> str:
    return hashlib.sha256(der).hexdigest()


def endpoint_refusal(url: str, endpoints: Sequence[ua.EndpointDescription], pinned_file: Path) -> str | None:
    """Why the endpoints GetEndpoints offered cannot be used (one line), or None: no
    Basic256Sha256 SignAndEncrypt endpoint, or its certificate is not the pinned one."""
    secure = [e for e in endpoints if (e.SecurityPolicyUri, e.SecurityMode) == SECURE]
    if not secure:
        offered = sorted({f"{str(e.SecurityPolicyUri).rsplit('#', 1)[-1]}/{e.SecurityMode.name.rstrip('_')}"
                          for e in endpoints})
        return f"{url}: no Basic256Sha256 SignAndEncrypt endpoint (offered: {', '.join(offered) or 'none'})"
    try:
        pinned = pinned_file.read_bytes()
    except OSError as exc:
        return f"{url}: cannot read the pinned server certificate {pinned_file}: {exc.strerror or exc}"
    offered_der = bytes(secure[0].ServerCertificate or b"")
    if offered_der != pinned:
        return (f"{url}: server certificate changed: offered sha256 {thumbprint(offered_der)}, "
                f"pinned sha256 {thumbprint(pinned)} ({pinned_file})")
    return None


@contextlib.asynccontextmanager
async def _boundary(url: str, step: str) -> AsyncIterator[None]:
    """Translate asyncua's and the socket's errors into one-line `PrinterUnavailable`."""
    try:
        yield
    except BadUserAccessDenied:
        raise OpcUaRefused(f"{url}: user name or password refused (BadUserAccessDenied)") from None
    except BadCertificateUntrusted:
        raise OpcUaRefused(f"{url}: the machine does not trust this collector's certificate "
                           "(BadCertificateUntrusted): add it to the machine's trusted certificates") from None
    except UaError as exc:
        raise PrinterUnavailable(f"{url}: {step}: {exc}") from None
    except (OSError, asyncio.TimeoutError, TimeoutError) as exc:
        raise PrinterUnavailable(f"{url}: {step}: {exc!r}") from None


class OpcUaDriver:
    """The machines behind one OPC UA endpoint; `run` until stopped."""

    def __init__(self, printer: OpcUaPrinter, shared: SinkShared, *, client_pair: CertificatePair,
                 cadence: Cadence, timeout_s: float) -> None:
        self._printer = printer
        self._shared = shared
        self._pair = client_pair
        self._cadence = cadence
        self._timeout_s = timeout_s
        # Stands for the endpoint until a session found its machines.
        self._endpoint = DeviceSink(printer.url, NAME, shared)
        self._machines: dict[str, Machine] = {}

    @property
    def name(self) -> str:
        return NAME

    @property
    def status(self) -> PrinterStatus:
        return self._endpoint.status

    @property
    def statuses(self) -> list[PrinterStatus]:
        """One entry per machine once found; the endpoint's before."""
        if not self._machines:
            return [self._endpoint.status]
        return [m.sink.status for m in self._machines.values()]

    def _sinks(self) -> list[DeviceSink]:
        return [m.sink for m in self._machines.values()] or [self._endpoint]

    async def run(self, stop: asyncio.Event) -> None:
        """Connect, follow the machines, connect again after a failure, until `stop`."""
        while not stop.is_set():
            try:
                await self._session(stop)
            except PrinterUnavailable as exc:
                for sink in self._sinks():
                    await sink.unavailable(str(exc), heartbeat=True)
            except SpoolFull as exc:
                log.warning("event=spool_full printer=%s error=%s", self._printer.url, exc)
            except Exception as exc:  # a bug or a server answer not foreseen: the other printers go on
                log.exception("event=opcua_driver_failed printer=%s", self._printer.url)
                for sink in self._sinks():
                    await sink.unavailable(f"{self._printer.url}: {exc!r}", heartbeat=True)
            try:
                await asyncio.wait_for(stop.wait(), self._cadence.heartbeat_s)
            except asyncio.TimeoutError:
                pass

    async def _precheck(self) -> None:
        """GetEndpoints over the unsecured channel, as OPC UA allows: without a secure
        endpoint or with another certificate than the pinned one, connecting would fail
        with no useful error (a pin mismatch just times out)."""
        url = self._printer.url
        async with _boundary(url, "GetEndpoints"):
            endpoints = await asyncio.wait_for(Client(url, timeout=self._timeout_s).connect_and_get_server_endpoints(),
                                               self._timeout_s)
        reason = endpoint_refusal(url, endpoints, self._printer.server_certificate)
        if reason is not None:
            raise OpcUaRefused(reason)

    async def _client(self) -> Client:
        p = self._printer
        client = Client(p.url, timeout=self._timeout_s, watchdog_intervall=max(5.0, self._cadence.heartbeat_s))
        client.application_uri = self._pair.application_uri
        await client.set_security(SecurityPolicyBasic256Sha256, str(self._pair.cert_file), str(self._pair.key_file),
                                  server_certificate=str(p.server_certificate),
                                  mode=ua.MessageSecurityMode.SignAndEncrypt)
        try:
            if p.user is not None and p.password_file is not None:
                client.set_user(p.user)
                client.set_password(p.password_file.read_text().strip())
            elif p.certificate is not None and p.private_key is not None:
                await client.load_client_certificate(str(p.certificate))
                await client.load_private_key(p.private_key)
        except (OSError, ValueError) as exc:
            raise OpcUaRefused(f"{p.url}: cannot read this collector's identity for it: {exc}") from None
        return client

    async def _session(self, stop: asyncio.Event) -> None:
        url = self._printer.url
        await self._precheck()
        client = await self._client()
        try:
            async with _boundary(url, "connect"):
                await client.connect()
            async with _boundary(url, "browse"):
                await client.load_data_type_definitions()
                ns = await names.namespace_indices(client)
                found = await self._find_machines(client, ns)
            self._endpoint.answered()
            opened: list[Machine] = []
            for browse_name, node in found.items():
                machine = self._machines.get(browse_name)
                if machine is None:
                    machine = Machine(browse_name, DeviceSink(f"{url}#{browse_name}", NAME, self._shared))
                    self._machines[browse_name] = machine
                try:
                    async with _boundary(url, f"machine {browse_name}"):
                        await self._open(client, ns, machine, node)
                except PrinterUnavailable as exc:  # this machine only: the others are followed
                    await machine.sink.unavailable(str(exc), heartbeat=True)
                    continue
                opened.append(machine)
            await self._follow(client, opened, stop)
        finally:
            with contextlib.suppress(Exception):  # the session may be gone; nothing to tell
                await client.disconnect()

    async def _find_machines(self, client: Client, ns: dict[str, int]) -> dict[str, Node]:
        """Every child of Machines whose type is AdditiveManufacturingType or a subtype,
        by browse name; only the configured ones when `machines` is set."""
        am_type = names.node_id(names.ADDITIVE_MANUFACTURING_TYPE, ns)
        found: dict[str, Node] = {}
        for child in await client.get_node(names.node_id(names.MACHINES_FOLDER, ns)).get_children():
            type_id = await child.read_type_definition()
            if type_id is None or not (type_id == am_type or await is_subtype(client.get_node(type_id), am_type)):
                continue
            browse_name = (await child.read_browse_name()).Name
            if not self._printer.machines or browse_name in self._printer.machines:
                found[browse_name] = child
        missing = set(self._printer.machines) - set(found)
        if missing:
            log.error("event=opcua_machines_missing printer=%s machines=%s: not in the Machines folder",
                      self._printer.url, ",".join(sorted(missing)))
        return found

    async def _open(self, client: Client, ns: dict[str, int], machine: Machine, node: Node) -> None:
        """Identify the machine, subscribe to its values and events, read the events it
        raised since the cursor."""

        async def child(*path: names.Name) -> Node:
            return await node.get_child(names.path(ns, path))

        async def optional(*path: names.Name) -> Node | None:
            try:
                return await child(*path)
            except UaError:  # BadNoMatch: this machine does not have the optional node
                return None

        ident = {n.name: await child(*names.IDENTIFICATION, n) for n in (
            names.PRODUCT_INSTANCE_URI, names.COMPONENT_NAME, names.PRODUCT_CODE, names.SERIAL_NUMBER,
            names.SOFTWARE_REVISION)}
        counters = names.OPERATION_COUNTERS
        machine.nodes = MachineNodes(
            machine=node,
            item_state=await child(*names.MACHINERY_ITEM_STATE, names.CURRENT_STATE),
            operation_mode=await child(*names.MACHINERY_OPERATION_MODE, names.CURRENT_STATE),
            warm_up=await optional(*names.MONITORING_MACHINE_TOOL, names.IS_WARM_UP),
            orders=await child(*names.JOB_ORDER_LIST), responses=await child(*names.JOB_ORDER_RESPONSE_LIST),
            power_on=await optional(*counters, names.POWER_ON_DURATION),
            operation=await optional(*counters, names.OPERATION_DURATION),
            cycles=await optional(*counters, names.OPERATION_CYCLE_COUNTER), ident=ident,
            feedstock=await self._feedstock(client, ns, await optional(*names.FEEDSTOCK_LIST)))
        await self._identify(machine, await _server_time(client))
        subscription = await client.create_subscription(PUBLISHING_INTERVAL_MS, machine)
        n = machine.nodes
        watched = [n.item_state, n.operation_mode, n.warm_up, n.orders, n.responses]
        await subscription.subscribe_data_change([w for w in watched if w is not None])
        event_types = [client.get_node(names.node_id(names.MT_ALERT_TYPE, ns)),
                       client.get_node(names.node_id(names.MT_NOTIFICATION_EVENT_TYPE, ns))]
        await subscription.subscribe_events(node, event_types)
        await self._read_history(machine, node, event_types)

    async def _feedstock(self, client: Client, ns: dict[str, int],
                         folder: Node | None) -> list[tuple[Node, Node, Node, Node]]:
        """The value nodes of each FeedstockType entry of the machine's feedstock list."""
        if folder is None:
            return []
        entry_type = names.node_id(names.AM_FEEDSTOCK_TYPE, ns)
        entries = []
        for entry in await folder.get_children():
            type_id = await entry.read_type_definition()
            if type_id is None or not (type_id == entry_type or await is_subtype(client.get_node(type_id), entry_type)):
                continue
            identifier, function, remaining, ready = [await entry.get_child(names.path(ns, (n,))) for n in (
                names.FEEDSTOCK_IDENTIFIER, names.FEEDSTOCK_FUNCTION, names.FEEDSTOCK_REMAINING_QUANTITY,
                names.FEEDSTOCK_READY)]
            entries.append((identifier, function, remaining, ready))
        return entries

    async def _consumables(self, machine: Machine, now_ms: int) -> None:
        assert machine.nodes is not None
        feedstock = []
        for identifier, function, remaining, ready in machine.nodes.feedstock:
            quantity = await remaining.read_value()
            feedstock.append(mapping.Feedstock(
                str(await identifier.read_value() or ""), int(await function.read_value() or 0),
                None if quantity is None else float(quantity), await ready.read_value()))
        for kind, payload in (("build_unit", mapping.build_unit(now_ms, feedstock)),
                              ("agent_system", mapping.agent_system(now_ms, feedstock))):
            if payload is not None:
                await machine.spool_snapshot(kind, payload, RecordClass.KEEP)

    async def _identify(self, machine: Machine, server_ms: int | None) -> None:
        assert machine.nodes is not None
        values = {key: await n.read_value() for key, n in machine.nodes.ident.items()}
        ident = mapping.Identification(
            product_instance_uri=str(values["ProductInstanceUri"] or ""),
            component_name=mapping.text(values["ComponentName"]),
            product_code=str(values["ProductCode"] or ""), serial_number=str(values["SerialNumber"] or ""),
            software_revision=str(values["SoftwareRevision"] or ""))
        if not ident.product_instance_uri:
            raise PrinterUnavailable(f"{machine.sink.status.base_url}: no ProductInstanceUri to identify the machine")
        power_on = await _read(machine.nodes.power_on)
        payload = mapping.identity(_stamp(server_ms), ident, power_on, server_ms)
        machine.firmware = ident.software_revision
        machine.sink.identify(payload["printer_uuid"], ident.component_name)
        await machine.spool_snapshot("device_identity", payload, RecordClass.KEEP)

    async def _read_history(self, machine: Machine, node: Node, event_types: list[Node]) -> None:
        """The events since the cursor (all of them the first time), spooled once: what
        a lost session missed. A server without history answers an error: then only
        the subscription's events are spooled (the loss is logged)."""
        cursor = mapping.parse_cursor(machine.sink.cursor("system_event"))
        # A margin before the cursor: events of the same instant may be listed around it.
        start = None if cursor is None else datetime.fromtimestamp((cursor[0] - 1000) / 1000, tz=timezone.utc)
        while True:
            try:
                events = await node.read_event_history(start, None, HISTORY_PAGE, event_types)
            except UaError as exc:
                log.error("event=opcua_no_event_history printer=%s error=%s: events raised while the session was "
                          "down are lost", machine.sink.status.base_url, exc)
                return
            picked = [mapping.pick_event(e) for e in events]
            await machine.spool_events(picked, from_history=True)
            if len(picked) < HISTORY_PAGE:
                await machine.sink.caught_up("system_event")
                return
            next_start = datetime.fromtimestamp(picked[-1].time_ms / 1000, tz=timezone.utc)
            if start is not None and next_start <= start:
                return  # a page of one instant: nothing later to ask for this way
            start = next_start

    async def _follow(self, client: Client, machines: list[Machine], stop: asyncio.Event) -> None:
        """Tick until stop or until the session fails (raises PrinterUnavailable)."""
        url, c = self._printer.url, self._cadence
        due = {"heartbeat": 0.0, "counters": 0.0, "consumables": 0.0, "identity": time.monotonic() + c.identity_s}
        while not stop.is_set():
            now = time.monotonic()
            async with _boundary(url, "read"):
                server_ms = await _server_time(client)  # also the session's liveness
                for machine in machines:
                    await self._tick(machine, now, due, server_ms)
            for key, period in (("heartbeat", c.heartbeat_s), ("counters", c.counters_s),
                                ("consumables", c.consumables_s), ("identity", c.identity_s)):
                if due[key] <= now:
                    # From when it was due, so a tick's lateness does not add up (a period
                    # missed whole, as at the start, starts again from now).
                    due[key] = due[key] + period if due[key] + period > now else now + period
            try:
                await asyncio.wait_for(stop.wait(), min(TICK_S, c.heartbeat_s))
            except asyncio.TimeoutError:
                pass
        # Stopping: spool what the subscription delivered last.
        for machine in machines:
            events, machine.events = machine.events, []
            await machine.spool_events(events, from_history=False)

    async def _tick(self, machine: Machine, now: float, due: dict[str, float], server_ms: int | None) -> None:
        assert machine.nodes is not None
        at = _stamp(server_ms)
        events, machine.events = machine.events, []
        try:
            await machine.spool_events(events, from_history=False)
            await machine.spool_jobs()
            if due["heartbeat"] <= now:
                payload = mapping.heartbeat(at, machine.state, machine.orders, machine.responses)
                await machine.spool_snapshot("heartbeat", payload, RecordClass.DROPPABLE)
            if due["counters"] <= now:
                n = machine.nodes
                payload = mapping.counters(at, await _read(n.operation), await _read(n.cycles))
                await machine.spool_snapshot("usage_counters", payload, RecordClass.KEEP)
            if due["consumables"] <= now:
                await self._consumables(machine, at)
            if due["identity"] <= now:
                await self._identify(machine, server_ms)
        except SpoolFull as exc:
            machine.events = events + machine.events  # nothing was appended: try again next tick
            log.warning("event=spool_full printer=%s error=%s", machine.sink.status.base_url, exc)
            return
        machine.sink.answered()


async def _read(node: Node | None) -> Any:
    return None if node is None else await node.read_value()


async def _server_time(client: Client) -> int | None:
    """The server's clock (ServerStatus/CurrentTime): the machines' own, as the printer
    API's answers carry the printer's. None if the server does not say."""
    return mapping.ms(await client.get_node(ObjectIds.Server_ServerStatus_CurrentTime).read_value())


def _stamp(server_ms: int | None) -> int:
    """A snapshot's event_time: the server's clock, else the collector's."""
    return server_ms if server_ms is not None else _now_ms()


def _now_ms() -> int:
    return int(time.time() * 1000)

