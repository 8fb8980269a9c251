"""`printfleet simulate`: serve a simulated fleet of powder-bed printers over HTTPS.

One process, one port: printer i answers under https://HOST:PORT/printers/p00i/ with the
API of docs/printer-api.md, behind a certificate of a site CA the simulator keeps in
--ca-dir. With --opcua-printers N the last N printers are also OPC 40540 machines on an
OPC UA server (docs/opcua.md). Prints the CA file and the base URLs, then a progress line now and then;
Ctrl-C (or SIGTERM) stops it cleanly.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TextIO

from producers.simulator import SimulatorError, SimulatorServer, SimulatorSettings
from producers.simulator.fleet import FleetSummary


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "simulate",
        help="serve a simulated printer fleet over HTTPS (for the collector and the demo)",
        description=(
            "Serve N simulated Jet Fusion-class printers over HTTPS, each under its own "
            "base URL, with a site CA kept in --ca-dir. Simulated time runs --acceleration "
            "times faster than real time. Every flag can also be set as "
            "PRINTFLEET_SIM_<FLAG> in the environment, e.g. PRINTFLEET_SIM_PRINTERS=100."
        ),
    )
    parser.add_argument("--printers", type=int, help="number of printers (default: 20)")
    parser.add_argument("--seed", type=int, help="seed of the simulation; same seed, same fleet (default: 1)")
    parser.add_argument("--acceleration", type=float, help="simulated seconds per real second (default: 60)")
    parser.add_argument("--host", help="address to listen on (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, help="HTTPS port; 0 picks a free one (default: 18443)")
    parser.add_argument("--ca-dir", type=Path, help="site CA folder, reused if present (default: <repo>/.stack/site-ca)")
    parser.add_argument("--start", help="simulated start time, ISO 8601; no zone means UTC (default: now)")
    parser.add_argument("--site-name", help="site name in the CA certificate (default: Demo Site)")
    parser.add_argument("--progress-interval", type=float, help="real seconds between progress lines (default: 10)")
    opcua = parser.add_argument_group(
        "OPC UA (OPC 40540 machines, docs/opcua.md)",
        "The last N printers are also served as OPC UA machines on one more port: "
        "Basic256Sha256 + SignAndEncrypt only, user name + password or a trusted client "
        "certificate. The HTTPS API keeps serving every printer.",
    )
    opcua.add_argument("--opcua-printers", type=int, metavar="N", help="serve the last N printers over OPC UA too (default: 0, off)")
    opcua.add_argument("--opcua-port", type=int, help="OPC UA port; 0 picks a free one (default: 4840)")
    opcua.add_argument(
        "--opcua-dir",
        type=Path,
        help="OPC UA state folder: server key and certificate, trusted/ client certificates (*.der), "
        "event history, users.txt (default: <repo>/.stack/opcua)",
    )
    opcua.add_argument(
        "--opcua-users-file",
        type=Path,
        help="name:password lines of the OPC UA users (default: <opcua-dir>/users.txt, made with the "
        "user 'collector' and a random password on first start)",
    )
    opcua.add_argument("--opcua-tick", type=float, metavar="SECONDS", help="real seconds between OPC UA updates (default: 1)")
    parser.set_defaults(handler=run)


def settings_from(args: argparse.Namespace) -> SimulatorSettings:
    """Raises ValueError naming the bad flag or variable."""
    return SimulatorSettings.from_env(
        printers=args.printers,
        seed=args.seed,
        acceleration=args.acceleration,
        host=args.host,
        port=args.port,
        ca_dir=args.ca_dir,
        start=args.start,
        site_name=args.site_name,
        progress_interval_s=args.progress_interval,
        opcua_printers=args.opcua_printers,
        opcua_port=args.opcua_port,
        opcua_dir=args.opcua_dir,
        opcua_users_file=args.opcua_users_file,
        opcua_tick_s=args.opcua_tick,
    )


def run(args: argparse.Namespace) -> int:
    try:
        settings = settings_from(args)
    except ValueError as exc:
        print(f"printfleet simulate: {exc}", file=sys.stderr)
        return 2
    if settings.opcua_printers:
        quiet_nodeset_import()
    try:
        return asyncio.run(serve(settings))
    except SimulatorError as exc:
        print(f"printfleet simulate: {exc}", file=sys.stderr)
        return 1


async def serve(settings: SimulatorSettings, *, out: TextIO = sys.stdout, stop: asyncio.Event | None = None) -> int:
    """Run the simulator until `stop` is set or SIGINT/SIGTERM arrives; returns 0.
    Raises what `SimulatorServer.start()` raises."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    handled = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)
            handled.append(sig)
    try:
        async with SimulatorServer(settings) as sim:
            print(f"site CA:    {sim.ca_file}", file=out)
            print(f"control:    {sim.url}/sim/printers  /sim/truth  /sim/clock", file=out)
            print(f"printers:   {len(sim.base_urls)}, simulated time x{settings.acceleration:g}", file=out)
            for url in sim.base_urls.values():
                print(f"  {url}", file=out)
            if sim.opcua is not None:
                opcua = sim.opcua
                print(f"OPC UA:     {opcua.url}  machines {' '.join(opcua.machine_ids)}", file=out)
                if opcua.server_certificate is not None:
                    print(f"  server certificate (pin it): {opcua.server_certificate.cert_file}", file=out)
                print(f"  users: {opcua.users_file}  trusted client certificates: {opcua.state_dir / 'trusted'}", file=out)
            out.flush()
            while not stop.is_set():
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=settings.progress_interval_s)
                sim.sync()
                print(progress_line(sim.fleet.summary()), file=out, flush=True)
    finally:
        for sig in handled:
            loop.remove_signal_handler(sig)
    print("simulator stopped", file=out, flush=True)
    return 0


def quiet_nodeset_import() -> None:
    """asyncua logs dozens of warnings while it imports the vendored nodesets (nodes of
    DI 1.05 its address space cannot hold, structure names used twice); none concerns
    what the simulator serves (docs/opcua.md). The command owns its process's logging."""
    for name in ("asyncua.common.xmlimporter", "asyncua.ua.uatypes"):
        logging.getLogger(name).setLevel(logging.ERROR)


def progress_line(s: FleetSummary) -> str:
    when = datetime.fromtimestamp(s.now_ms / 1000, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")
    a = s.activities
    return (
        f"sim {when}  printing {a.get('PRINTING', 0)}  warming {a.get('WARMING_UP', 0)}  "
        f"cooling {a.get('COOLING_DOWN', 0)}  idle {a.get('IDLE', 0)}  error {s.statuses.get('ERROR', 0)}  "
        f"| jobs completed {s.jobs_completed} failed {s.jobs_failed}  "
        f"| emitted events {s.events} job snapshots {s.job_snapshots} logs {s.logs}"
    )
