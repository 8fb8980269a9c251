"""The simulated sites: one child process per group of sites, each site one
`SimulatorServer` (its own CA and printers, as a site LAN has), so the simulators' CPU
is never charged to the bench process and shows per process.

The child serves a plain-HTTP control listener on loopback beside the printers' HTTPS:
`POST /inject` with `{"site": ..., "printer_id": ...}` appends a printhead failure event
(code 0057-0001-0053, ERROR) to that printer's event log at the simulated now, as the
printer would, and answers the printer's UUID, the event's time and the wall-clock
moment it was appended. The collector then polls it like any other event, so the alert
latency measured from there is the whole path: printer -> collector -> gateway -> Kafka
-> worker -> alerts topic.

Run by `SimulatorGroup` as `python -m benchmarks.soak.simulator CONFIG.json`; it prints
one JSON line (the control URL and every site's printers) and runs until SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from benchmarks.ingest.site import BenchError
from producers.simulator import SimulatorServer, SimulatorSettings

INJECTED_KIND = "fail_printhead"
INJECTED_CODE = "0057-0001-0053"


@dataclass(frozen=True)
class SiteSpec:
    site_id: str
    printers: int
    seed: int
    ca_dir: Path


@dataclass(frozen=True)
class SimSite:
    """What a collector and the gateway need to know of one simulated site."""

    site_id: str
    ca_file: Path
    base_urls: tuple[str, ...]
    printer_ids: tuple[str, ...]
    devices: tuple[str, ...]  # printer UUIDs, the records' device_id, same order
    # device -> paged endpoint -> the newest seq when the simulator started: where the
    # cursors of a collector that has run for a while would be.
    newest: dict[str, dict[str, int]]


@dataclass(frozen=True)
class Injected:
    site_id: str
    printer_id: str
    device_id: str
    event_time_ms: int
    wall_s: float  # time.time() when the event was appended at the printer


class SimulatorGroup:
    """The child processes of all sites; `async with` it. After entry: `sites` (site id
    -> SimSite) and `pids`. Raises BenchError when a child does not start."""

    def __init__(self, specs: list[SiteSpec], processes: int, home: Path, env: dict[str, str]) -> None:
        self._groups = [specs[k::processes] for k in range(processes)]
        self._home = home
        self._env = env
        self._procs: list[asyncio.subprocess.Process] = []
        self._control: dict[str, str] = {}  # site id -> control URL of its process
        self._session: aiohttp.ClientSession | None = None
        self.sites: dict[str, SimSite] = {}

    @property
    def pids(self) -> dict[str, int]:
        return {f"simulator-{k}": p.pid for k, p in enumerate(self._procs)}

    async def __aenter__(self) -> SimulatorGroup:
        try:
            await asyncio.gather(*(self._start(k, group) for k, group in enumerate(self._groups)))
        except BaseException:
            await self.__aexit__()
            raise
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        return self

    async def _start(self, k: int, group: list[SiteSpec]) -> None:
        config = self._home / f"simulator-{k}.json"
        config.write_text(json.dumps([{"site_id": s.site_id, "printers": s.printers, "seed": s.seed,
                                       "ca_dir": str(s.ca_dir)} for s in group]))
        log = (self._home / f"simulator-{k}.log").open("ab")
        with log:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "benchmarks.soak.simulator", str(config), env=self._env,
                stdout=asyncio.subprocess.PIPE, stderr=log, limit=64 << 20)  # the banner names every printer
        self._procs.append(proc)
        assert proc.stdout is not None
        try:
            line = await asyncio.wait_for(proc.stdout.readline(), 300)
            banner = json.loads(line)
        except (asyncio.TimeoutError, json.JSONDecodeError):
            raise BenchError(f"simulator {k} did not start; see {self._home / f'simulator-{k}.log'}") from None
        for site_id, site in banner["sites"].items():
            self.sites[site_id] = SimSite(site_id, Path(site["ca_file"]), tuple(site["base_urls"]),
                                          tuple(site["printer_ids"]), tuple(site["devices"]), site["newest"])
            self._control[site_id] = banner["control"]

    async def inject(self, site_id: str, printer_id: str) -> Injected:
        """A printhead failure at one printer, now. Raises aiohttp.ClientError."""
        assert self._session is not None
        async with self._session.post(self._control[site_id] + "/inject",
                                      json={"site": site_id, "printer_id": printer_id}) as resp:
            resp.raise_for_status()
            body = await resp.json()
        return Injected(site_id, printer_id, str(body["device_id"]), int(body["event_time_ms"]), float(body["wall_s"]))

    async def __aexit__(self, *exc: object) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()
        for proc in self._procs:
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self._procs:
            try:
                await asyncio.wait_for(proc.wait(), 30)
            except asyncio.TimeoutError:
                proc.kill()
                await proc.wait()
        self._procs = []


# -- the child --------------------------------------------------------------------------

SERVERS: web.AppKey[dict[str, SimulatorServer]] = web.AppKey("servers")


async def _inject(request: web.Request) -> web.Response:
    body = await request.json()
    server = request.app[SERVERS][body["site"]]
    printer = server.fleet.printer(body["printer_id"])
    server.sync()
    t = server.fleet.now_ms
    printer.emit(t, INJECTED_KIND, slot=1)
    return web.json_response({"device_id": printer.uuid, "event_time_ms": t, "wall_s": time.time()})


async def _orphaned(stop: asyncio.Event) -> None:
    """Set `stop` when the bench that started this process is gone (killed, say): no
    simulator outlives its run."""
    parent = os.getppid()
    while os.getppid() == parent:
        await asyncio.sleep(2.0)
    stop.set()


async def _child(specs: list[dict[str, Any]]) -> None:
    servers: dict[str, SimulatorServer] = {}
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    watch = asyncio.create_task(_orphaned(stop))
    async with contextlib.AsyncExitStack() as stack:
        for spec in specs:
            # Real time (acceleration 1): a site as it is, at the default cadence.
            settings = SimulatorSettings(printers=int(spec["printers"]), seed=int(spec["seed"]), acceleration=1.0,
                                         port=0, ca_dir=Path(spec["ca_dir"]), site_name=str(spec["site_id"]),
                                         progress_interval_s=3600.0)
            servers[spec["site_id"]] = await stack.enter_async_context(SimulatorServer(settings))
        app = web.Application()
        app[SERVERS] = servers
        app.router.add_post("/inject", _inject)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        stack.push_async_callback(runner.cleanup)
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        banner = {"control": f"http://127.0.0.1:{port}", "sites": {
            site_id: {"ca_file": str(s.ca_file), "printer_ids": s.fleet.printer_ids,
                      "base_urls": [s.base_url(p) for p in s.fleet.printer_ids],
                      "devices": [s.fleet.printer(p).uuid for p in s.fleet.printer_ids],
                      "newest": {p.uuid: {"events": p.events.last_seq, "jobs": p.snapshots.last_seq,
                                          "logs": p.logs.last_seq} for p in s.fleet.printers.values()}}
            for site_id, s in servers.items()}}
        print(json.dumps(banner), flush=True)
        await stop.wait()
        watch.cancel()


def main() -> None:
    asyncio.run(_child(json.loads(Path(sys.argv[1]).read_text())))


if __name__ == "__main__":
    main()
