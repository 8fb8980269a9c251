"""`printfleet topics plan|apply|check`: the registry's topics on a Kafka cluster.

Every topic any component uses (`common.kafka.topics`), including one stream worker's
own (its app id), with the Kafka flags' prefix and replication.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from common.kafka import admin
from common.kafka.errors import KafkaLayerError
from common.kafka.topics import TopicSpec, pipeline_topics, worker_topics
from printfleet import kafka_flags

ACTIONS = {
    "plan": "show what apply would create and what differs; change nothing",
    "apply": "create the missing topics; refuse if one differs in partitions or cleanup policy",
    "check": "exit 1 unless every topic exists as the registry says",
}


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "topics", help="plan, create or check the Kafka topics of the registry",
        description="; ".join(f"{name}: {text}" for name, text in ACTIONS.items()) + ".",
    )
    parser.add_argument("action", choices=list(ACTIONS))
    parser.add_argument("--app-id", default="printfleet-streams",
                        help="the stream worker whose own topics to include (default printfleet-streams)")
    kafka_flags.add_arguments(parser)
    parser.set_defaults(handler=run)


def specs(app_id: str) -> tuple[TopicSpec, ...]:
    return (*pipeline_topics(), *worker_topics(app_id))


def run(args: argparse.Namespace) -> int:
    try:
        kafka = kafka_flags.settings(args)
    except (TypeError, ValueError) as exc:
        print(f"printfleet topics: {exc}", file=sys.stderr)
        return 2
    wanted = specs(args.app_id)
    action = {"plan": admin.plan, "apply": admin.apply, "check": admin.check}[args.action]
    try:
        changes = asyncio.run(action(kafka, wanted))
    except KafkaLayerError as exc:
        print(f"printfleet topics {args.action}: {exc}", file=sys.stderr)
        return 1
    for change in changes:
        print(change.line())
    created = sum(c.action == "create" for c in changes)
    verb = {"plan": "to create", "apply": "created", "check": "missing"}[args.action]
    print(f"{len(changes)} topics on {kafka.bootstrap_servers}: {created} {verb}, "
          f"replication {kafka.replication_factor}, min.insync.replicas {kafka.min_insync_replicas}")
    return 0
