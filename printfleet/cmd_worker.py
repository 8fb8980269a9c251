"""`printfleet worker`: a stream worker (Faust) turning telemetry into fleet state,
utilisation KPIs, alerts and advisories. Start more with the same --app-id to share the
partitions."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import faust

from deploy.settings import StackSettings
from common.settings import build
from printfleet.runtime import relax_gc
from streams import topic_setup
from streams.app import create_app
from streams.worker_settings import WorkerSettings


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "worker",
        help="run a stream worker: fleet state, utilisation, alerts, advisories",
        description="Every flag can also be set as PRINTFLEET_WORKER_<FLAG>, e.g. PRINTFLEET_WORKER_APP_ID.",
    )
    parser.add_argument("--kafka-bootstrap", help="Kafka bootstrap servers (default: the local stack's)")
    parser.add_argument("--app-id", help="consumer group and internal topic prefix (default printfleet-streams)")
    parser.add_argument("--data-dir", type=Path, help="folder for the worker's own files (default .stack/worker)")
    parser.add_argument("--heartbeat-interval-s", type=float, help="the collectors' heartbeat period (default 10)")
    parser.add_argument("--offline-after-intervals", type=int, help="missed heartbeats before offline (default 3)")
    parser.add_argument("--allowed-lateness-s", type=float, help="utilisation: how late a record still counts (default 600)")
    parser.add_argument("--checkpoint-every-s", type=float, help="state to the changelog at most this often (default 10)")
    parser.add_argument("--release-key-file", type=Path, help="Ed25519 public key (PEM) that signs the release catalogue")
    parser.add_argument("--start-at", choices=["earliest", "latest"], help="a new app id reads from (default earliest)")
    parser.add_argument("--tick-every-s", type=float, help="wall seconds between offline/window checks (default 5)")
    parser.add_argument("--web-port", type=int, help="Faust's web view on 127.0.0.1 (default 0: off)")
    parser.add_argument("--loglevel", default="warning", help="Faust log level (default warning)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    try:
        settings = build(
            WorkerSettings, "worker",
            kafka_bootstrap=args.kafka_bootstrap,
            app_id=args.app_id, data_dir=args.data_dir, heartbeat_interval_s=args.heartbeat_interval_s,
            offline_after_intervals=args.offline_after_intervals, allowed_lateness_s=args.allowed_lateness_s,
            checkpoint_every_s=args.checkpoint_every_s, release_key_file=args.release_key_file, web_port=args.web_port,
            start_at=args.start_at, tick_every_s=args.tick_every_s,
        )
        if not settings.kafka_bootstrap:
            settings = replace(settings, kafka_bootstrap=StackSettings.from_env().kafka_bootstrap)
        app, topics = create_app(settings)
    except (TypeError, ValueError, OSError) as exc:
        print(f"printfleet worker: {exc}", file=sys.stderr)
        return 2
    print(f"worker {settings.app_id} -> kafka {settings.kafka_bootstrap}", flush=True)
    try:
        asyncio.run(topic_setup.create(settings.kafka_bootstrap, topics))
    except topic_setup.TopicSetupError as exc:
        print(f"printfleet worker: {exc}", file=sys.stderr)
        return 1
    relax_gc()
    worker = faust.Worker(app, loglevel=args.loglevel, quiet=True, redirect_stdouts=False)
    logging.getLogger("faust").setLevel(args.loglevel.upper())
    worker.execute_from_commandline()  # returns only by exiting the process
    return 0
