"""Reads the telemetry partitions a worker owns with a plain aiokafka consumer, in batches.

Why not a Faust agent: Faust's stream machinery costs about 150-200 us of CPU per message
on this project's machines (docs/streams-bench.md), ten times a batch read and decode, and
it can skip records while tables recover (docs/findings.md). So Faust keeps what it does
well (the group, the tables and their recovery, the timers) and the worker reads its
telemetry itself: partitions are assigned by hand, each starting at the next offset its
partition book says was applied, and decoded a topic's batch at a time. Offsets are never
committed to Kafka: the books, checkpointed with the state, are the only position.
Topics are named as in the registry on both sides of this class (`assign`, `Input`,
`began`); the Kafka topic prefix is added and removed here. Besides the telemetry it
reads the worker's roll-up topics (`json_topics`, JSON), partitioned the same way.
Everything is read committed: the gateway and the worker write in transactions.
Records are handed over in upload order across topics (`streams.upload_order`): in a
backlog, a printer's records of one hour come together whatever their topic.
"""

from __future__ import annotations

import asyncio
import heapq
import json
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, NamedTuple

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from common.kafka import clients
from common.kafka.settings import KafkaSettings
from common.kafka.topics import TELEMETRY_PREFIX
from schemas import SchemaError, SchemaRegistry
from streams.decoding import Undecodable, decode
from streams.upload_order import UploadOrder

log = logging.getLogger(__name__)


class Record(NamedTuple):
    kind: str
    record: dict[str, Any]


class Input(NamedTuple):
    """One telemetry message: where it came from, its bytes, and what it decoded to."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    raw: bytes
    value: Record | Undecodable
    timestamp: int = -1  # the message's Kafka timestamp, ms (for its dead letter)


Handle = Callable[[Sequence[Input]], Awaitable[None]]
Began = Callable[[Mapping[TopicPartition, int]], Awaitable[None]]


class TelemetryReader:
    def __init__(
        self, kafka: KafkaSettings, registry: SchemaRegistry, *, start_at: str, batch_max: int, batch_within_s: float,
        json_topics: Sequence[str] = (),
    ) -> None:
        """`start_at` ("earliest" or "latest") is where a partition without a book starts;
        `json_topics` (registry names) carry JSON objects, decoded as `Record("json", ...)`."""
        self._kafka, self._start_at = kafka, start_at
        self._json_topics = frozenset(json_topics)
        self._batch_max, self._batch_within_ms = batch_max, max(1, int(batch_within_s * 1000))
        self._registry = registry
        self._consumer: AIOKafkaConsumer | None = None
        self._wanted: dict[TopicPartition, int | None] | None = None  # set by assign(), applied by run()
        self._assigned = asyncio.Event()
        self._next: dict[TopicPartition, int] = {}  # next offset to hand over, per partition read
        self._order = UploadOrder(max_buffered=2 * batch_max)
        self.missing = 0  # records deleted by retention before they were applied (at most)
        self._paused: set[TopicPartition] = set()
        self._stopping = False
        self._stopped = asyncio.Event()

    def assign(self, starts: Mapping[TopicPartition, int | None]) -> None:
        """Read exactly these partitions from now on, each from its offset (None: from
        `start_at`). Takes effect before the next fetch; records already fetched for a
        partition no longer wanted are the caller's to drop."""
        self._wanted = dict(starts)
        self._assigned.set()

    @property
    def running(self) -> bool:
        """Its consumer is started (and not stopped yet)."""
        return self._consumer is not None

    async def lag(self) -> int | None:
        """Records in the assigned partitions not handed over yet, as of the last fetch
        (None while unknown: nothing assigned, or a partition not fetched yet): those
        fetched and held, and those not fetched (the consumer's position skips the
        transaction markers an offset count would include)."""
        by_topic = await self.lag_by_topic()
        return None if by_topic is None else sum(by_topic.values())

    async def lag_by_topic(self) -> dict[str, int] | None:
        """`lag()` per topic (the cluster's names, with the topic prefix)."""
        consumer = self._consumer
        if consumer is None or not self._next:
            return None
        lag: dict[str, int] = {}
        for tp in list(self._next):
            end: int | None = consumer.last_stable_offset(tp)
            if end is None:
                return None
            try:
                position = await consumer.position(tp)
            except (KafkaError, AssertionError):  # no longer assigned
                continue
            lag[tp.topic] = lag.get(tp.topic, 0) + self._order.held(tp) + max(0, end - position)
        return lag

    async def stop(self) -> None:
        """Stop reading once the batch being handled is done (a batch cut short would
        leave states ahead of their outputs) and wait for that."""
        self._stopping = True
        self._assigned.set()
        await self._stopped.wait()

    async def run(self, handle: Handle, began: Began | None = None) -> None:
        """Fetch and hand batches to `handle` until `stop()`. `handle` is awaited before
        the next fetch, so a slow consumer of batches slows the reading, never the other
        way round. `began` hears, after each assignment and before anything of it is
        read, the offsets where partitions without a position began (`start_at`)."""
        if self._stopping:
            self._stopped.set()
            return
        consumer = clients.consumer(
            self._kafka, group_id=None,
            # Only where a position lost to retention restarts: the oldest record left.
            auto_offset_reset="earliest",
            # Room in one fetch for every partition a worker can own (10 topics x 6): the
            # broker fills a response partition by partition, in the request's order, so
            # with less room the first partitions' backlogs would starve the others (a
            # printer's identity waited behind its heartbeats until they were all read).
            max_partition_fetch_bytes=512 << 10, fetch_max_bytes=32 << 20,
        )
        try:
            await consumer.start()
            self._consumer = consumer
            await self._assigned.wait()
            while not self._stopping:
                if self._wanted is not None:
                    # Taken before applying: an assignment made meanwhile is the next one.
                    wanted, self._wanted = self._wanted, None
                    fresh = await self._apply(consumer, wanted)
                    if fresh and began is not None:
                        await began(fresh)
                    _log_assignment(wanted)
                if not consumer.assignment():
                    self._assigned.clear()
                    await self._assigned.wait()
                    continue
                fetched = await consumer.getmany(timeout_ms=self._batch_within_ms, max_records=self._batch_max)
                for tp, messages in fetched.items():
                    self._order.add(tp, messages)
                self._pace(consumer)
                released = self._order.release(consumer.assignment(), await self._behind(consumer))
                if released:
                    for tp, messages in released.items():
                        self._next[tp] = messages[-1].offset + 1
                    inputs = _in_upload_order(self._decode(released))
                    for at in range(0, len(inputs), self._batch_max):
                        await handle(inputs[at:at + self._batch_max])
                # A fetch from a full buffer and a batch without outputs never suspend: let
                # the timers and the other agents run between batches of a backlog.
                await asyncio.sleep(0)
        finally:
            self._consumer = None
            await consumer.stop()
            self._stopped.set()

    async def _behind(self, consumer: AIOKafkaConsumer) -> dict[TopicPartition, bool]:
        """Per assigned topic partition: are there committed records not fetched yet
        (True too while that is not known)?"""
        behind = {}
        for tp in consumer.assignment():
            stable = consumer.last_stable_offset(tp)
            behind[tp] = stable is None or await consumer.position(tp) < stable
        return behind

    def _pace(self, consumer: AIOKafkaConsumer) -> None:
        """Pause fetching topic partitions whose buffers are full, resume drained ones."""
        full = set(self._order.too_full())
        if full - self._paused:
            consumer.pause(*(full - self._paused))
        drained = self._paused - full
        if drained:
            consumer.resume(*drained)
        self._paused = full

    async def _apply(
        self, consumer: AIOKafkaConsumer, starts: Mapping[TopicPartition, int | None]
    ) -> dict[TopicPartition, int]:
        """Read `starts` from their offsets; returns where those without one began.
        What was fetched but not handed over is dropped and read again."""
        starts = {self._on_cluster(tp): offset for tp, offset in starts.items()}
        self._order.forget()
        if self._paused:
            consumer.resume(*(self._paused & consumer.assignment()))
            self._paused = set()
        consumer.assign(list(starts))
        reading, self._next = self._next, {}
        fresh = {}
        await self._count_missing(consumer, starts)
        for tp, offset in starts.items():
            if offset is None and tp in reading:
                # Kept through a rebalance with nothing applied yet: go on from where this
                # reader got to. `start_at` again would skip what came in meanwhile.
                offset = reading[tp]
            if offset is not None:
                consumer.seek(tp, offset)
                self._next[tp] = offset
                continue
            if self._start_at == "latest":
                await consumer.seek_to_end(tp)
            else:
                await consumer.seek_to_beginning(tp)
            self._next[tp] = await consumer.position(tp)
            fresh[TopicPartition(self._in_registry(tp.topic), tp.partition)] = self._next[tp]
        return fresh

    async def _count_missing(self, consumer: AIOKafkaConsumer, starts: Mapping[TopicPartition, int | None]) -> None:
        """Where a book's position is below the oldest record Kafka still has, retention
        deleted records before they were applied: say so (the count includes the offsets
        of transaction markers, so it is at most that many records)."""
        known = [tp for tp, offset in starts.items() if offset is not None]
        if not known:
            return
        oldest = await consumer.beginning_offsets(known)
        for tp in known:
            start = starts[tp]
            assert start is not None
            if oldest[tp] > start:
                self.missing += oldest[tp] - start
                log.warning("%s[%d]: offsets %d..%d are no longer in Kafka (retention); they were never applied",
                            tp.topic, tp.partition, start, oldest[tp] - 1)

    def _on_cluster(self, tp: TopicPartition) -> TopicPartition:
        return TopicPartition(self._kafka.topic(tp.topic), tp.partition)

    def _in_registry(self, topic: str) -> str:
        return topic.removeprefix(self._kafka.topic_prefix)

    def _decode(self, fetched: Mapping[TopicPartition, Sequence[Any]]) -> list[Input]:
        """The fetched messages as inputs, a topic at a time across its partitions (a
        large batch decodes cheaper per message, see `schemas.columns`)."""
        new = tuple.__new__  # builds a NamedTuple without its Python-level __new__: a third of the cost
        by_topic: dict[str, list[TopicPartition]] = {}
        for tp in fetched:
            by_topic.setdefault(self._in_registry(tp.topic), []).append(tp)
        inputs: list[Input] = []
        for topic in by_topic:
            kind = topic.removeprefix(TELEMETRY_PREFIX)
            parts = [(tp.partition, fetched[tp]) for tp in by_topic[topic]]
            raw = [m.value for _, messages in parts for m in messages]
            if topic in self._json_topics:
                values = [_json(r) for r in raw]
            else:
                try:  # nearly always one writer schema, all good
                    records = self._registry.decode_records(kind, raw)
                except SchemaError:  # one is not: each on its own, the bad ones get their reason
                    values = [_plain(decode(self._registry, r)) for r in raw]
                else:
                    values = [new(Record, (kind, r)) for r in records]
            # A partition's messages at a time: no (partition, message) pair per message.
            at = 0
            for p, messages in parts:
                inputs += [new(Input, (topic, p, m.offset, m.key, m.value, v, m.timestamp))
                           for m, v in zip(messages, values[at:at + len(messages)])]
                at += len(messages)
        return inputs


def _log_assignment(starts: Mapping[TopicPartition, int | None]) -> None:
    partitions = sorted({tp.partition for tp in starts})
    if partitions:  # the tests and the bench wait for this line after a rebalance
        log.info("Reading telemetry partitions %s (%d topic partitions)", partitions, len(starts))
    else:
        log.info("Telemetry reading paused: no partitions assigned")


def _in_upload_order(inputs: list[Input]) -> list[Input]:
    """Topic partitions' inputs merged by (Kafka timestamp, event time), each partition's
    in its offset order: upload order across topics, event time within an upload."""
    runs: dict[tuple[str, int], list[Input]] = {}
    for i in inputs:
        runs.setdefault((i.topic, i.partition), []).append(i)
    if len(runs) < 2:
        return inputs
    return list(heapq.merge(*runs.values(), key=_upload_key))


def _upload_key(i: Input) -> tuple[int, int]:
    value = i.value
    at = value.record.get("event_time", 0) if isinstance(value, Record) else 0
    return i.timestamp, at if isinstance(at, int) else 0


def _json(raw: bytes | None) -> Record | Undecodable:
    try:
        value = json.loads(raw or b"")
    except ValueError as exc:
        return Undecodable(raw or b"", f"not JSON: {exc}")
    return Record("json", value) if isinstance(value, dict) else Undecodable(raw or b"", "not a JSON object")


def _plain(decoded: Any) -> Record | Undecodable:
    return decoded if isinstance(decoded, Undecodable) else Record(decoded.kind, decoded.record)
