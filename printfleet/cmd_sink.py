"""`printfleet sink`: Kafka topics into ClickHouse tables (see sinks/clickhouse.py)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from typing import Any

from common.errors import PrintfleetError
from common.ops import SINK_OPS_PORT
from common.settings import build
from printfleet import clickhouse_flags, config_flags, kafka_flags, ops_flags
from printfleet.runtime import relax_gc
from schemas import SchemaRegistry
from sinks import migrations
from sinks.clickhouse import ClickHouseSink, SinkSettings, SinkStatus
from sinks.cluster import Cluster
from sinks.connection import ClickHouseSettings


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "sink",
        help="run the ClickHouse sink: telemetry, aggregate and alert topics into ClickHouse",
        description="Sink flags can also be set as PRINTFLEET_SINK_<FLAG>, e.g. PRINTFLEET_SINK_GROUP_ID; "
        "Kafka and ClickHouse flags as PRINTFLEET_KAFKA_<FLAG> and PRINTFLEET_CLICKHOUSE_<FLAG>.",
    )
    kafka_flags.add_arguments(parser)
    clickhouse_flags.add_arguments(parser, database_help="default printfleet; created if missing")
    ops_flags.add_arguments(parser, SINK_OPS_PORT)
    config_flags.add_arguments(parser)
    parser.add_argument("--group-id", help="consumer group (default printfleet-sink)")
    parser.add_argument("--kinds", help="comma-separated record kinds to sink (default: all)")
    parser.add_argument("--batch-max-records", type=int, help="records per batch and partition (default 20000)")
    parser.add_argument("--batch-max-age-s", type=float, help="longest a record waits for its batch (default 2)")
    parser.add_argument("--status-every-s", type=float, default=10.0, help="status line period (0: none)")
    parser.add_argument("--migrate-only", action="store_true", help="apply pending migrations and exit")
    parser.add_argument("--print-ddl", action="store_true",
                        help="print every migration's SQL (for --cluster: the cluster's) and exit; needs no server")
    parser.set_defaults(handler=run)


def settings_from(args: argparse.Namespace) -> SinkSettings:
    config = config_flags.load(args)
    table = config.table("sink")
    return build(
        SinkSettings, "sink", config=table, config_name=config.name("sink"),
        kafka=kafka_flags.settings(args, config=config), clickhouse=clickhouse_flags.settings(args, config=config),
        group_id=args.group_id, kinds=args.kinds,
        batch_max_records=args.batch_max_records, batch_max_age_s=args.batch_max_age_s,
        ops_host=args.ops_host, ops_port=ops_flags.port(args, "sink", SINK_OPS_PORT, config=table),
    )


def run(args: argparse.Namespace) -> int:
    registry = SchemaRegistry.load_default()
    if args.print_ddl:
        return _print_ddl(args, registry)
    try:
        settings = settings_from(args)
        settings.kind_list(registry)
    except (TypeError, ValueError) as exc:
        print(f"printfleet sink: {exc}", file=sys.stderr)
        return 2
    if args.print_config:
        print(config_flags.render(settings, "sink"))
        return 0
    logging.getLogger("sinks").setLevel(logging.INFO)
    try:
        if args.migrate_only:
            applied = asyncio.run(_migrate(settings, registry))
            print(f"applied {len(applied)} migrations: {', '.join(applied) or 'none pending'}")
            return 0
        relax_gc()
        asyncio.run(serve(settings, registry, args.status_every_s))
    except PrintfleetError as exc:
        print(f"printfleet sink: {exc}", file=sys.stderr)
        return 1
    return 0


def _print_ddl(args: argparse.Namespace, registry: SchemaRegistry) -> int:
    """The DDL for the cluster and database the flags name; no server is asked."""
    env = os.environ
    cluster = args.cluster or env.get("PRINTFLEET_CLICKHOUSE_CLUSTER") or ""
    database = args.clickhouse_database or env.get("PRINTFLEET_CLICKHOUSE_DATABASE") or "printfleet"
    try:
        # Checked as the sink would check them, without the URL and files it does not use.
        ClickHouseSettings("http://127.0.0.1", database=database, cluster=cluster)
    except ValueError as exc:
        print(f"printfleet sink: {exc}", file=sys.stderr)
        return 2
    where = Cluster(cluster, database) if cluster else None
    print(migrations.script(migrations.plan(registry, where), where))
    return 0


async def _migrate(settings: SinkSettings, registry: SchemaRegistry) -> list[str]:
    sink = ClickHouseSink(settings, registry)
    try:
        return await sink.migrate()
    finally:
        await sink.client.close()


def status_line(status: SinkStatus, rate: float) -> str:
    c = status.counters
    lag = sum(status.lag.values())
    worst = max(status.lag.items(), key=lambda kv: kv[1], default=("-", 0))
    state = f"PAUSED {status.paused_for_s:.0f}s ({status.last_error[:120]})" if status.paused_for_s else "running"
    return (
        f"sink: {state}; {c.records_stored} records stored ({rate:,.0f}/s), {c.rows_inserted} rows, "
        f"{c.batches_written} batches, {c.dead_lettered} dead-lettered, {c.retries} retries; "
        f"lag {lag} (most: {worst[0]} {worst[1]}); {status.assigned} partitions"
    )


async def serve(settings: SinkSettings, registry: SchemaRegistry, every_s: float, stop: asyncio.Event | None = None) -> None:
    """Run the sink until SIGINT/SIGTERM (or `stop`), printing a status line."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with ClickHouseSink(settings, registry) as sink:
        print(
            f"sink: {len(sink.topics)} topics -> {settings.clickhouse.describe()} "
            f"(group {settings.kafka.group(settings.group_id)})", flush=True,
        )
        if sink.ops.url:
            print(f"sink metrics {sink.ops.url}/metrics, health {sink.ops.url}/readyz", flush=True)
        runner = asyncio.create_task(sink.run(stop))
        last, last_t = 0, loop.time()
        while not runner.done():
            done, _ = await asyncio.wait({runner}, timeout=every_s or 3600)
            if every_s and not done:
                status = await sink.status()
                now = loop.time()
                rate = (status.counters.records_stored - last) / max(now - last_t, 1e-9)
                last, last_t = status.counters.records_stored, now
                print(status_line(status, rate), flush=True)
        runner.result()
    print(status_line(await sink.status(), 0.0), flush=True)
