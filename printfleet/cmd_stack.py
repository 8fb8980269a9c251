"""`printfleet stack up|down|status`: the local Kafka broker and ClickHouse server."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from deploy import stack
from deploy.errors import StackError
from deploy.settings import StackSettings


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "stack",
        help="start, stop or check the local Kafka broker and ClickHouse server",
        description=(
            "The local stack: Apache Kafka (KRaft, one node or --brokers N) and ClickHouse (served by "
            "chdb), both on 127.0.0.1. Every flag can also be set as PRINTFLEET_<FLAG> in "
            "the environment, e.g. PRINTFLEET_KAFKA_PORT=29092."
        ),
    )
    parser.add_argument("action", choices=["up", "down", "status"])
    parser.add_argument("--state-dir", type=Path, help="data, PID files and logs (default: <repo>/.stack)")
    parser.add_argument("--log-dir", type=Path, help="server logs (default: STATE_DIR/logs)")
    parser.add_argument("--kafka-port", type=int, help="Kafka client port (default: 19092)")
    parser.add_argument("--kafka-controller-port", type=int, help="KRaft controller port (default: 19093)")
    parser.add_argument("--brokers", type=int, help="Kafka nodes, 1 to 9; node N's ports are 10*(N-1) above "
                        "node 1's (default 1; fixed when the state folder is made)")
    parser.add_argument("--kafka-sasl-ssl-port", type=int, help="Kafka SASL_SSL port (default: 19094)")
    parser.add_argument("--kafka-ssl-port", type=int, help="Kafka SSL port, client certificate required (default: 19095)")
    parser.add_argument("--kafka-heap", help="broker JVM heap, e.g. 768m (default: 768m)")
    parser.add_argument("--clickhouse-http-port", type=int, help="ClickHouse HTTP port (default: 18123)")
    parser.add_argument("--clickhouse-tcp-port", type=int, help="ClickHouse native TCP port (default: 19000)")
    parser.set_defaults(handler=run)


def settings_from(args: argparse.Namespace) -> StackSettings:
    return StackSettings.from_env(
        state_dir=args.state_dir,
        log_dir=args.log_dir,
        kafka_port=args.kafka_port,
        kafka_controller_port=args.kafka_controller_port,
        kafka_heap=args.kafka_heap,
        kafka_brokers=args.brokers,
        kafka_sasl_ssl_port=args.kafka_sasl_ssl_port,
        kafka_ssl_port=args.kafka_ssl_port,
        clickhouse_http_port=args.clickhouse_http_port,
        clickhouse_tcp_port=args.clickhouse_tcp_port,
    )


def run(args: argparse.Namespace) -> int:
    try:
        settings = settings_from(args)
    except ValueError as exc:
        print(f"printfleet stack: {exc}", file=sys.stderr)
        return 2
    try:
        return {"up": _up, "down": _down, "status": _status}[args.action](settings)
    except StackError as exc:
        print(f"printfleet stack {args.action}: {exc}", file=sys.stderr)
        return 1


def _up(settings: StackSettings) -> int:
    print(f"starting the stack in {settings.state_dir} ...", flush=True)
    for s in asyncio.run(stack.up(settings)):
        print(f"{s.name:<10} ready in {s.ready_s:5.1f} s  pid {s.pid:<7} {s.address}")
    print(f"SASL_SSL users and CA: {settings.kafka_secrets_dir}")
    print(f"logs: {settings.logs}")
    return 0


def _down(settings: StackSettings) -> int:
    for name, clean in asyncio.run(stack.down(settings)).items():
        print(f"{name:<10} {'stopped' if clean else 'did not stop on SIGTERM: killed'}")
    return 0


def _status(settings: StackSettings) -> int:
    report = asyncio.run(stack.status(settings))
    for h in report:
        if h.pid is None:
            print(f"{h.name:<10} stopped             {h.address}")
            continue
        state = "healthy" if h.healthy else "NOT ANSWERING"
        rss = f"{h.rss_mib:.0f} MiB" if h.rss_mib is not None else "?"
        up = f"{h.uptime_s:.0f} s" if h.uptime_s is not None else "?"
        print(
            f"{h.name:<10} {state:<13} pid {h.pid:<7} rss {rss:<9} up {up:<8} "
            f"version {h.version or '?':<10} {h.address}"
        )
    return 0 if all(h.healthy for h in report) else 1
