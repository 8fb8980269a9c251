"""Benchmarks never write into the user's topics, groups or tables.

Each run gets a topic (and consumer group) prefix of its own, `bench-<run>.`, deleted at
the end, and the benchmarks that write to ClickHouse use databases named `bench_<run>...`,
dropped at the end. The stream worker's outputs of a bench run (fleet states a year back,
repeated output ids) therefore never reach a sink that serves the user's data.
"""

from __future__ import annotations

import uuid

from common.kafka import clients
from common.kafka.settings import KafkaSettings
from deploy.settings import StackSettings


def run_id() -> str:
    return uuid.uuid4().hex[:8]


def kafka(bootstrap: str | None = None, run: str | None = None) -> KafkaSettings:
    """The local stack's Kafka (or `bootstrap`, also a single broker) under this run's prefix."""
    stack = StackSettings.from_env()
    return stack.kafka(bootstrap_servers=bootstrap or stack.kafka_bootstrap, topic_prefix=f"bench-{run or run_id()}.")


def environment(settings: KafkaSettings) -> dict[str, str]:
    """`PRINTFLEET_KAFKA_*` variables that give a child `printfleet` command these settings."""
    return {
        "PRINTFLEET_KAFKA_BOOTSTRAP_SERVERS": settings.bootstrap_servers,
        "PRINTFLEET_KAFKA_TOPIC_PREFIX": settings.topic_prefix,
        "PRINTFLEET_KAFKA_REPLICATION_FACTOR": str(settings.replication_factor),
        "PRINTFLEET_KAFKA_MIN_INSYNC_REPLICAS": str(settings.min_insync_replicas),
    }


async def drop_topics(settings: KafkaSettings) -> None:
    """Delete every topic of this run (its prefix); refuses any prefix not a bench run's."""
    if not settings.topic_prefix.startswith("bench-"):
        raise ValueError(f"not a bench run's prefix: {settings.topic_prefix!r}")
    client = clients.admin_client(settings)
    await client.start()
    try:
        ours = [name for name in await client.list_topics() if name.startswith(settings.topic_prefix)]
        if ours:
            await client.delete_topics(ours)
    finally:
        await client.close()
