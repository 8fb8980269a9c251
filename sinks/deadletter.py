"""The dead-letter topic: messages the sink cannot store, with why and where they came from.

The sink sends a batch's dead letters and waits for Kafka's acknowledgement *before* it
inserts the batch and commits its offsets, so a dead letter is never lost. A batch retried
after a crash may send its dead letters again: consumers of the topic recognise a repeat
by its origin headers (topic, partition, offset).

Each dead letter keeps the original key, value and headers, and adds:

    deadletter.reason            what was wrong, in words
    deadletter.error             the error class (e.g. UnknownFingerprintError)
    deadletter.origin.topic      where the message was
    deadletter.origin.partition
    deadletter.origin.offset
    deadletter.origin.timestamp  its Kafka timestamp, ms
    deadletter.stage             decode | convert
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from sinks.errors import KafkaUnavailable

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class DeadLetter:
    topic: str
    partition: int
    message: Any  # an aiokafka record: offset, timestamp, key, value, headers (sinks.raw_records)
    reason: str
    error: str
    stage: str

    def headers(self) -> list[tuple[str, bytes]]:
        m = self.message
        own = [
            ("deadletter.reason", self.reason.encode()),
            ("deadletter.error", self.error.encode()),
            ("deadletter.origin.topic", self.topic.encode()),
            ("deadletter.origin.partition", str(self.partition).encode()),
            ("deadletter.origin.offset", str(m.offset).encode()),
            ("deadletter.origin.timestamp", str(m.timestamp).encode()),
            ("deadletter.stage", self.stage.encode()),
        ]
        return [(k, bytes(v)) for k, v in (m.headers or ())] + own


class DeadLetterProducer:
    """Produces dead letters with acks=all and idempotence. `start()` creates the topic
    when missing; `stop()` is idempotent. Raises `KafkaUnavailable`."""

    def __init__(self, bootstrap: str, topic: str, *, timeout_s: float = 15.0) -> None:
        self.topic = topic
        self._bootstrap = bootstrap
        self._timeout_s = timeout_s
        self._producer: AIOKafkaProducer | None = None

    async def start(self) -> None:
        if self._producer is not None:
            return
        producer = AIOKafkaProducer(
            bootstrap_servers=self._bootstrap, acks="all", enable_idempotence=True,
            request_timeout_ms=int(self._timeout_s * 1000),
        )
        try:
            await asyncio.wait_for(self._ensure_topic(), self._timeout_s)
            await asyncio.wait_for(producer.start(), self._timeout_s)
        except (KafkaError, OSError, asyncio.TimeoutError) as exc:
            await producer.stop()
            raise KafkaUnavailable(f"dead-letter producer to {self._bootstrap}: {exc!r}") from exc
        self._producer = producer

    async def _ensure_topic(self) -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=self._bootstrap)
        await admin.start()
        try:
            await admin.create_topics([NewTopic(self.topic, num_partitions=1, replication_factor=1)])
        except TopicAlreadyExistsError:
            pass
        finally:
            await admin.close()

    async def send(self, letters: Sequence[DeadLetter]) -> None:
        """Produce every letter and wait until Kafka acknowledged all of them."""
        if not letters:
            return
        await self.start()
        assert self._producer is not None
        try:
            futures = [
                await self._producer.send(self.topic, value=d.message.value, key=d.message.key, headers=d.headers())
                for d in letters
            ]
            await asyncio.wait_for(asyncio.gather(*futures), self._timeout_s)
        except (KafkaError, OSError, asyncio.TimeoutError) as exc:
            raise KafkaUnavailable(f"dead-letter produce to {self.topic}: {exc!r}") from exc
        for d in letters:
            log.warning(
                "event=dead_lettered topic=%s partition=%s offset=%s stage=%s error=%s reason=%s",
                d.topic, d.partition, d.message.offset, d.stage, d.error, d.reason,
            )

    async def stop(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            await producer.stop()
