"""`printfleet gateway`: the ingestion gateway (HTTPS in, Kafka out)."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path
from typing import Any

from common.ops import GATEWAY_OPS_PORT, OpsListenError
from common.settings import build
from printfleet import config_flags, kafka_flags, ops_flags, stop_signals
from producers.gateway.gateway import Gateway, GatewaySettings
from producers.gateway.sites import SiteDirectory
from schemas import SchemaRegistry


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "gateway",
        help="run the ingestion gateway: sites upload over HTTPS, records go to Kafka",
        description="Every flag can also be set as PRINTFLEET_GATEWAY_<FLAG>, e.g. PRINTFLEET_GATEWAY_PORT.",
    )
    parser.add_argument("--sites-file", type=Path, help="TOML file of site tokens and enrolled devices (required)")
    parser.add_argument("--host", help="listen address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="listen port (default 18444)")
    parser.add_argument("--tls-cert", type=Path, help="server certificate chain, PEM (no TLS without it)")
    parser.add_argument("--tls-key", type=Path, help="server private key, PEM")
    parser.add_argument("--max-body-bytes", type=int, help="largest compressed batch accepted (default 8 MiB)")
    parser.add_argument("--instance-id", help="this instance's name in Kafka transactions: the same across its "
                        "restarts, unique among instances (default <host name>-<port>)")
    parser.add_argument("--sites-reload-s", type=float,
                        help="check the sites file for a change every N s and reload it (default 5; 0: only on "
                        "SIGHUP); SIGHUP reloads it at once")
    parser.add_argument("--status-every-s", type=float, default=10.0, help="status line period (0: none)")
    kafka_flags.add_arguments(parser)
    ops_flags.add_arguments(parser, GATEWAY_OPS_PORT)
    config_flags.add_arguments(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    try:
        config = config_flags.load(args)
        table = config.table("gateway")
        if args.sites_file is None and not os.environ.get("PRINTFLEET_GATEWAY_SITES_FILE") and "sites_file" not in table:
            print(
                "printfleet gateway: --sites-file is required (or PRINTFLEET_GATEWAY_SITES_FILE, or sites_file "
                "in [gateway] of --config), e.g. --sites-file sites.toml", file=sys.stderr,
            )
            return 2
        settings = build(
            GatewaySettings, "gateway", config=table, config_name=config.name("gateway"),
            kafka=kafka_flags.settings(args, config=config),
            sites_file=args.sites_file, host=args.host, port=args.port,
            tls_cert=args.tls_cert, tls_key=args.tls_key, max_body_bytes=args.max_body_bytes,
            instance_id=args.instance_id, sites_reload_s=args.sites_reload_s,
            ops_host=args.ops_host, ops_port=ops_flags.port(args, "gateway", GATEWAY_OPS_PORT, config=table),
        )
        if args.print_config:
            print(config_flags.render(settings, "gateway"))
            return 0
        sites = SiteDirectory.load(settings.sites_file)
    except (TypeError, ValueError) as exc:
        print(f"printfleet gateway: {exc}", file=sys.stderr)
        return 2
    if (settings.tls_cert is None) != (settings.tls_key is None):
        print("printfleet gateway: --tls-cert and --tls-key go together", file=sys.stderr)
        return 2
    try:
        asyncio.run(_serve(settings, sites, args.status_every_s))
    except OpsListenError as exc:
        print(f"printfleet gateway: {exc}", file=sys.stderr)
        return 1
    return 0


async def _serve(settings: GatewaySettings, sites: SiteDirectory, every_s: float) -> None:
    """Serve until SIGTERM or Ctrl-C, then drain: batches under way finish, new ones get
    503 until the gateway has stopped (exit 0)."""
    stop = asyncio.Event()
    undo = stop_signals.install(stop)
    try:
        async with Gateway(settings, SchemaRegistry.load_default(), sites) as gateway:
            stop_signals.install_hangup(gateway.sites_watcher.request_reload)
            print(f"gateway listening on {gateway.url} -> kafka {settings.kafka.bootstrap_servers}", flush=True)
            if gateway.ops.url:
                print(f"gateway metrics {gateway.ops.url}/metrics, health {gateway.ops.url}/readyz", flush=True)
            last, last_t = 0, time.monotonic()
            while not stop.is_set():
                try:
                    await asyncio.wait_for(stop.wait(), every_s or None)
                except asyncio.TimeoutError:
                    c, now = gateway.counters, time.monotonic()
                    rate = (c.records_produced - last) / (now - last_t)
                    print(
                        f"gateway: {c.records_produced} records produced ({rate:,.0f}/s), "
                        f"{c.batches_accepted} batches, {c.batches_duplicate} repeated batches "
                        f"({c.records_repeated} records), "
                        f"{c.batches_refused} refused, {c.records_refused} records refused "
                        f"({c.records_dead_lettered} dead-lettered), "
                        f"{c.kafka_unavailable} while Kafka was away",
                        flush=True,
                    )
                    last, last_t = c.records_produced, now
            print(f"gateway stopping: {gateway.batches_in_flight} batches under way finish first", flush=True)
    finally:
        undo()
    print("gateway stopped", flush=True)
