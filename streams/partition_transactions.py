"""A partition's outputs, states and position go to Kafka together, in transactions.

A worker owns input partitions (the ticks topic's assignment, see `streams.app`). For each
it holds one transactional producer, `transactional_id = <app id>.partition-<p>`, and an
open transaction. Everything the device agent makes from the partition's records (output
records, dead letters, messages for the roll-ups) is sent inside it; at a checkpoint the
changed states (printers, sites, cohorts) and the partition book (the input position) are written to their
changelog topics and the transaction is committed. Consumers that read committed records
(every printfleet consumer) see a checkpoint's outputs exactly when the states and the
position that produced them are in Kafka: after a crash the next owner replays from the
committed book, and what the crashed owner made since its last commit was aborted, so no
output reaches them twice and none is lost.

Why not Faust's tables and exactly-once mode: Faust recovers tables with a consumer that
reads uncommitted records unless its own `exactly_once` mode is on, and that mode has open
reports of duplicates and crashes on rebalance (faust-streaming issues 323, 517). The
device states and books are therefore plain compacted topics, written here and read back
here (`own`), with read_committed.

`own` initialises a partition's producer before reading its changelogs: that fences the
partition's previous owner and waits until its last transaction is complete, so the read
that follows sees everything it committed.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError
from aiokafka.partitioner import DefaultPartitioner

from common.kafka import clients, deadletter
from common.kafka.settings import KafkaSettings
from common.kafka.topics import DEAD_LETTER, WORKER_CHANGELOGS
from schemas import SchemaRegistry
from streams.errors import TransactionFailed

log = logging.getLogger(__name__)

Outgoing = tuple[str, str, tuple[str, dict[str, Any]]]  # topic (registry name), key, (kind, record)


@dataclass(slots=True)
class Recovered:
    """A partition's committed state: key (`device/<id>`, `site/<id>/<window>/<device>`,
    `cohort/<key>`) -> state JSON, and its book's JSON."""

    states: dict[str, bytes] = field(default_factory=dict)
    book: bytes | None = None


def changelog_topics(app_id: str) -> tuple[str, str]:
    """Registry names of the device states' and the partition books' changelogs."""
    states, books = WORKER_CHANGELOGS
    return f"{app_id}-{states}", f"{app_id}-{books}"


class PartitionTransactions:
    def __init__(self, kafka: KafkaSettings, registry: SchemaRegistry, headers: Sequence[tuple[str, bytes]], *,
                 app_id: str) -> None:
        """`app_id`: the worker's (registry) app id; `headers` go on every output record."""
        self._kafka, self._registry, self._headers = kafka, registry, list(headers)
        self._app_id = app_id
        self._states_topic, self._books_topic = (kafka.topic(t) for t in changelog_topics(app_id))
        self._producers: dict[int, AIOKafkaProducer] = {}
        # Delivery futures of what was sent in each open transaction: collected at commit,
        # so that a failed transaction's errors are read, not left to the event loop.
        self._sent: dict[int, list[asyncio.Future[Any]]] = {}
        self._failed: set[int] = set()  # partitions whose transaction failed: no abort
        # aiokafka's murmur2 is pure Python, about 10 us a key: a printer's partition of a
        # topic is worked out once (topics have fixed partition counts, see common.kafka.admin).
        self._partitioner = DefaultPartitioner()
        self._partition_of: dict[tuple[str, bytes], int] = {}

    async def own(self, partitions: Sequence[int]) -> dict[int, Recovered]:
        """Take these partitions: fence their previous owners, then read their committed
        states and books. Raises TransactionFailed."""
        new = [p for p in partitions if p not in self._producers]
        if not new:
            return {}
        started = time.monotonic()
        try:
            await asyncio.gather(*(self._open(p) for p in new))
            recovered = await self._load(new)
        except (KafkaError, OSError) as exc:
            raise TransactionFailed(f"cannot take partitions {new}: {exc!r}") from exc
        log.info("Recovered partitions %s: %d device states in %.1f s", new,
                 sum(len(r.states) for r in recovered.values()), time.monotonic() - started)
        return recovered

    async def release(self, partitions: Sequence[int]) -> None:
        """Close these partitions' producers; what they sent since their last commit is
        aborted (the caller committed what it wanted kept)."""
        for p in partitions:
            producer = self._producers.pop(p, None)
            if producer is None:
                continue
            if p not in self._failed:
                try:
                    await producer.abort_transaction()
                except clients.TRANSACTION_ERRORS as exc:  # Kafka away or fenced: the broker aborts it after its timeout
                    log.debug("partition %d: abort on release: %r", p, exc)
            self._failed.discard(p)
            await asyncio.gather(*self._sent.pop(p, []), return_exceptions=True)
            await producer.stop()

    async def stop(self) -> None:
        await self.release(list(self._producers))

    async def send_many(self, p: int, outputs: Sequence[Outgoing]) -> None:
        """Encode `outputs` (topic, key, (kind, record)) and send them in partition `p`'s
        transaction, in order within each topic partition, one Kafka batch per topic
        partition where they fit (aiokafka's `send` made a future and a queue entry per
        record: an output record cost as much as six heartbeats)."""
        with self._failing(p, "send"):
            producer = self._producer(p)
            batches: dict[tuple[str, int], Any] = {}  # aiokafka's BatchBuilder
            for topic, key, (kind, record) in outputs:
                cluster = self._kafka.topic(topic)
                key_bytes = key.encode()
                partition = await self._partition(producer, cluster, key_bytes)
                value = self._registry.encode(kind, record)
                batch = batches.get((cluster, partition))
                if batch is None:
                    batch = batches[(cluster, partition)] = producer.create_batch()
                if batch.append(key=key_bytes, value=value, timestamp=None, headers=self._headers) is None:
                    # Full: send it and go on in a new one (an empty batch takes any record).
                    self._sent[p].append(await producer.send_batch(batch, cluster, partition=partition))
                    batch = batches[(cluster, partition)] = producer.create_batch()
                    batch.append(key=key_bytes, value=value, timestamp=None, headers=self._headers)
            for (cluster, partition), batch in batches.items():
                self._sent[p].append(await producer.send_batch(batch, cluster, partition=partition))

    async def dead_letter(self, p: int, key: bytes | None, raw: bytes, reason: str, topic: str, partition: int,
                          offset: int, timestamp_ms: int = -1, error: str = "InvalidRecordError") -> None:
        """Send `raw` unchanged to the dead-letter topic in partition `p`'s transaction,
        with the reason and its origin (`topic`: its registry name)."""
        log.debug("dead letter from %s[%d]@%d: %s", topic, partition, offset, reason)
        origin = deadletter.Origin("worker", "apply", self._kafka.topic(topic), partition, offset, timestamp_ms)
        with self._failing(p, "send"):
            self._sent[p].append(await self._producer(p).send(self._kafka.topic(DEAD_LETTER), raw, key=key,
                                                              headers=deadletter.headers(origin, reason, error)))

    async def send_json(self, p: int, topic: str, key: str, message: dict[str, Any]) -> None:
        """A message for one of the worker's internal topics (registry name), as JSON,
        in partition `p`'s transaction."""
        cluster, key_bytes = self._kafka.topic(topic), key.encode()
        with self._failing(p, "send"):
            producer = self._producer(p)
            partition = await self._partition(producer, cluster, key_bytes)
            self._sent[p].append(
                await producer.send(cluster, json.dumps(message).encode(), key=key_bytes, partition=partition))

    async def commit(self, p: int, states: Mapping[str, bytes | None], book: bytes) -> None:
        """Write the changed `states` (None: a tombstone) and the `book` of partition `p` and commit its
        transaction with everything sent in it since the last commit; then open the next.
        Raises TransactionFailed: nothing of the transaction is in Kafka then."""
        producer = self._producer(p)
        sent = self._sent[p]
        with self._failing(p, "the transaction did not commit"):
            for device_id, value in states.items():
                sent.append(await producer.send(self._states_topic, value, key=device_id.encode(), partition=p))
            sent.append(await producer.send(self._books_topic, book, key=str(p).encode(), partition=p))
            await producer.commit_transaction()
            self._sent[p] = []
            await asyncio.gather(*sent)
            await producer.begin_transaction()

    @contextmanager
    def _failing(self, p: int, what: str) -> Iterator[None]:
        """A broken transaction of partition `p` becomes TransactionFailed, and the
        partition takes nothing more until it is released."""
        try:
            yield
        except clients.TRANSACTION_ERRORS as exc:
            self._failed.add(p)
            raise TransactionFailed(f"partition {p}: {what}: {exc!r}") from exc

    def _producer(self, p: int) -> AIOKafkaProducer:
        producer = self._producers.get(p)
        if producer is None or p in self._failed:
            raise TransactionFailed(f"partition {p} is not owned by this worker, or its transaction failed")
        return producer

    async def _partition(self, producer: AIOKafkaProducer, cluster_topic: str, key: bytes) -> int:
        partition = self._partition_of.get((cluster_topic, key))
        if partition is None:
            if len(self._partition_of) > 1_000_000:
                self._partition_of.clear()
            partitions = sorted(await producer.partitions_for(cluster_topic))
            partition = self._partition_of[(cluster_topic, key)] = self._partitioner(key, partitions, partitions)
        return partition

    async def _open(self, p: int) -> None:
        producer = clients.producer(self._kafka, transactional_id=f"{self._app_id}.partition-{p}",
                                    linger_ms=5, max_batch_size=1 << 20)
        try:
            await producer.start()  # in the try: one whose start failed still holds connections
            # Waits for the producer id: the previous owner is fenced and its last
            # transaction complete (committed or aborted) when this returns.
            await producer.begin_transaction()
        except BaseException:
            await producer.stop()
            raise
        self._producers[p] = producer
        self._sent[p] = []

    async def _load(self, partitions: Sequence[int]) -> dict[int, Recovered]:
        recovered = {p: Recovered() for p in partitions}
        tps = [TopicPartition(t, p) for p in partitions for t in (self._states_topic, self._books_topic)]
        consumer = clients.consumer(self._kafka, group_id=None, max_partition_fetch_bytes=4 << 20)
        try:
            await consumer.start()
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            end = await consumer.end_offsets(tps)  # the last stable offsets: committed data only
            while any([await consumer.position(tp) < end[tp] for tp in tps]):
                for tp, messages in (await consumer.getmany(timeout_ms=200, max_records=10_000)).items():
                    into = recovered[tp.partition]
                    for m in messages:
                        if m.offset >= end[tp] or m.key is None:
                            continue
                        if tp.topic == self._books_topic:
                            into.book = m.value
                        elif m.value is None:
                            into.states.pop(m.key.decode(), None)
                        else:
                            into.states[m.key.decode()] = m.value
        finally:
            await consumer.stop()
        return recovered
