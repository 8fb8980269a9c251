"""The one place topics are created or checked against the registry.

    changes = await plan(settings, specs)    # what apply would do; changes nothing
    await apply(settings, specs)             # creates what is missing, waits until listed
    await check(settings, specs)             # raises unless every topic is as registered

A topic that exists with other partitions or another cleanup policy is never changed
here: `apply` and `check` refuse with `TopicMismatch` naming it, because repartitioning
moves a printer's records to another partition (its order and its worker state) and
changing a policy can delete data; an operator decides. Retention and
`min.insync.replicas` differences are reported, not refused.

After creating, `apply` waits until the broker describes every topic with its
partitions: a topic created as a consumer group forms can be left out of the group's
first assignment (seen with Faust's internal topics on a fresh broker).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import KafkaError

from common.kafka.clients import admin_client
from common.kafka.diagnose import DENIED_CODES, denied, failure
from common.kafka.errors import KafkaRefused, KafkaUnavailable, TopicMismatch
from common.kafka.settings import KafkaSettings
from common.kafka.topics import TopicSpec

_TOPIC_ALREADY_EXISTS = 36  # Kafka's error code: another process created it meanwhile


@dataclass(frozen=True, slots=True)
class TopicChange:
    """What differs between a registry topic and the cluster's.

    action: "create" (missing), "ok", "mismatch" (refused: partitions or cleanup policy),
    "differs" (reported only: retention, min.insync.replicas).
    """

    name: str  # the cluster's name, prefix included
    action: str
    detail: str = ""

    def line(self) -> str:
        return f"{self.action:8} {self.name}" + (f"  ({self.detail})" if self.detail else "")


def wanted_configs(spec: TopicSpec, settings: KafkaSettings) -> dict[str, str]:
    configs = {"cleanup.policy": spec.cleanup_policy, "min.insync.replicas": str(settings.min_insync_replicas)}
    if spec.retention_ms is not None:
        configs["retention.ms"] = str(spec.retention_ms)
    return configs


async def plan(settings: KafkaSettings, specs: Sequence[TopicSpec]) -> list[TopicChange]:
    """Compare the registry's `specs` with the cluster. Raises KafkaUnavailable."""
    async with _Admin(settings) as admin:
        return await _plan(admin, settings, specs)


async def apply(settings: KafkaSettings, specs: Sequence[TopicSpec], *, wait_s: float = 30.0) -> list[TopicChange]:
    """Create the missing topics and wait until the broker lists them all.

    Raises TopicMismatch (nothing is created then) and KafkaUnavailable.
    """
    async with _Admin(settings) as admin:
        changes = await _plan(admin, settings, specs)
        _refuse_mismatches(changes)
        missing = {c.name for c in changes if c.action == "create"}
        if missing:
            await _require_brokers(admin, settings)
            new = [
                NewTopic(settings.topic(s.name), s.partitions, settings.replication_factor,
                         topic_configs=wanted_configs(s, settings))
                for s in specs if settings.topic(s.name) in missing
            ]
            response = await admin.call(admin.client.create_topics(new))
            for name, code, *rest in getattr(response, "topic_errors", ()):
                if code in DENIED_CODES:
                    raise KafkaRefused(f"creating topic {name}: {denied(settings, f'error code {code}')}")
                if code not in (0, _TOPIC_ALREADY_EXISTS):
                    message = rest[0] if rest and rest[0] else f"error code {code}"
                    raise TopicMismatch(f"creating topic {name}: {message}")
        await _wait_listed(admin, [settings.topic(s.name) for s in specs], wait_s)
        return changes


async def check(settings: KafkaSettings, specs: Sequence[TopicSpec]) -> list[TopicChange]:
    """Raise TopicMismatch unless every topic exists as registered; KafkaUnavailable."""
    changes = await plan(settings, specs)
    _refuse_mismatches(changes)
    missing = [c.name for c in changes if c.action == "create"]
    if missing:
        raise TopicMismatch(f"{len(missing)} topic(s) missing: {', '.join(missing)} (printfleet topics apply)")
    return changes


def _refuse_mismatches(changes: Sequence[TopicChange]) -> None:
    wrong = [c for c in changes if c.action == "mismatch"]
    if wrong:
        raise TopicMismatch("; ".join(f"{c.name}: {c.detail}" for c in wrong)
                            + " (the registry's topics are not changed in place: recreate them or fix the registry)")


async def _plan(admin: _Admin, settings: KafkaSettings, specs: Sequence[TopicSpec]) -> list[TopicChange]:
    names = [settings.topic(s.name) for s in specs]
    # Listed first, and only existing topics described: a metadata request naming a
    # missing topic makes a broker with auto.create.topics.enable create it, with the
    # broker's partitions and policy instead of the registry's.
    existing = set(await admin.call(admin.client.list_topics()))
    asked = [n for n in names if n in existing]
    described = {d["topic"]: d for d in await admin.call(admin.client.describe_topics(asked))} if asked else {}
    present = [n for n in asked if described.get(n, {}).get("error_code", 3) == 0 and described[n].get("partitions")]
    configs = await _configs(admin, present)
    changes = []
    for spec, name in zip(specs, names):
        if name not in present:
            changes.append(TopicChange(name, "create", f"{spec.partitions} partitions, {spec.cleanup_policy}, "
                                                       f"replication {settings.replication_factor}"))
            continue
        partitions = len(described[name]["partitions"])
        have = configs.get(name, {})
        wrong = []
        if partitions != spec.partitions:
            wrong.append(f"{partitions} partitions, registry {spec.partitions}")
        if have.get("cleanup.policy", "delete") != spec.cleanup_policy:
            wrong.append(f"cleanup.policy {have.get('cleanup.policy')}, registry {spec.cleanup_policy}")
        if wrong:
            changes.append(TopicChange(name, "mismatch", "; ".join(wrong)))
            continue
        soft = [f"{key} {have.get(key)}, registry {value}" for key, value in wanted_configs(spec, settings).items()
                if key != "cleanup.policy" and have.get(key) != value]
        changes.append(TopicChange(name, "differs", "; ".join(soft)) if soft else TopicChange(name, "ok"))
    return changes


async def _configs(admin: _Admin, names: Sequence[str]) -> dict[str, dict[str, str]]:
    if not names:
        return {}
    resources = [ConfigResource(ConfigResourceType.TOPIC, name) for name in names]
    out: dict[str, dict[str, str]] = {}
    for response in await admin.call(admin.client.describe_configs(resources)):
        for _code, _message, _type, name, entries in response.resources:
            out[name] = {key: value for key, value, *_ in entries}
    return out


async def _require_brokers(admin: _Admin, settings: KafkaSettings) -> None:
    cluster = await admin.call(admin.client.describe_cluster())
    brokers = len(cluster.get("brokers", ()))
    if brokers < settings.replication_factor:
        raise TopicMismatch(
            f"replication factor {settings.replication_factor} needs as many brokers; {settings.bootstrap_servers} "
            f"has {brokers} (set PRINTFLEET_KAFKA_REPLICATION_FACTOR and PRINTFLEET_KAFKA_MIN_INSYNC_REPLICAS, "
            f"or --replication-factor)"
        )


async def _wait_listed(admin: _Admin, names: Sequence[str], wait_s: float) -> None:
    deadline = asyncio.get_running_loop().time() + wait_s
    while True:
        described = await admin.call(admin.client.describe_topics(list(names)))
        ready = {d["topic"] for d in described if d.get("error_code", 0) == 0 and d.get("partitions")}
        late = [n for n in names if n not in ready]
        if not late:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise KafkaUnavailable(f"topics not listed by the broker after {wait_s:.0f} s: {', '.join(late)}")
        await asyncio.sleep(0.2)


class _Admin:
    """An admin client whose aiokafka errors become `KafkaUnavailable`."""

    def __init__(self, settings: KafkaSettings) -> None:
        self.settings = settings
        self.client: AIOKafkaAdminClient = admin_client(settings)

    async def call(self, awaitable: Any) -> Any:
        try:
            return await asyncio.wait_for(awaitable, self.settings.request_timeout_s)
        except (KafkaError, OSError, asyncio.TimeoutError) as exc:
            raise await failure(self.settings, exc, "topic admin") from exc

    async def __aenter__(self) -> _Admin:
        try:
            await self.call(self.client.start())
        except KafkaUnavailable:
            await self.client.close()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.client.close()
