"""Benchmarks never write into the user's topics, groups or tables.

Each run gets a topic (and consumer group) prefix of its own, `bench-<run>.`, deleted at
the end, and the benchmarks that write to ClickHouse use databases named `bench_<run>...`,
dropped at the end. The stream worker's outputs of a bench run (fleet states a year back,
repeated output ids) therefore never reach a sink that serves the user's data.
"""

from __future__ import annotations

import dataclasses
import uuid

from common.kafka import clients
from common.kafka.settings import KafkaSettings
from common.settings import Secret
from deploy.settings import StackSettings


def run_id() -> str:
    return uuid.uuid4().hex[:8]


def kafka(bootstrap: str | None = None, run: str | None = None) -> KafkaSettings:
    """The local stack's Kafka (or `bootstrap`, also a single broker) under this run's prefix."""
    stack = StackSettings.from_env()
    return stack.kafka(bootstrap_servers=bootstrap or stack.kafka_bootstrap, topic_prefix=f"bench-{run or run_id()}.")


def environment(settings: KafkaSettings) -> dict[str, str]:
    """`PRINTFLEET_KAFKA_*` variables that give a child `printfleet` command these settings
    (security included; a password goes by its file where it has one)."""
    values = {f.name: getattr(settings, f.name) for f in dataclasses.fields(settings)}
    return {f"PRINTFLEET_KAFKA_{name.upper()}": value.reveal() if isinstance(value, Secret) else str(value)
            for name, value in values.items() if value is not None and value != "" and value != Secret()}


async def drop_topics(settings: KafkaSettings) -> None:
    """Delete every topic of this run (its prefix); refuses any prefix not a bench run's."""
    if not settings.topic_prefix.startswith("bench-"):
        raise ValueError(f"not a bench run's prefix: {settings.topic_prefix!r}")
    client = clients.admin_client(settings)
    try:
        await client.start()
        ours = [name for name in await client.list_topics() if name.startswith(settings.topic_prefix)]
        if ours:
            await client.delete_topics(ours)
    finally:
        await client.close()
