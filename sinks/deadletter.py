"""The sink's dead letters: messages it cannot store, with why and where they came from.

The sink sends a batch's dead letters and waits for Kafka's acknowledgement *before* it
inserts the batch and commits its offsets, so a dead letter is never lost. A batch retried
after a crash may send its dead letters again: consumers of the topic recognise a repeat
by its origin headers (topic, partition, offset). Headers: `common.kafka.deadletter`,
with component `sink` and stage `decode` or `convert`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from common.kafka import clients, deadletter
from common.kafka.diagnose import failure
from common.kafka.errors import KafkaUnavailable
from common.kafka.settings import KafkaSettings
from common.kafka.topics import DEAD_LETTER

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class DeadLetter:
    topic: str
    partition: int
    message: Any  # an aiokafka ConsumerRecord: offset, timestamp, key, value, headers
    reason: str
    error: str
    stage: str
    component: str = "sink"  # or "webhook": `printfleet alerts forward` sends its own through this

    def headers(self) -> list[tuple[str, bytes]]:
        m = self.message
        origin = deadletter.Origin(self.component, self.stage, self.topic, self.partition, m.offset, m.timestamp)
        return deadletter.headers(origin, self.reason, self.error, m.headers or ())


class DeadLetterProducer:
    """Produces dead letters with acks=all and idempotence; `stop()` is idempotent.
    The topic is created with the sink's others (`ClickHouseSink.start`). Raises
    `KafkaUnavailable`."""

    def __init__(self, kafka: KafkaSettings, *, timeout_s: float = 15.0) -> None:
        self.topic = kafka.topic(DEAD_LETTER)
        self._kafka = kafka
        self._timeout_s = timeout_s
        self._producer: AIOKafkaProducer | None = None

    async def start(self) -> None:
        if self._producer is not None:
            return
        producer = clients.producer(self._kafka, request_timeout_ms=int(self._timeout_s * 1000))
        try:
            await asyncio.wait_for(producer.start(), self._timeout_s)
        except (KafkaError, OSError, asyncio.TimeoutError) as exc:
            await producer.stop()
            raise await failure(self._kafka, exc, "dead-letter producer") from exc
        self._producer = producer

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
            raise await failure(self._kafka, exc, f"dead-letter produce to {self.topic}") from exc
        for d in letters:
            log.warning(
                "event=dead_lettered topic=%s partition=%s offset=%s stage=%s error=%s reason=%s",
                d.topic, d.partition, d.message.offset, d.stage, d.error, d.reason,
            )

    async def stop(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            await producer.stop()
