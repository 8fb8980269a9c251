"""`printfleet worker`: a stream worker (Faust) turning telemetry into fleet state,
utilisation KPIs, alerts and advisories. Start more with the same --app-id to share the
partitions."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path
from typing import Any

import faust

from common.kafka import admin
from common.kafka.errors import KafkaLayerError
from common.ops import WORKER_OPS_PORT
from common.settings import build
from printfleet import config_flags, kafka_flags, ops_flags
from printfleet.runtime import relax_gc
from streams.app import create_app
from streams.worker_settings import WorkerSettings


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "worker",
        help="run a stream worker: fleet state, utilisation, alerts, advisories",
        description="Every flag can also be set as PRINTFLEET_WORKER_<FLAG>, e.g. PRINTFLEET_WORKER_APP_ID.",
    )
    kafka_flags.add_arguments(parser)
    parser.add_argument("--app-id", help="consumer group and internal topic prefix (default printfleet-streams)")
    parser.add_argument("--data-dir", type=Path, help="folder for the worker's own files (default .stack/worker)")
    parser.add_argument("--heartbeat-interval-s", type=float, help="the collectors' heartbeat period (default 10)")
    parser.add_argument("--offline-after-intervals", type=int, help="missed heartbeats before offline (default 3)")
    parser.add_argument("--allowed-lateness-s", type=float, help="utilisation: how late a record still counts (default 600)")
    parser.add_argument("--checkpoint-every-s", type=float, help="commit a partition's outputs, states and position at most this often; outputs are seen by readers at a commit (default 1)")
    parser.add_argument("--release-key-file", type=Path, help="Ed25519 public key (PEM) that signs the release catalogue")
    parser.add_argument("--start-at", choices=["earliest", "latest"], help="a new app id reads from (default earliest)")
    parser.add_argument("--tick-every-s", type=float, help="wall seconds between offline/window checks (default 5)")
    parser.add_argument("--web-port", type=int, help="Faust's web view on 127.0.0.1 (default 0: off)")
    parser.add_argument("--loglevel", default="warning", type=str.lower,
                        choices=("debug", "info", "warning", "error", "critical"),
                        help="log level of the worker, Faust's and printfleet's lines (default warning; -v: debug)")
    ops_flags.add_arguments(parser, WORKER_OPS_PORT)
    config_flags.add_arguments(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    try:
        config = config_flags.load(args)
        table = config.table("worker")
        settings = build(
            WorkerSettings, "worker", config=table, config_name=config.name("worker"),
            kafka=kafka_flags.settings(args, config=config),
            app_id=args.app_id, data_dir=args.data_dir, heartbeat_interval_s=args.heartbeat_interval_s,
            offline_after_intervals=args.offline_after_intervals, allowed_lateness_s=args.allowed_lateness_s,
            checkpoint_every_s=args.checkpoint_every_s, release_key_file=args.release_key_file, web_port=args.web_port,
            start_at=args.start_at, tick_every_s=args.tick_every_s,
            ops_host=args.ops_host, ops_port=ops_flags.port(args, "worker", WORKER_OPS_PORT, config=table),
        )
        if args.print_config:
            print(config_flags.render(settings, "worker"))
            return 0
        worker = create_app(settings)
    except (TypeError, ValueError, OSError) as exc:
        print(f"printfleet worker: {exc}", file=sys.stderr)
        return 2
    kafka = settings.kafka
    print(f"worker {kafka.group(settings.app_id)} -> kafka {kafka.bootstrap_servers}", flush=True)
    try:
        asyncio.run(admin.apply(kafka, worker.topics))
    except KafkaLayerError as exc:
        print(f"printfleet worker: {exc}", file=sys.stderr)
        return 1
    relax_gc()
    # Faust's own set-up would replace the handler `printfleet --log-format` chose.
    runner = faust.Worker(worker.app, loglevel=args.loglevel, quiet=True, redirect_stdouts=False,
                          override_logging=False)
    root = logging.getLogger()  # --loglevel is the whole worker's, Faust's and ours; -v still wins
    root.setLevel(min(root.level, logging.getLevelNamesMapping()[args.loglevel.upper()]))
    runner.on_setup_root_logger(root, root.level)  # what Faust's own set-up ends with (its spinner)
    runner.execute_from_commandline()  # returns only by exiting the process
    return 0
