"""The topic registry on the real broker: `common.kafka.admin` creates what is missing,
refuses what differs, and `printfleet topics` says so."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace

import pytest
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from common.kafka import admin, clients
from common.kafka.errors import TopicMismatch
from common.kafka.settings import KafkaSettings
from common.kafka.topics import TopicSpec, pipeline_topics, worker_topics
from deploy.settings import StackSettings


def _kafka(stack: StackSettings, unique: str) -> KafkaSettings:
    return stack.kafka(topic_prefix=f"reg-{unique}.")


async def _described(kafka: KafkaSettings, names: list[str]) -> dict[str, tuple[int, str]]:
    client = clients.admin_client(kafka)
    await client.start()
    try:
        partitions = {d["topic"]: len(d["partitions"]) for d in await client.describe_topics(names)}
        policies = {}
        for response in await client.describe_configs([ConfigResource(ConfigResourceType.TOPIC, n) for n in names]):
            for *_, name, entries in response.resources:
                policies[name] = {k: v for k, v, *_ in entries}["cleanup.policy"]
        return {name: (partitions[name], policies[name]) for name in names}
    finally:
        await client.close()


async def test_apply_creates_every_topic_as_registered_and_then_has_nothing_to_do(stack: StackSettings, unique: str) -> None:
    kafka = _kafka(stack, unique)
    specs = [*pipeline_topics(), *worker_topics("printfleet-streams")]

    first = await admin.apply(kafka, specs)
    assert [c.action for c in first] == ["create"] * len(specs)
    described = await _described(kafka, [kafka.topic(s.name) for s in specs])
    assert described == {kafka.topic(s.name): (s.partitions, s.cleanup_policy) for s in specs}

    again = await admin.apply(kafka, specs)
    assert {c.action for c in again} == {"ok"}
    assert {c.action for c in await admin.check(kafka, specs)} == {"ok"}


async def test_a_topic_that_differs_from_the_registry_is_refused_and_nothing_is_created(stack: StackSettings, unique: str) -> None:
    kafka = _kafka(stack, unique)
    alerts = next(s for s in pipeline_topics() if s.name == "alerts")
    await admin.apply(kafka, [replace(alerts, partitions=2)])  # made by someone else, by hand
    fleet = next(s for s in pipeline_topics() if s.name == "fleet.state")

    with pytest.raises(TopicMismatch, match=rf"{kafka.topic('alerts')}: 2 partitions, registry {alerts.partitions}"):
        await admin.apply(kafka, [alerts, fleet])
    plan = {c.name: c.action for c in await admin.plan(kafka, [alerts, fleet])}
    assert plan == {kafka.topic("alerts"): "mismatch", kafka.topic("fleet.state"): "create"}  # apply created nothing
    with pytest.raises(TopicMismatch):
        await admin.check(kafka, [alerts])


async def test_a_replication_factor_above_the_broker_count_is_refused_with_what_to_set(stack: StackSettings, unique: str) -> None:
    kafka = replace(_kafka(stack, unique), replication_factor=3, min_insync_replicas=2)
    with pytest.raises(TopicMismatch, match="replication factor 3 needs as many brokers.*has 1.*REPLICATION_FACTOR"):
        await admin.apply(kafka, [TopicSpec("x", 1)])


def test_the_topics_command_plans_applies_and_checks(stack: StackSettings, unique: str) -> None:
    def topics(action: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "printfleet", "topics", action, "--topic-prefix", f"cli-{unique}."],
                              capture_output=True, text=True, timeout=120)

    check = topics("check")
    assert check.returncode == 1 and "missing" in check.stderr and len(check.stderr.strip().splitlines()) == 1
    plan = topics("plan")
    assert plan.returncode == 0 and f"create   cli-{unique}.telemetry.heartbeat" in plan.stdout
    apply = topics("apply")
    assert apply.returncode == 0, apply.stderr
    count = len(pipeline_topics()) + len(worker_topics("printfleet-streams"))
    assert f"{count} topics on {stack.kafka_bootstrap}: {count} created, replication 1" in apply.stdout
    assert topics("check").returncode == 0
