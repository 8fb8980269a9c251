"""`printfleet simulate`: serve a simulated fleet of powder-bed printers over HTTPS.

One process, one port: printer i answers under https://HOST:PORT/printers/p00i/ with the
API of docs/printer-api.md, behind a certificate of a site CA the simulator keeps in
--ca-dir. Prints the CA file and the base URLs, then a progress line now and then;
Ctrl-C (or SIGTERM) stops it cleanly.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
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
    )


def run(args: argparse.Namespace) -> int:
    try:
        settings = settings_from(args)
    except ValueError as exc:
        print(f"printfleet simulate: {exc}", file=sys.stderr)
        return 2
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


def progress_line(s: FleetSummary) -> str:
    when = datetime.fromtimestamp(s.now_ms / 1000, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")
    a = s.activities
    return (
        f"sim {when}  printing {a.get('PRINTING', 0)}  warming {a.get('WARMING_UP', 0)}  "
        f"cooling {a.get('COOLING_DOWN', 0)}  idle {a.get('IDLE', 0)}  error {s.statuses.get('ERROR', 0)}  "
        f"| jobs completed {s.jobs_completed} failed {s.jobs_failed}  "
        f"| emitted events {s.events} job snapshots {s.job_snapshots} logs {s.logs}"
    )
