"""Reads a range of offsets of one partition directly, outside Faust's consumer.

The device agent uses it when Faust delivered a record beyond the next offset its
partition book expects (records were skipped, docs/findings.md): it reads the missing
range itself and applies it first, so a skip in Faust cannot lose a record.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from streams.errors import StreamsError


class GapReadError(StreamsError):
    """The missing records could not be read; the worker must stop rather than skip."""

    retriable = True


class GapReader:
    def __init__(self, bootstrap: str, *, timeout_s: float = 30.0) -> None:
        self._bootstrap = bootstrap
        self._timeout_s = timeout_s
        self._consumer: AIOKafkaConsumer | None = None

    async def read(self, topic: str, partition: int, start: int, end: int) -> list[Any]:
        """The records with offsets in [start, end), in order. Offsets that no longer
        exist (retention, compaction) are simply absent. Raises GapReadError when the
        broker does not deliver them within the timeout."""
        consumer = await self._started()
        tp = TopicPartition(topic, partition)
        consumer.assign([tp])
        consumer.seek(tp, start)
        out: list[Any] = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._timeout_s
        while await consumer.position(tp) < end:
            if loop.time() > deadline:
                raise GapReadError(f"{topic}[{partition}] offsets {start}..{end - 1}: not delivered in {self._timeout_s:.0f} s")
            batch = await consumer.getmany(tp, timeout_ms=500, max_records=end - start)
            out += [r for r in batch.get(tp, []) if r.offset < end]
        return out

    async def _started(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            self._consumer = AIOKafkaConsumer(
                bootstrap_servers=self._bootstrap, group_id=None, enable_auto_commit=False,
                auto_offset_reset="earliest",
            )
            await self._consumer.start()
        return self._consumer

    async def close(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None
