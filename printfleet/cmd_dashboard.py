"""`printfleet dashboard`: the fleet web page (docs/dashboard.md), and
`printfleet dashboard users add` to give someone access to it."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path
from typing import Any

from common.errors import PrintfleetError
from common.settings import build
from dashboard.access import add_user
from dashboard.server import DashboardServer
from dashboard.settings import DASHBOARD_OPS_PORT, DashboardSettings
from printfleet import clickhouse_flags, config_flags, kafka_flags, ops_flags, stop_signals


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "dashboard", help="serve the fleet web page (fleet view, utilisation, alerts, printers)",
        description="Serves the fleet web page and its API (docs/dashboard.md). Every flag can also be set as "
                    "PRINTFLEET_DASHBOARD_<FLAG> or in the [dashboard] table of --config. "
                    "Give people access with `printfleet dashboard users add`.",
    )
    parser.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port to listen on (default 18448; 0: any free port)")
    parser.add_argument("--tls-cert", type=Path, help="server certificate chain, PEM (HTTPS; plain HTTP without it)")
    parser.add_argument("--tls-key", type=Path, help="server private key, PEM")
    _users_file(parser)
    parser.add_argument("--offline-after-s", type=float,
                        help="show a printer offline when nothing was heard of it for this long (default 360)")
    parser.add_argument("--sse-queue-max", type=int,
                        help="events a page may lag behind before its live stream is closed (default 1000)")
    kafka_flags.add_arguments(parser)
    clickhouse_flags.add_arguments(parser)
    ops_flags.add_arguments(parser, DASHBOARD_OPS_PORT)
    config_flags.add_arguments(parser)
    parser.set_defaults(handler=run)
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    users = actions.add_parser("users", help="manage who may sign in")
    user_actions = users.add_subparsers(dest="users_action", required=True, metavar="ACTION")
    add = user_actions.add_parser("add", help="add a user and print their token (shown once)")
    add.add_argument("name", help="the user's name (letters, digits, _ . @ -)")
    add.add_argument("--site", action="append", default=[], metavar="SITE_ID",
                     help="a site the user may see (repeat for more)")
    add.add_argument("--operator", action="store_true", help="the user sees every site")
    _users_file(add)
    add.add_argument("--config", type=Path, metavar="FILE", help="TOML file of settings (its [dashboard] users_file)")
    add.set_defaults(handler=run_users_add)


def _users_file(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--users-file", type=Path, metavar="FILE",
                        help="the users file, TOML (default .stack/dashboard-users.toml)")


def run(args: argparse.Namespace) -> int:
    try:
        config = config_flags.load(args)
        table = config.table("dashboard")
        settings = build(
            DashboardSettings, "dashboard", config=table, config_name=config.name("dashboard"),
            kafka=kafka_flags.settings(args, config=config), clickhouse=clickhouse_flags.settings(args, config=config),
            host=args.host, port=args.port, users_file=args.users_file, tls_cert=args.tls_cert, tls_key=args.tls_key, offline_after_s=args.offline_after_s,
            sse_queue_max=args.sse_queue_max, ops_host=args.ops_host,
            ops_port=ops_flags.port(args, "dashboard", DASHBOARD_OPS_PORT, config=table),
        )
    except (TypeError, ValueError, OSError) as exc:
        print(f"printfleet dashboard: {exc}", file=sys.stderr)
        return 2
    if args.print_config:
        print(config_flags.render(settings, "dashboard"))
        return 0
    try:
        asyncio.run(serve(settings))
    except (PrintfleetError, OSError) as exc:
        print(f"printfleet dashboard: {exc}", file=sys.stderr)
        return 1
    return 0


async def serve(settings: DashboardSettings) -> None:
    stop = asyncio.Event()
    undo = stop_signals.install(stop)
    try:
        async with DashboardServer(settings) as server:
            users = server.users.users.by_digest
            print(f"dashboard {server.url} (kafka {settings.kafka.bootstrap_servers}, "
                  f"clickhouse {settings.clickhouse.url}, users {settings.users_file}: {len(users)})", flush=True)
            if not users:
                print(f"printfleet dashboard: no users yet; add one with `printfleet dashboard users add NAME "
                      f"--site SITE_ID --users-file {settings.users_file}`", file=sys.stderr, flush=True)
            if server.ops.url:
                print(f"dashboard metrics {server.ops.url}/metrics, health {server.ops.url}/readyz", flush=True)
            stopped = asyncio.create_task(stop.wait())
            failed = asyncio.create_task(server.wait())
            done, _ = await asyncio.wait({stopped, failed}, return_when=asyncio.FIRST_COMPLETED)
            for task in (stopped, failed):
                task.cancel()
            if failed in done:
                failed.result()  # raises FeedFailed
    finally:
        undo()


def run_users_add(args: argparse.Namespace) -> int:
    try:
        path = users_file(args)
        token = add_user(path, args.name, args.site, args.operator)
    except (ValueError, OSError) as exc:
        print(f"printfleet dashboard users add: {exc}", file=sys.stderr)
        return 2
    who = "every site (operator)" if args.operator else ", ".join(dict.fromkeys(args.site))
    print(f"added {args.name} ({who}) to {path}; their token, shown only now:", file=sys.stderr)
    print(token)
    return 0


def users_file(args: argparse.Namespace) -> Path:
    """--users-file, else PRINTFLEET_DASHBOARD_USERS_FILE, else the config file's, else
    the default (as `printfleet dashboard` resolves it)."""
    if args.users_file is not None:
        return Path(args.users_file)
    if os.environ.get("PRINTFLEET_DASHBOARD_USERS_FILE"):
        return Path(os.environ["PRINTFLEET_DASHBOARD_USERS_FILE"])
    config = config_flags.load(args) if args.config or os.environ.get("PRINTFLEET_CONFIG") else config_flags.Config()
    configured = config.table("dashboard").get("users_file")
    return Path(str(configured)) if configured else Path(".stack/dashboard-users.toml")
