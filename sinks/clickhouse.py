"""The ClickHouse sink: Kafka topics in, one ClickHouse table (and child tables) per kind.

    async with ClickHouseSink(settings, SchemaRegistry.load_default()) as sink:
        await sink.run(stop_event)          # until the event is set; then drains

No loss, no duplicates — the scheme, step by step for each batch of one partition
(batches: `sinks.batch`):

1. commit the batch's start offset with its end in the metadata (the *intent*), so that
   after any crash the partition's next owner cuts exactly the same batch;
2. decode and convert (`sinks.prepare`); undecodable or unstorable messages are sent to
   the dead-letter topic and acknowledged by Kafka first. Batches are decoded column by
   column into one Native block per table instead (`sinks.native_block`), unless a
   message needs the record-by-record path, which names the bad ones;
3. insert every table's rows synchronously with `insert_deduplication_token` =
   topic/partition/start-end. A batch inserted before a crash and inserted again after it
   has the same token and rows, and ClickHouse drops the repeat (tables and rollup views;
   `sinks.ddl`, `sinks.rollups`). Chosen over a "max offset already in the table" lookup
   because one batch writes to several tables and views, which no single lookup covers;
4. commit the batch's end offset. Only now is the batch done. When the partition's next
   batch is already buffered in full (a size cut), its intent goes in the same commit
   (its start is this end): step 1 of that batch is then done.

ClickHouse (or Kafka) away: a retriable error pauses every partition, the poll loop keeps
the group membership alive, and the same batches are retried after a backoff
(`common.backoff.Backoff`) until they succeed; nothing is committed meanwhile, so
nothing is lost. A non-retriable insert error (a schema drift) stops the sink: `run()`
raises, and nothing after the last committed batch is lost.

Writing (steps 1-4 for every due batch) runs as one background task beside the polls,
so Kafka fetches and the Python work overlap ClickHouse's; one write at a time keeps a
partition's batches in order, and its error is taken up by the next `step()`.

Buffers are bounded: a partition whose buffer holds `max_buffered_per_partition`
messages is paused until the sink catches up (Kafka keeps the rest).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from aiokafka.structs import OffsetAndMetadata

from common.backoff import Backoff
from common.errors import PrintfleetError
from common.kafka import admin, clients, diagnose
from common.kafka.diagnose import failure
from common.kafka.errors import KafkaUnavailable
from common.kafka.settings import KafkaSettings
from common.kafka.topics import DEAD_LETTER, pipeline_specs, topic_for
from common.ops import OpsServer, OpsSettings
from schemas import SchemaRegistry
from sinks import metrics, migrations
from sinks.batch import Batch, Batcher, intent_metadata, parse_intent
from sinks.client import ClickHouseClient
from sinks.cluster import cluster_of
from sinks.connection import ClickHouseSettings
from sinks.convert import Converter
from sinks.deadletter import DeadLetterProducer
from sinks.layout import layout
from sinks.native_block import NativeInsert, native_decoder
from sinks.prepare import Prepared, prepare, prepare_native

log = logging.getLogger(__name__)

# Messages per poll. While aiokafka holds fetched records, getmany() returns them without
# yielding to the event loop, and the write task moves on by one await between polls: a
# poll must be short (1,000 heartbeats: about 3 ms) for writing to keep pace with the
# fetch of a backlog. (With 50,000 nothing was written until a backlog was all fetched.)
FETCH_MAX_RECORDS = 1_000


@dataclass(frozen=True)
class SinkSettings:
    """Everything `printfleet sink` can be told (flags, or PRINTFLEET_SINK_<FIELD>)."""

    kafka: KafkaSettings
    clickhouse: ClickHouseSettings
    group_id: str = "printfleet-sink"  # the Kafka topic prefix goes before it
    kinds: str = ""  # comma-separated record kinds to sink; empty: every kind
    batch_max_records: int = 20_000
    batch_max_age_s: float = 2.0
    max_buffered_per_partition: int = 100_000
    max_inserts_in_flight: int = 4
    poll_timeout_s: float = 0.2
    kafka_timeout_s: float = 15.0
    retry_initial_s: float = 0.5
    retry_max_s: float = 15.0
    column_decode: bool = True  # batches decoded column by column where they can be (sinks.native_block)
    # /metrics, /livez, /readyz. -1: none (`printfleet sink` defaults to 18447,
    # printfleet/ops_flags.py); 0: any free port.
    ops_host: str = "127.0.0.1"
    ops_port: int = -1

    def kind_list(self, registry: SchemaRegistry) -> tuple[str, ...]:
        wanted = tuple(k.strip() for k in self.kinds.split(",") if k.strip())
        unknown = set(wanted) - set(registry.kinds)
        if unknown:
            raise ValueError(f"unknown record kinds: {', '.join(sorted(unknown))}")
        return wanted or tuple(sorted(registry.kinds))


@dataclass
class SinkCounters:
    records_in: int = 0
    records_stored: int = 0
    rows_inserted: int = 0  # all tables, child rows included
    rows_by_table: dict[str, int] = field(default_factory=dict)
    batches_written: int = 0
    dead_lettered: int = 0
    retries: int = 0
    commits: int = 0


@dataclass
class SinkStatus:
    """A snapshot for status lines and tests."""

    counters: SinkCounters
    lag: dict[str, int]  # topic -> messages not yet committed
    paused_for_s: float  # how long the sink has been waiting on a retry (0: running)
    last_error: str
    assigned: int


class ClickHouseSink:
    """Consumer group member that writes its partitions to ClickHouse.

    `start()` connects to ClickHouse, applies migrations, and joins the group; `run()`
    consumes until its stop event is set; `stop()` drains what is buffered (one attempt),
    commits, and leaves the group. `stop()` is idempotent and safe without `start()`.
    Raises `SinkError` and `KafkaLayerError` subclasses; retriable ones only from `start()`.
    """

    def __init__(self, settings: SinkSettings, registry: SchemaRegistry) -> None:
        self.settings = settings
        self.registry = registry
        self.counters = SinkCounters()
        kinds = settings.kind_list(registry)
        self._kind_of = {settings.kafka.topic(topic_for(k)): k for k in kinds}
        self._converters = {k: Converter(layout(registry.reader(k))) for k in kinds}
        decoders = {k: native_decoder(c.layout, registry.reader(k)) for k, c in self._converters.items()}
        self._native = {k: d for k, d in decoders.items() if d is not None and settings.column_decode}
        self.client = ClickHouseClient(settings.clickhouse)
        self.ops = OpsServer(OpsSettings(settings.ops_host, settings.ops_port), "sink")
        self.metrics = metrics.SinkMetrics(self.ops)
        self.ops.collect(lambda: metrics.counter_families(self.counters))
        self.ops.before_scrape(self._show_status)
        self.ops.check("clickhouse", self._clickhouse_ready)
        self.ops.check("kafka", functools.partial(diagnose.unreachable, settings.kafka))
        self.dead_letters = DeadLetterProducer(settings.kafka, timeout_s=settings.kafka_timeout_s)
        self._batcher = Batcher(settings.batch_max_records, settings.batch_max_age_s)
        self._backoff = Backoff(settings.retry_initial_s, settings.retry_max_s)
        self._consumer: AIOKafkaConsumer | None = None
        self._admin: AIOKafkaAdminClient | None = None
        self._prepared: dict[tuple[str, int, int, int], Prepared] = {}
        self._unresolved: set[TopicPartition] = set()
        self._full: set[TopicPartition] = set()
        self._retry_at: float | None = None
        self._paused_since: float | None = None
        self._last_error = ""
        self._inserts = asyncio.Semaphore(settings.max_inserts_in_flight)
        self._flushing: asyncio.Task[None] | None = None  # the write in flight
        self._started = False

    @property
    def topics(self) -> tuple[str, ...]:
        return tuple(self._kind_of)

    # -- lifecycle ----------------------------------------------------------------------

    async def __aenter__(self) -> ClickHouseSink:
        try:
            await self.start()
        except BaseException:
            await self.stop()  # what started before the failure (the ClickHouse client)
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def migrate(self) -> list[str]:
        """Connect (creating the database if missing) and apply pending migrations;
        returns their ids. The sink's `start()` calls it; so does `--migrate-only`.
        Raises `ClickHouseUnavailable`, `ClickHouseAccessDenied`, `MigrationError`."""
        cluster = cluster_of(self.settings.clickhouse)
        await self.client.start(create_database=True)
        return await migrations.migrate(self.client, migrations.plan(self.registry, cluster), cluster)

    async def start(self) -> None:
        """Connect, migrate, join the group. Raises `ClickHouseUnavailable`,
        `MigrationError`, `KafkaUnavailable`."""
        if self._started:
            return
        await self.ops.start()  # first: live (and saying what is missing) while it connects
        applied = await self.migrate()
        if applied:
            log.info("event=migrated database=%s applied=%s", self.settings.clickhouse.database, ",".join(applied))
        s = self.settings
        # Its topics exist before it joins: a group formed before a topic exists leaves
        # that topic unassigned until the next metadata refresh.
        read = [*(topic_for(k) for k in self._converters), DEAD_LETTER]
        await admin.apply(s.kafka, pipeline_specs(read), wait_s=s.kafka_timeout_s)
        await self.dead_letters.start()
        self._admin = clients.admin_client(s.kafka)
        consumer = clients.consumer(
            s.kafka, group_id=s.group_id,
            auto_offset_reset="earliest", isolation_level="read_committed",
            max_partition_fetch_bytes=8 << 20, fetch_max_bytes=64 << 20,
            metadata_max_age_ms=30_000,
        )
        try:
            await self._admin.start()
            await consumer.start()
        except (KafkaError, OSError) as exc:
            await consumer.stop()
            raise await failure(s.kafka, exc, "sink consumer") from exc
        consumer.subscribe(list(self.topics), listener=_Listener(self))
        self._consumer = consumer
        self._started = True
        log.info("event=sink_started topics=%d group=%s database=%s", len(self.topics), s.kafka.group(s.group_id),
                 s.clickhouse.database)

    async def stop(self) -> None:
        """Drain (one attempt: what fails stays uncommitted and is re-read later), commit,
        leave the group, close. Idempotent."""
        consumer = self._consumer
        try:
            flushing, self._flushing = self._flushing, None
            if flushing is not None:
                try:
                    await flushing
                except PrintfleetError as exc:
                    log.warning("event=write_failed_at_stop error=%s (uncommitted batches are re-read later)", exc)
                    self._retry_at = self._retry_at or time.monotonic()
            if consumer is not None and self._retry_at is None:
                try:
                    await self._flush(drain=True)
                except PrintfleetError as exc:
                    log.warning("event=drain_failed error=%s (uncommitted batches are re-read later)", exc)
        finally:
            self._consumer = None
            if consumer is not None:
                await consumer.stop()
            admin, self._admin = self._admin, None
            if admin is not None:
                await admin.close()
            await self.dead_letters.stop()
            await self.client.close()
            await self.ops.stop()
        self._started = False

    # -- the loop -----------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Consume, batch, write and commit until `stop` is set. Raises a non-retriable
        `SinkError` (e.g. `ClickHouseRejected`) or `KafkaLayerError`; retriable ones are waited out."""
        while not stop.is_set():
            await self.step()

    async def step(self) -> None:
        """One poll and whatever writing it makes due (tests drive the sink with it)."""
        consumer = self._require()
        if self._unresolved:
            await self._resolve_offsets(consumer)
        now = time.monotonic()
        if self._retry_at is not None and now < self._retry_at:
            # Paused: polling keeps the group membership alive, returns nothing.
            await consumer.getmany(timeout_ms=int(min(self._retry_at - now, 0.5) * 1000))
            return
        # While a write is in flight, poll briefly so its end is noticed at once.
        timeout_s = 0.01 if self._flushing is not None else self.settings.poll_timeout_s
        data = await consumer.getmany(timeout_ms=int(timeout_s * 1000), max_records=FETCH_MAX_RECORDS)
        now = time.monotonic()
        for tp, messages in data.items():
            self.counters.records_in += self._batcher.add(tp, messages, now)
            if self._batcher.buffered(tp) >= self.settings.max_buffered_per_partition and tp not in self._full:
                consumer.pause(tp)
                self._full.add(tp)
        flushing = self._flushing
        if flushing is not None:
            if not flushing.done():
                await asyncio.sleep(0)  # the write's turn (see FETCH_MAX_RECORDS)
                return
            self._flushing = None
            try:
                flushing.result()
            except PrintfleetError as exc:
                if not exc.retriable:
                    raise
                self._wait(consumer, exc)
                return
            self._written(consumer, now)
        # Writing (prepare, insert, commit) runs beside the next polls: Kafka fetches and
        # Python work overlap ClickHouse's. One write at a time keeps batches in order.
        self._flushing = asyncio.create_task(self._flush())

    def _written(self, consumer: AIOKafkaConsumer, now: float) -> None:
        """After a write succeeded: leave a pause, resume partitions that were full."""
        if self._retry_at is not None:
            log.info("event=sink_resumed after_s=%.1f", time.monotonic() - (self._paused_since or now))
            self._retry_at = self._paused_since = None
            self._last_error = ""
            self._backoff.reset()
            consumer.resume(*[tp for tp in consumer.assignment() if tp not in self._unresolved])
        for tp in list(self._full):
            if self._batcher.buffered(tp) < self.settings.max_buffered_per_partition // 2:
                self._full.discard(tp)
                if tp in consumer.assignment():
                    consumer.resume(tp)

    def _wait(self, consumer: AIOKafkaConsumer, exc: PrintfleetError) -> None:
        retry_after = getattr(exc, "retry_after", None)
        delay = float(retry_after) if retry_after else self._backoff.next_delay()
        now = time.monotonic()
        self.counters.retries += 1
        self._retry_at = now + delay
        if self._paused_since is None:
            self._paused_since = now
        self._last_error = str(exc)
        consumer.pause(*consumer.assignment())
        log.warning("event=sink_paused retry_in_s=%.1f error=%s", delay, exc)

    def _require(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            raise RuntimeError("ClickHouseSink used before start() or after stop()")
        return self._consumer

    # -- writing ------------------------------------------------------------------------

    async def _flush(self, *, drain: bool = False) -> None:
        """Write every batch that is due, round after round (a poll can fill several
        batches of one partition). Raises what writing raises."""
        while await self._flush_round(drain):
            pass

    async def _flush_round(self, drain: bool) -> bool:
        consumer = self._require()
        assigned = consumer.assignment()
        positions = {}
        for tp in self._batcher.assigned:
            if tp in assigned and tp not in self._unresolved:
                try:
                    positions[tp] = await consumer.position(tp)
                except KafkaError:
                    pass
        batches = self._batcher.ready(time.monotonic(), positions, drain=drain)
        if not batches:
            return False
        tps = {id(b): TopicPartition(b.topic, b.partition) for b in batches}
        intents = {tps[id(b)]: OffsetAndMetadata(b.start, intent_metadata(b.end))
                   for b in batches if self._batcher.intent_needed(b, tps[id(b)])}
        if intents:
            await self._commit(consumer, intents)
            for b in batches:
                self._batcher.intent_written(b, tps[id(b)])
        # A batch's inserts start as soon as it is prepared, so that ClickHouse stores one
        # batch while this process decodes the next (preparing is CPU here, inserting
        # is the server's). A batch's dead letters still go, acknowledged, before its rows.
        prepared: list[Prepared] = []
        inserts: list[asyncio.Future[None]] = []
        try:
            for b in batches:
                p = self._prepare(b)
                prepared.append(p)
                if not p.dead_sent:
                    if p.dead:
                        await self.dead_letters.send(p.dead)
                        self.counters.dead_lettered += len(p.dead)
                    p.dead_sent = True
                inserts += [asyncio.ensure_future(self._insert_native(p, n)) for n in p.native or () if n.table not in p.inserted]
                inserts += [asyncio.ensure_future(self._insert(p, t)) for t in p.tables if t.table not in p.inserted]
                await asyncio.sleep(0)  # the inserts' requests go out before the next batch is decoded
        except BaseException:
            await asyncio.gather(*inserts, return_exceptions=True)
            raise
        await asyncio.gather(*inserts)
        # The end of each batch, and the intents of the next batches that are buffered in
        # full already (a partition's next one starts at the end committed here): one
        # commit to the broker a round instead of one for the ends and one for intents.
        intents_next = self._batcher.full_intents()
        ends = {tps[id(b)]: OffsetAndMetadata(b.end, "") for b in batches}
        for tp, (start, end) in intents_next.items():
            ends[tp] = OffsetAndMetadata(start, intent_metadata(end))
        await self._commit(consumer, ends)
        finished = set(tps.values())
        for tp, (_, end) in intents_next.items():
            if tp not in finished:
                self._batcher.intend(tp, end)
        for p in prepared:
            b = p.batch
            self._prepared.pop(_key(b), None)
            following = intents_next.get(tps[id(b)])
            if self._batcher.done(b, tps[id(b)], next_intent=following[1] if following else None):
                self.counters.batches_written += 1
                self.counters.records_stored += p.records
        return True

    def _prepare(self, batch: Batch) -> Prepared:
        key = _key(batch)
        done = self._prepared.get(key)
        if done is None:
            kind = self._kind_of[batch.topic]
            decoder = self._native.get(kind)
            if decoder is not None:
                done = prepare_native(batch, decoder)
            if done is None:
                done = prepare(batch, kind, self.registry, self._converters[kind])
            self._prepared[key] = done
        return done

    async def _insert_native(self, p: Prepared, native: NativeInsert) -> None:
        async with self._inserts:
            with self.metrics.insert_seconds.labels(native.table).time():
                await self.client.insert_native(native, p.batch.token)
        p.inserted.add(native.table)
        self._count_rows(native.table, native.rows)

    async def _insert(self, p: Prepared, table: Any) -> None:
        async with self._inserts:
            with self.metrics.insert_seconds.labels(table.table).time():
                await self.client.insert_columns(table.table, table.names, table.types, table.columns, p.batch.token)
        p.inserted.add(table.table)
        self._count_rows(table.table, table.rows)

    def _count_rows(self, table: str, rows: int) -> None:
        self.counters.rows_inserted += rows
        self.counters.rows_by_table[table] = self.counters.rows_by_table.get(table, 0) + rows

    async def _commit(self, consumer: AIOKafkaConsumer, offsets: dict[TopicPartition, OffsetAndMetadata]) -> None:
        assigned = consumer.assignment()
        mine = {tp: o for tp, o in offsets.items() if tp in assigned}
        if not mine:
            return
        try:
            await consumer.commit(mine)
        except (KafkaError, OSError) as exc:
            # Includes CommitFailedError after a rebalance: the partitions' new owner
            # repeats the batch from the last intent, and deduplication absorbs it.
            raise await failure(self.settings.kafka, exc, "commit") from exc
        self.counters.commits += 1

    # -- assignment ---------------------------------------------------------------------

    def _assigned(self, partitions: set[TopicPartition]) -> None:
        consumer = self._require()
        fresh = {tp for tp in partitions if tp not in self._batcher.assigned}
        if fresh:
            consumer.pause(*fresh)
            self._unresolved |= fresh

    def _revoked(self, partitions: set[TopicPartition]) -> None:
        for tp in partitions:
            self._batcher.revoke(tp)
            self._unresolved.discard(tp)
            self._full.discard(tp)
        gone = {(tp.topic, tp.partition) for tp in partitions}
        for key in [k for k in self._prepared if (k[0], k[1]) in gone]:
            del self._prepared[key]

    async def _resolve_offsets(self, consumer: AIOKafkaConsumer) -> None:
        """Read committed offsets and intents of newly assigned partitions, then let them
        be fetched. Until this succeeds they stay paused."""
        assert self._admin is not None
        wanted = [tp for tp in self._unresolved if tp in consumer.assignment()]
        self._unresolved &= set(wanted)
        if not wanted:
            return
        try:
            found = await asyncio.wait_for(
                self._admin.list_consumer_group_offsets(self.settings.kafka.group(self.settings.group_id), partitions=wanted),
                self.settings.kafka_timeout_s,
            )
        except (KafkaError, OSError, asyncio.TimeoutError) as exc:
            log.warning("event=offsets_unavailable partitions=%d error=%r", len(wanted), exc)
            await asyncio.sleep(self._backoff.next_delay())
            return
        for tp in wanted:
            meta = found.get(tp)
            committed = meta.offset if meta is not None and meta.offset >= 0 else None
            intent = parse_intent(meta.metadata, committed) if meta is not None and committed is not None else None
            self._batcher.assign(tp, committed, intent)
            if committed is not None:
                consumer.seek(tp, committed)
            if intent is not None:
                log.info("event=batch_intent_found topic=%s partition=%d start=%d end=%d", tp.topic, tp.partition, committed, intent)
            self._unresolved.discard(tp)
            if self._retry_at is None:
                consumer.resume(tp)

    # -- status -------------------------------------------------------------------------

    async def status(self) -> SinkStatus:
        """Counters, and lag per topic from the brokers' end offsets (0 when Kafka does
        not answer in time)."""
        lag: dict[str, int] = defaultdict(int)
        consumer = self._consumer
        if consumer is not None:
            tps = list(consumer.assignment())
            try:
                ends = await asyncio.wait_for(consumer.end_offsets(tps), 5.0) if tps else {}
            except (KafkaError, OSError, asyncio.TimeoutError):
                ends = {}
            for tp, end in ends.items():
                # Fetched records not written yet, and what is not fetched: the consumer's
                # position skips the transaction markers an offset count would include.
                try:
                    position = await consumer.position(tp)
                except (KafkaError, OSError, AssertionError):  # revoked meanwhile
                    continue
                lag[tp.topic] += self._batcher.unwritten(tp) + max(0, end - position)
        paused = time.monotonic() - self._paused_since if self._paused_since is not None else 0.0
        return SinkStatus(self.counters, dict(lag), paused, self._last_error, len(self._batcher.assigned))


    async def _show_status(self) -> None:
        self.metrics.show(await self.status())

    async def _clickhouse_ready(self) -> str | None:
        if await self.client.ping():
            return None
        return f"no answer to ping at {self.settings.clickhouse.url}"


def _key(batch: Batch) -> tuple[str, int, int, int]:
    return (batch.topic, batch.partition, batch.start, batch.end)


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    """Revoked partitions are forgotten (uncommitted batches are their next owner's);
    assigned ones wait paused until their committed offset and intent are read."""

    def __init__(self, sink: ClickHouseSink) -> None:
        self._sink = sink

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        self._sink._revoked(set(revoked))

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        self._sink._assigned(set(assigned))
