"""The simulator's HTTPS server: every printer's API under its own base URL, plus the
control API, on one aiohttp server and one port (docs/printer-api.md).

    async with SimulatorServer(settings) as sim:
        sim.base_urls        # {"p001": "https://127.0.0.1:18443/printers/p001/", ...}
        sim.ca_file          # the site CA a collector verifies the printers against
        sim.fleet            # the Fleet behind it (ground truth, faults)
        sim.opcua            # the OPC UA server of the last N printers, or None

Each request first advances the fleet to the simulated clock, so simulated time moves
only as fast as `acceleration` says and the fleet's state never depends on polling.
`start()` raises CertificateError or ServerStartError; `stop()` is idempotent and safe
without `start()`.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
from types import TracebackType
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Final

from aiohttp import web

from common.tls import CertificateError, ensure_site_ca, issue_server_certificate
from producers.simulator.clock import SimClock
from producers.simulator.errors import (
    BadRequestError,
    NotFoundError,
    ServerStartError,
    SimulatorError,
)
from producers.simulator.fleet import ENDPOINTS, Fault, Fleet
from producers.simulator.settings import SimulatorSettings

if TYPE_CHECKING:
    from producers.simulator.opcua_server import OpcUaServer

log = logging.getLogger(__name__)

# Starts like JSON, then is not: a collector must fail to parse it, not guess.
GARBAGE: Final = b'{"status": "POWERED_ON", \x00\xff\xfe<html>garbled \x8b\x08 ...'
_dumps: Final = functools.partial(json.dumps, ensure_ascii=False, separators=(",", ":"))
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class SimulatorServer:
    """One HTTPS server for the whole simulated fleet. Long-lived: `async with` it, or
    call `start()` and `stop()`. `fleet` may be passed in (tests) or is built from
    `settings` at start."""

    def __init__(self, settings: SimulatorSettings, *, fleet: Fleet | None = None) -> None:
        self.settings = settings
        self._fleet = fleet
        self._clock: SimClock | None = None
        self._runner: web.AppRunner | None = None
        self._port: int | None = None
        self.ca_file = settings.ca_dir / "ca.pem"
        # The last `opcua_printers` printers also as OPC UA machines (opcua_server.py),
        # on their own port, from the same fleet and clock.
        self.opcua: OpcUaServer | None = None

    # -- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        """Create or reuse the site CA, issue the server certificate, build the fleet and
        listen. A second call does nothing."""
        if self._runner is not None:
            return
        settings = self.settings
        ca = await asyncio.to_thread(ensure_site_ca, settings.ca_dir, settings.site_name)
        ips = ("127.0.0.1",) if self.host == "127.0.0.1" else ("127.0.0.1", self.host)
        try:
            cert = await asyncio.to_thread(issue_server_certificate, ca, settings.ca_dir, ips=ips)
        except CertificateError:  # a host name, not an IP: name it in the certificate
            cert = await asyncio.to_thread(
                issue_server_certificate, ca, settings.ca_dir, dns=("localhost", self.host)
            )
        self.ca_file = ca.cert_file
        if self._fleet is None:
            self._fleet = await asyncio.to_thread(Fleet, settings)
        self._clock = SimClock(self._fleet.now_ms, settings.acceleration)
        app = web.Application(middlewares=[_errors])
        app[SERVER] = self
        _routes(app)
        # Short shutdown: a 'slow' fault may hold a handler for minutes; Ctrl-C must not.
        runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, settings.host, settings.port, ssl_context=cert.ssl_context())
        try:
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            raise ServerStartError(f"cannot listen on {settings.host}:{settings.port}: {exc}") from None
        self._runner = runner
        address = runner.addresses[0]
        self._port = int(address[1])
        if settings.opcua_printers:
            # Imported here: asyncua and the nodesets cost only those who serve OPC UA.
            from producers.simulator.opcua_server import OpcUaServer

            self.opcua = OpcUaServer(settings, self._fleet, self._clock.now_ms)
            try:
                await self.opcua.start()
            except BaseException:
                await self.stop()
                raise
        log.info("event=simulator_started url=%s printers=%d", self.url, len(self._fleet.printers))

    async def stop(self) -> None:
        """Stop listening and drop open connections. Idempotent; safe without start()."""
        opcua, self.opcua = self.opcua, None
        if opcua is not None:
            await opcua.stop()
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
            log.info("event=simulator_stopped")

    async def __aenter__(self) -> SimulatorServer:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    # -- what callers read --------------------------------------------------------------

    @property
    def fleet(self) -> Fleet:
        if self._fleet is None:
            raise SimulatorError("the simulator has not started")
        return self._fleet

    @property
    def clock(self) -> SimClock:
        if self._clock is None:
            raise SimulatorError("the simulator has not started")
        return self._clock

    @property
    def port(self) -> int:
        if self._port is None:
            raise SimulatorError("the simulator has not started")
        return self._port

    @property
    def host(self) -> str:
        """The address clients use: the listen address, or 127.0.0.1 for 'all addresses'."""
        return "127.0.0.1" if self.settings.host in ("", "0.0.0.0") else self.settings.host

    @property
    def url(self) -> str:
        """`https://<host>:<port>` (no trailing slash)."""
        return f"https://{self.host}:{self.port}"

    def base_url(self, printer_id: str) -> str:
        return f"{self.url}/printers/{printer_id}/"

    @property
    def base_urls(self) -> dict[str, str]:
        return {pid: self.base_url(pid) for pid in self.fleet.printer_ids}

    def sync(self) -> int:
        """Advance the fleet to the simulated clock; returns the transitions that ran."""
        return self.fleet.advance_to(self.clock.now_ms())


SERVER: Final = web.AppKey("simulator", SimulatorServer)


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=_dumps)


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    # The one place simulator errors become HTTP answers.
    try:
        return await handler(request)
    except NotFoundError as exc:
        return _json({"error": str(exc), "retriable": exc.retriable}, status=404)
    except BadRequestError as exc:
        return _json({"error": str(exc), "retriable": exc.retriable}, status=400)


def _routes(app: web.Application) -> None:
    app.router.add_get("/printers/{printer_id}/api/v1/logs/{log_id}/content", _log_content)
    app.router.add_get("/printers/{printer_id}/api/v1/{endpoint}", _printer_api)
    app.router.add_get("/sim/printers", _sim_printers)
    app.router.add_get("/sim/truth", _sim_truth)
    app.router.add_get("/sim/clock", _sim_clock)
    app.router.add_get("/sim/printers/{printer_id}/fault", _get_fault)
    app.router.add_post("/sim/printers/{printer_id}/fault", _set_fault)


async def _misbehave(request: web.Request, server: SimulatorServer, printer_id: str) -> web.Response | None:
    """Apply the printer's fault: an answer to send instead, or None to answer normally."""
    fault = server.fleet.fault(printer_id)
    if fault.mode == "dark":
        # Drop the connection without a byte of answer, as a printer that is off would
        # (the TLS handshake already happened; the client sees a closed connection).
        if request.transport is not None:
            request.transport.abort()
        return web.Response(status=503)  # never sent: the write fails and aiohttp drops it
    if fault.mode == "slow":
        await asyncio.sleep(fault.delay_s)
    if fault.mode == "garbage":
        return web.Response(body=GARBAGE, content_type="application/json")
    return None


async def _printer_api(request: web.Request) -> web.StreamResponse:
    server = request.app[SERVER]
    printer_id, endpoint = request.match_info["printer_id"], request.match_info["endpoint"]
    server.fleet.printer(printer_id)  # 404 before any fault: unknown printers are not faulty
    if endpoint not in ENDPOINTS:
        raise NotFoundError(f"no endpoint {endpoint!r}; one of {', '.join(ENDPOINTS)}")
    instead = await _misbehave(request, server, printer_id)
    if instead is not None:
        return instead
    server.sync()
    after, limit = _int(request, "after", 0), _int(request, "limit", None)
    return _json(server.fleet.read(printer_id, endpoint, after=after, limit=limit))


async def _log_content(request: web.Request) -> web.StreamResponse:
    server = request.app[SERVER]
    printer_id = request.match_info["printer_id"]
    server.fleet.printer(printer_id)
    instead = await _misbehave(request, server, printer_id)
    if instead is not None:
        return instead
    server.sync()
    text = server.fleet.log_content(printer_id, request.match_info["log_id"])
    return web.Response(text=text, content_type="text/plain", charset="utf-8")


async def _sim_printers(request: web.Request) -> web.StreamResponse:
    server = request.app[SERVER]
    fleet = server.fleet
    return _json(
        {
            "ca_file": str(server.ca_file),
            "printers": [
                {
                    "printer_id": pid,
                    "base_url": server.base_url(pid),
                    "printer_uuid": p.uuid,
                    "printer_name": p.printer_name,
                    "fault": fleet.fault(pid).as_dict(),
                    "opcua": server.opcua is not None and pid in server.opcua.machine_ids,
                }
                for pid, p in fleet.printers.items()
            ],
        }
    )


async def _sim_truth(request: web.Request) -> web.StreamResponse:
    server = request.app[SERVER]
    server.sync()
    truth = server.fleet.truth()
    truth["acceleration"] = server.settings.acceleration
    for entry in truth["printers"]:
        entry["base_url"] = server.base_url(entry["printer_id"])
    return _json(truth)


async def _sim_clock(request: web.Request) -> web.StreamResponse:
    server = request.app[SERVER]
    server.sync()
    return _json(
        {
            "now_ms": server.fleet.now_ms,
            "start_ms": server.fleet.start_ms,
            "acceleration": server.settings.acceleration,
        }
    )


async def _get_fault(request: web.Request) -> web.StreamResponse:
    server = request.app[SERVER]
    printer_id = request.match_info["printer_id"]
    server.fleet.printer(printer_id)
    return _json({"printer_id": printer_id, **server.fleet.fault(printer_id).as_dict()})


async def _set_fault(request: web.Request) -> web.StreamResponse:
    server = request.app[SERVER]
    printer_id = request.match_info["printer_id"]
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise BadRequestError("the body must be JSON like {\"mode\": \"dark\"}") from None
    if not isinstance(body, dict):
        raise BadRequestError("the body must be a JSON object")
    fault = Fault.parse(body)
    server.fleet.set_fault(printer_id, fault)
    log.info("event=fault_set printer=%s mode=%s delay_s=%s", printer_id, fault.mode, fault.delay_s)
    return _json({"printer_id": printer_id, **fault.as_dict()})


def _int(request: web.Request, name: str, default: int | None) -> Any:
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError:
        raise BadRequestError(f"{name} must be an integer, not {raw!r}") from None
