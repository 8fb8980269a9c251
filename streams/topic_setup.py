"""The worker's topics created, and listed by the broker, before Faust's consumer joins.

Faust creates the topics it uses as it starts, and its consumer joins the group moments
later. On a fresh broker a topic created that late can be missing from the metadata the
group leader assigns from: Faust logs "Ignoring missing topic" and leaves that topic's
partitions unassigned until the client's metadata is refreshed, up to five minutes
later. Seen in CI with the internal ticks and windows-by-site topics: a worker that read
no telemetry (it owns what the ticks say) and a site agent that got nothing. Creating
every topic first, and waiting until the broker describes each one, closes that window.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import faust
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from streams.errors import StreamsError


class TopicSetupError(StreamsError):
    """The worker's topics could not be created or did not show up in time."""

    retriable = True


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    compacted: bool


def specs(topics: Iterable[faust.TopicT], default_partitions: int) -> list[TopicSpec]:
    """What Faust would create for these topics: their names, partition counts and
    whether they are compacted (changelogs, the fleet view)."""
    out: dict[str, TopicSpec] = {}
    for topic in topics:
        for name in topic.topics:
            out[name] = TopicSpec(name, topic.partitions or default_partitions, bool(topic.compacting))
    return sorted(out.values(), key=lambda s: s.name)


async def create(bootstrap: str, wanted: Sequence[TopicSpec], *, timeout_s: float = 30.0) -> None:
    """Create the topics that do not exist yet (replication 1: the local broker) and wait
    until the broker describes every one with its partitions. Raises TopicSetupError."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=int(timeout_s * 1000))
    try:
        await admin.start()
        existing = set(await admin.list_topics())
        missing = [s for s in wanted if s.name not in existing]
        for spec in missing:
            config = {"cleanup.policy": "compact"} if spec.compacted else {}
            try:
                await admin.create_topics([NewTopic(spec.name, spec.partitions, 1, topic_configs=config)])
            except TopicAlreadyExistsError:
                pass  # another worker of the group was quicker
        deadline = asyncio.get_running_loop().time() + timeout_s
        while True:
            described = await admin.describe_topics([s.name for s in wanted])
            ready = {d["topic"] for d in described if d.get("error_code", 0) == 0 and d.get("partitions")}
            late = [s.name for s in wanted if s.name not in ready]
            if not late:
                return
            if asyncio.get_running_loop().time() > deadline:
                raise TopicSetupError(f"topics not listed by the broker after {timeout_s:.0f} s: {', '.join(late)}")
            await asyncio.sleep(0.2)
    except (KafkaError, OSError, asyncio.TimeoutError) as exc:
        raise TopicSetupError(f"creating the worker's topics on {bootstrap}: {exc!r}") from exc
    finally:
        await admin.close()
