"""The release catalogue as every worker sees it: all of a (small, compacted) topic.

Each worker needs every release, whichever partitions it owns, so the catalogue is read
outside the consumer group: all partitions from the beginning, then followed. Entries
are the JSON of `streams.advisories.Release`; one that does not parse is logged and
skipped (it can never be advised: only verified entries are). Signatures are verified
when a device is advised, not here, so a bad entry is reported where it would matter.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Sequence
from pathlib import Path

from aiokafka import TopicPartition
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from common.kafka import clients
from common.kafka.settings import KafkaSettings
from common.kafka.topics import CATALOGUE
from streams.advisories import Release

log = logging.getLogger(__name__)


def load_public_key(path: Path) -> Ed25519PublicKey:
    """The maker's release-signing key. Raises ValueError when the file is not an
    Ed25519 public key in PEM."""
    key = load_pem_public_key(path.read_bytes())
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError(f"{path}: not an Ed25519 public key")
    return key


async def _partitions(kafka: KafkaSettings, topic: str) -> list[int]:
    """The topic's partitions, once it exists (the worker creates it at start). Asked of
    the admin API: a consumer without a group does not learn them from `topics()`."""
    admin = clients.admin_client(kafka)
    try:  # closed also when its start fails: it may hold a connection by then
        await admin.start()
        while True:
            described = await admin.describe_topics([topic])
            partitions = sorted(p["partition"] for d in described for p in d.get("partitions") or [])
            if partitions:
                return partitions
            await asyncio.sleep(1.0)
    finally:
        await admin.close()


async def follow(kafka: KafkaSettings, on_change: Callable[[Sequence[Release]], None]) -> None:
    """Read the catalogue topic from the beginning and call `on_change(all releases)`
    after every batch that changed them. Runs until cancelled."""
    topic = kafka.topic(CATALOGUE)
    partitions = await _partitions(kafka, topic)
    consumer = clients.consumer(kafka, group_id=None)
    try:
        await consumer.start()
        tps = [TopicPartition(topic, p) for p in partitions]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        releases: dict[bytes, Release] = {}
        while True:
            batch = await consumer.getmany(timeout_ms=1000)
            changed = False
            for records in batch.values():
                for r in records:
                    key = r.key or b""
                    if r.value is None:
                        changed |= releases.pop(key, None) is not None
                        continue
                    try:
                        releases[key] = Release.from_dict(json.loads(r.value))
                        changed = True
                    except (TypeError, ValueError) as exc:
                        log.warning("catalogue %s offset %d: not a release entry (%s); ignored", topic, r.offset, exc)
            if changed:
                on_change(list(releases.values()))
    finally:
        await consumer.stop()
