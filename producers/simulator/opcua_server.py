"""The simulator's OPC UA server: the last N printers of the simulated fleet as OPC 40540
machines on one asyncua server and one port (docs/opcua.md).

    async with OpcUaServer(settings, fleet, clock.now_ms) as opcua:
        opcua.url                  # opc.tcp://127.0.0.1:<port>/printfleet/
        opcua.server_certificate   # the pair a collector pins (made once per state folder)
        opcua.machine_ids          # ["p019", "p020"]

Owned by `SimulatorServer` (same `Fleet`, same clock as the HTTPS printer API), or built
alone by a test. OPC UA pushes, so the server does not wait for requests: a tick every
`opcua_tick_s` real seconds advances the fleet to the clock, writes what changed and
raises the printers' new events, which are also stored for HistoryRead
(opcua_history.py, `events.sqlite` in the state folder). `published.json` there remembers the last event
published per printer, so a restarted server neither repeats nor skips an event of the
same fleet. Security: Basic256Sha256 with SignAndEncrypt only, user name + password or a
trusted client certificate as identity (opcua_users.py). `start()` raises
ServerStartError or SimulatorError; `stop()` is idempotent and safe without `start()`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from pathlib import Path
from types import TracebackType
from typing import Callable, Final

from asyncua import ua
from asyncua.common.node import Node
from asyncua.server.server import Server
from asyncua.ua.object_ids import ObjectIds
from asyncua.ua.status_codes import StatusCodes
from asyncua.common.utils import ServiceError
from cryptography import x509
from asyncua.common.event_objects import BaseEvent
from asyncua.crypto.truststore import TrustStore
from asyncua.crypto.validator import CertificateValidator, CertificateValidatorOptions
from asyncua.server.event_generator import EventGenerator

from producers.opcua_model import CertificatePair, Role, ensure_certificate, load_nodesets, names
from producers.opcua_model.errors import OpcUaModelError
from producers.simulator import opcua_view as view
from producers.simulator.errors import ServerStartError, SimulatorError
from producers.simulator.fleet import Fleet
from producers.simulator.opcua_history import EventHistory
from producers.simulator.opcua_machine import MachineNodes, ModelContext, build_context, ua_time
from producers.simulator.opcua_users import SiteUsers, load_users, trusted_certificates
from producers.simulator.settings import SimulatorSettings

log = logging.getLogger(__name__)

APPLICATION_URI: Final = "urn:printfleet:simulator"
ENDPOINT_PATH: Final = "/printfleet/"


def opcua_printer_ids(fleet: Fleet, count: int) -> list[str]:
    """The printers served over OPC UA: the last `count` of the fleet."""
    ids = fleet.printer_ids
    return ids[len(ids) - count :] if count > 0 else []


class OpcUaServer:
    """One asyncua server for every OPC UA printer of the fleet. Long-lived: `async with`
    it, or call `start()` and `stop()`."""

    def __init__(self, settings: SimulatorSettings, fleet: Fleet, now_ms: Callable[[], int]) -> None:
        if not settings.opcua_printers:
            raise ValueError("settings.opcua_printers is 0: no printer to serve over OPC UA")
        self.settings = settings
        self.fleet = fleet
        self._now_ms = now_ms
        self.state_dir = settings.opcua_dir
        self.machine_ids = opcua_printer_ids(fleet, settings.opcua_printers)
        self._server: Server | None = None
        self._machines: dict[str, MachineNodes] = {}
        self._events: dict[str, tuple[EventGenerator, EventGenerator]] = {}
        self._history: EventHistory | None = None
        self._published: dict[str, int] = {}
        self._tick: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self._port: int | None = None
        self.server_certificate: CertificatePair | None = None
        self.users_file: Path | None = None

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        """Make or reuse the server certificate, load the model, build the machines, start
        listening, publish the past and start the tick. A second call does nothing."""
        if self._server is not None:
            return
        settings = self.settings
        server = await self._secured_server()
        try:
            await load_nodesets(server)
        except OpcUaModelError as exc:
            raise SimulatorError(str(exc)) from None
        self._published = self._load_published()
        history = EventHistory(self.state_dir / "events.sqlite")
        await history.init()
        server.iserver.history_manager.set_storage(history)  # stopped with the server
        self._history = history
        try:
            await self._build_machines(server)
            await server.start()
        except OSError as exc:
            await history.stop()
            raise ServerStartError(f"cannot listen on {settings.host}:{settings.opcua_port}: {exc}") from None
        except BaseException:
            await history.stop()
            raise
        self._server = server
        self._port = _bound_port(server)
        try:
            await self.sync()
        except BaseException:
            await self.stop()
            raise
        self._tick = asyncio.create_task(self._tick_loop(), name="opcua-tick")
        log.info("event=opcua_started url=%s machines=%d", self.url, len(self._machines))

    async def _secured_server(self) -> Server:
        """An initialised asyncua server with printfleet's security set-up (module doc)."""
        settings, state = self.settings, self.state_dir
        users, self.users_file = load_users(settings.opcua_users_file, state)
        trust_dir = state / "trusted"
        try:
            trust_dir.mkdir(parents=True, exist_ok=True)
            # This host's name in the certificate: asyncua checks the server's own
            # certificate against it (a client pins the certificate; it checks no name).
            self.server_certificate = await ensure_certificate(state, "server", APPLICATION_URI, role=Role.SERVER)
        except (OSError, OpcUaModelError) as exc:
            raise SimulatorError(f"OPC UA state folder {state}: {exc}") from None
        trusted = trusted_certificates(trust_dir)
        server = Server(user_manager=SiteUsers(users, trusted))
        await server.init()
        server.set_endpoint(f"opc.tcp://{settings.host}:{settings.opcua_port}{ENDPOINT_PATH}")
        server.set_server_name("printfleet simulator")
        # ServerStatus/CurrentTime is the machines' clock, the simulated one (`sync`
        # writes it): asyncua's own would write the wall clock every second.
        server.disable_clock()
        await server.set_application_uri(APPLICATION_URI)
        server.set_security_policy([ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt])
        server.set_identity_tokens([ua.UserNameIdentityToken, ua.X509IdentityToken])
        await server.load_certificate(str(self.server_certificate.cert_file))
        await server.load_private_key(str(self.server_certificate.key_file))
        if trusted:
            store = TrustStore([trust_dir], [])
            await store.load()
            server.set_certificate_validator(
                CertificateValidator(
                    CertificateValidatorOptions.TRUSTED_VALIDATION | CertificateValidatorOptions.PEER_CLIENT, store
                )
            )
        else:
            # asyncua's TrustStore cannot be empty, and without a validator it would
            # accept any client certificate: refuse them all until one is trusted.
            log.warning("event=opcua_no_trusted_clients folder=%s every client certificate is refused", trust_dir)
            server.set_certificate_validator(_refuse_every_certificate)
        return server

    async def _build_machines(self, server: Server) -> None:
        """One AdditiveManufacturingType instance and two event generators per printer."""
        ctx = await build_context(server)
        alert_type, notification_type = await _event_types(server, ctx)
        now = self._advance()
        for pid in self.machine_ids:
            printer = self.fleet.printer(pid)
            machine = await MachineNodes.create(server, ctx, printer)
            await machine.update(printer, now)
            self._machines[pid] = machine
            self._events[pid] = (
                await server.get_event_generator(alert_type, machine.node.nodeid),
                await server.get_event_generator(notification_type, machine.node.nodeid),
            )
            # Events are written to the history by _publish_events itself; this only
            # tells clients the machine has event history to read.
            await machine.node.set_event_notifier([ua.EventNotifier.SubscribeToEvents, ua.EventNotifier.HistoryRead])

    async def stop(self) -> None:
        """Stop the tick and the server; remember what was published. Idempotent."""
        tick, self._tick = self._tick, None
        if tick is not None:
            # Cancel between syncs, never inside one: an event raised but not yet stored
            # and counted would be raised again after a restart.
            async with self._lock:
                tick.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await tick
        server, self._server = self._server, None
        if server is not None:
            await server.stop()
            self._save_published()
            log.info("event=opcua_stopped")

    async def __aenter__(self) -> OpcUaServer:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    # -- what callers read ----------------------------------------------------------------------

    @property
    def host(self) -> str:
        return "127.0.0.1" if self.settings.host in ("", "0.0.0.0") else self.settings.host

    @property
    def port(self) -> int:
        if self._port is None:
            raise SimulatorError("the OPC UA server has not started")
        return self._port

    @property
    def url(self) -> str:
        return f"opc.tcp://{self.host}:{self.port}{ENDPOINT_PATH}"

    # -- the tick ---------------------------------------------------------------------------------

    def _advance(self) -> int:
        self.fleet.advance_to(self._now_ms())
        return self.fleet.now_ms

    async def sync(self) -> None:
        """Advance the fleet to the clock, write every machine's changes, raise new events.
        Called by the tick; tests call it to see a state at once."""
        async with self._lock:
            now = self._advance()
            await self._write_clock(now)
            for pid, machine in self._machines.items():
                printer = self.fleet.printer(pid)
                await machine.update(printer, now)
                await self._publish_events(pid, view.new_events(printer, self._published.get(pid, 0)))
            self._save_published()

    async def _write_clock(self, now_ms: int) -> None:
        """ServerStatus (and its CurrentTime) at the simulated time, as a machine's server
        tells its own clock: a client stamps what it reads with it."""
        if self._server is None:
            return
        when = ua_time(now_ms)
        status_node = self._server.get_node(ObjectIds.Server_ServerStatus)
        status = await status_node.read_value()
        status.CurrentTime = when
        await status_node.write_value(status)
        await self._server.get_node(ObjectIds.Server_ServerStatus_CurrentTime).write_value(when)

    async def _tick_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.opcua_tick_s)
            try:
                await self.sync()
            except Exception:  # a bad tick must not end the server; the next may do better
                log.exception("event=opcua_tick_failed")

    async def _publish_events(self, printer_id: str, events: list[view.MachineEvent]) -> None:
        alert, notification = self._events[printer_id]
        for e in events:
            gen = alert if e.alert else notification
            ev = gen.event
            # asyncua 2.1.0 builds these two MachineTool fields with VariantType Null
            # (they would go out as null): give them their String type.
            if e.alert:
                ev.add_property(names.ERROR_CODE.name, e.code, ua.VariantType.String)
                # A printer's alert is a one-off message, not a condition with a state a
                # client acknowledges: not retained, so ConditionRefresh does not resend it.
                ev.Retain = False
            else:
                ev.add_property(names.NOTIFICATION_IDENTIFIER.name, e.code, ua.VariantType.String)
            setattr(ev, names.EVENT_SEQUENCE_FIELD, e.seq)
            ev.Severity = e.severity
            ev.SourceName = e.source_name
            ev.Message = ua.LocalizedText(e.message)
            await gen.trigger(time_attr=ua_time(e.time_ms))
            await self._history_of().save_event(ev)
            self._published[printer_id] = e.seq

    def _history_of(self) -> EventHistory:
        if self._history is None:
            raise SimulatorError("the OPC UA server has not started")
        return self._history

    # -- what was published (survives a restart of the server) ---------------------------------

    @property
    def _published_file(self) -> Path:
        return self.state_dir / "published.json"

    def _fleet_key(self) -> str:
        return f"seed={self.fleet.seed} start_ms={self.fleet.start_ms}"

    def _load_published(self) -> dict[str, int]:
        """Last published event seq per printer, when the file is of this same fleet. For
        another fleet (a new start time or seed) the history file is of that fleet too:
        both start over."""
        try:
            data = json.loads(self._published_file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            data = None
        except (OSError, ValueError) as exc:
            raise SimulatorError(f"cannot read {self._published_file}: {exc}") from None
        if isinstance(data, dict) and data.get("fleet") == self._fleet_key():
            return {str(k): int(v) for k, v in dict(data.get("published", {})).items()}
        for name in ("events.sqlite", "events.sqlite-wal", "events.sqlite-shm"):
            with contextlib.suppress(FileNotFoundError):
                (self.state_dir / name).unlink()
        return {}

    def _save_published(self) -> None:
        tmp = self._published_file.with_suffix(".tmp")
        tmp.write_text(json.dumps({"fleet": self._fleet_key(), "published": self._published}), encoding="utf-8")
        os.replace(tmp, self._published_file)


async def _event_types(server: Server, ctx: ModelContext) -> tuple[Node, Node]:
    """printfleet's two event types (in the simulator's namespace): MachineTool's AlertType
    and NotificationEventType, each with the printer API's event seq as an extra field."""
    field = [(names.EVENT_SEQUENCE_FIELD, ua.VariantType.UInt32)]
    alert = await server.create_custom_event_type(
        ctx.sim,
        names.ALERT_EVENT_TYPE_NAME,
        names.node_id(names.MT_ALERT_TYPE, ctx.ns),
        field,
    )
    notification = await server.create_custom_event_type(
        ctx.sim,
        names.NOTIFICATION_EVENT_TYPE_NAME,
        names.node_id(names.MT_NOTIFICATION_EVENT_TYPE, ctx.ns),
        field,
    )
    return alert, notification


async def _refuse_every_certificate(certificate: x509.Certificate, app: ua.ApplicationDescription) -> None:
    raise ServiceError(StatusCodes.BadCertificateUntrusted)


def _bound_port(server: Server) -> int:
    """The port the server got (the settings may say 0: any free port)."""
    bound = server.bserver
    if bound is not None and bound.port:
        return int(bound.port)
    return int(server.endpoint.port or 0)
