"""`printfleet collector --config site.toml`: the site collector."""

from __future__ import annotations

import argparse
import asyncio
import logging
import secrets
import sys
from pathlib import Path
from typing import Any

from common.ops import OpsListenError
from printfleet import stop_signals
from producers.collector.collector import Collector
from producers.collector.config import CollectorSettings, example, render
from producers.errors import ProducerError


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "collector",
        help="run the site collector: poll printers, spool, upload to the gateway",
        description="Settings come from the TOML file (see producers/collector/config.py for every key).",
    )
    parser.add_argument("action", nargs="?", choices=("run", "init"), default="run",
                        help="run (default), or init: write a commented site.toml to start from")
    parser.add_argument("--config", type=Path, help="site.toml (init: where to write it, default ./site.toml)")
    parser.add_argument("--print-config", action="store_true",
                        help="print the effective settings (file, PRINTFLEET_COLLECTOR_*, flags; secrets hidden) and exit")
    parser.add_argument("--status-port", "--ops-port", type=int, dest="status_port",
                        help="port of the status page, /metrics, /livez and /readyz (default 8080; 0 picks one; -1: off)")
    parser.add_argument("--status-host", "--ops-host", dest="status_host",
                        help="address of the status page and the ops endpoints (default 127.0.0.1)")
    parser.add_argument("--status-every-s", type=float, help="status line period in seconds (default 10)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.action == "init":
        return _init(args.config or Path("site.toml"))
    if args.config is None:
        print("printfleet collector: --config site.toml is required (`printfleet collector init` writes one)",
              file=sys.stderr)
        return 2
    try:
        settings = CollectorSettings.load(args.config, status_port=args.status_port, status_host=args.status_host,
                                          status_every_s=args.status_every_s)
    except ValueError as exc:
        print(f"printfleet collector: {exc}", file=sys.stderr)
        return 2
    if args.print_config:
        print(render(settings, hide_secrets=True), end="")
        return 0
    logging.getLogger("producers").setLevel(logging.INFO)
    # The OPC UA driver says why a server refused or dropped it in one line per device;
    # asyncua's own warnings of the same failure (a ServiceFault received, a channel
    # closed twice) would repeat it at every attempt.
    logging.getLogger("asyncua").setLevel(logging.ERROR)
    try:
        asyncio.run(serve(settings))
    except (ProducerError, OpsListenError) as exc:
        print(f"printfleet collector: {exc}", file=sys.stderr)
        return 1
    return 0


def _init(path: Path) -> int:
    """Write the example site.toml with a random site secret; never over an existing file."""
    try:
        with open(path, "x", encoding="utf-8") as f:
            f.write(example(secrets.token_urlsafe(32)))
    except FileExistsError:
        print(f"printfleet collector init: {path} exists; not overwritten", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"printfleet collector init: cannot write {path}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    print(f"wrote {path}: set site_id, [gateway] url and token, and [printers] urls, then run "
          f"printfleet collector --config {path}")
    return 0


async def serve(settings: CollectorSettings, stop: asyncio.Event | None = None) -> None:
    """Run a collector until `stop` is set or SIGINT/SIGTERM (Ctrl-Break too on Windows);
    prints a status line."""
    stop = stop or asyncio.Event()
    undo = stop_signals.install(stop)
    try:
        await _serve(settings, stop)
    finally:
        undo()


async def _serve(settings: CollectorSettings, stop: asyncio.Event) -> None:
    async with Collector(settings) as collector:
        print(
            f"collector for site {settings.site_id}: {len(settings.all_printers())} printers -> "
            f"{settings.gateway_url}; status {collector.status_url or 'off'}"
            + (f", metrics {collector.ops.url}/metrics, health {collector.ops.url}/readyz" if collector.ops.url else ""),
            flush=True,
        )
        if collector.opcua_certificate is not None:
            pair = collector.opcua_certificate
            print(f"OPC UA client certificate (trust it on the machines): {pair.cert_file} "
                  f"sha256 {pair.thumbprint()}", flush=True)
        runner = asyncio.create_task(collector.run(stop))
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), settings.status_every_s)
            except asyncio.TimeoutError:
                print(collector.status_line(), flush=True)
        await runner
        print(collector.status_line(), flush=True)
