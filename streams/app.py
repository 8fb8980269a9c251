"""The Faust app: the group, the ticks and the timers of a stream worker.

    worker = create_app(WorkerSettings(kafka=...))
    await admin.apply(settings.kafka, worker.topics)     # before Faust's consumer joins
    faust.Worker(worker.app).execute_from_commandline()

Faust runs the group and the timers; the telemetry and the roll-up topics are read by a
`TelemetryReader` (a plain aiokafka consumer, ten times cheaper per record than a Faust
stream) and handed in batches to `DeviceAgent`. Which partitions a worker reads follows
Faust's assignment of an internal ticks topic that is co-partitioned with the telemetry
(all keyed topics have the same partition count, so a printer's records and its state
meet on one worker, and so do a site's windows and its roll-up). A leader timer sends a
tick to every partition of that topic, so the owner of a partition also gets its ticks:
offline detection and window closing run even when no record arrives.
Outputs: fleet.state (compacted), alerts, aggregates.utilisation (per printer and per
site), aggregates.benchmark, advisories, all Avro; records that cannot be applied go to
the dead-letter topic. Per partition, the outputs, states and books go to Kafka in one
transaction per checkpoint (`streams.partition_transactions`): exactly once for readers
of committed data.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections.abc import Sequence
from typing import Any, NamedTuple

import faust

from common.kafka import clients, diagnose
from common.kafka.topics import PARTITIONS, TopicSpec, pipeline_topics, worker_internal, worker_topics
from common.ops import OpsServer, OpsSettings
from schemas import SchemaRegistry
from streams import catalogue, metrics
from streams.advisories import Release
from streams.anonymous_benchmark import BenchmarkSettings
from streams.device_agent import DeviceAgent, RollupTopics
from streams.partition_transactions import PartitionTransactions
from streams.telemetry_reader import TelemetryReader
from streams.worker_settings import WorkerSettings


class WorkerApp(NamedTuple):
    app: faust.App
    # Every topic it reads or writes, from the registry: create them first
    # (`common.kafka.admin.apply`). `declared` are the names Faust was told, for the check
    # that they are all in the registry.
    topics: tuple[TopicSpec, ...]
    declared: dict[str, faust.TopicT]
    ops: OpsServer  # /metrics, /livez, /readyz: served by a task of the app when its port is >= 0


def create_app(settings: WorkerSettings, registry: SchemaRegistry | None = None) -> WorkerApp:
    registry = registry or SchemaRegistry.load_default()
    kafka = settings.kafka
    app_id = kafka.group(settings.app_id)  # Faust names its own topics after it
    app = faust.App(
        app_id,
        **clients.faust_options(kafka),
        datadir=str(settings.data_dir),
        topic_partitions=PARTITIONS,
        consumer_auto_offset_reset="earliest",  # its own topics only; the telemetry: see TelemetryReader
        web_enabled=settings.web_port > 0,
        web_port=settings.web_port or 6066,
        web_host="127.0.0.1",
        broker_session_timeout=settings.session_timeout_s,
        broker_heartbeat_interval=min(3.0, settings.session_timeout_s / 3),
    )
    # The telemetry and the roll-up topics are read by the TelemetryReader, everything the
    # agent makes is written by the partition transactions: Faust runs the group (through
    # the ticks topic), the timers and the catalogue task.
    ticks_name, windows_topic, cohorts_topic = worker_internal(settings.app_id)
    ticks = app.topic(kafka.topic(ticks_name), value_serializer="json", internal=True)
    provenance = [("app_id", app_id.encode())]  # which pipeline made a record
    transactions = PartitionTransactions(kafka, registry, provenance, app_id=settings.app_id)
    reader = TelemetryReader(kafka, registry, start_at=settings.start_at, json_topics=(windows_topic, cohorts_topic),
                             batch_max=settings.batch_max, batch_within_s=settings.batch_within_s)
    ops = OpsServer(OpsSettings(settings.ops_host, settings.ops_port), "worker")
    worker_metrics = metrics.WorkerMetrics(ops, reader)
    agent = DeviceAgent(settings.device(), transactions, checkpoint_every_s=settings.checkpoint_every_s,
                        rollups=RollupTopics(windows_topic, cohorts_topic,
                                             BenchmarkSettings(min_sites=settings.benchmark_min_sites)),
                        timed=worker_metrics.checkpoint_seconds.observe)
    ops.collect(lambda: metrics.counter_families(agent.counters, reader))
    ops.check("kafka", functools.partial(diagnose.unreachable, kafka))
    ops.check("consumer", functools.partial(metrics.consumer_reason, reader))

    async def serve_ops() -> None:
        if not ops.settings.enabled:
            return
        async with ops:  # stopped when Faust cancels its tasks at shutdown
            print(f"worker metrics {ops.url}/metrics, health {ops.url}/readyz", flush=True)
            await asyncio.Event().wait()

    app.task(serve_ops)

    async def read_telemetry() -> None:
        await reader.run(agent.handle, agent.began)

    app.task(read_telemetry)

    @app.agent(ticks, name="printfleet-ticks")
    async def device_ticks(stream: faust.StreamT[Any]) -> None:
        async for event in stream.events():
            await agent.tick(event.message.partition, int(event.value["wall_ms"]))

    async def send_ticks() -> None:
        wall_ms = int(time.time() * 1000)
        for p in range(PARTITIONS):
            await ticks.send(value={"wall_ms": wall_ms}, partition=p)

    app.timer(settings.tick_every_s, on_leader=True)(send_ticks)

    async def drop_monitor() -> None:
        if not settings.web_port:
            # Faust's Monitor keeps per-event statistics for its web view; with the view off
            # it only costs: a quarter of Faust's time per message, measured here.
            with contextlib.suppress(KeyError):  # not added (yet): nothing to save
                app.sensors.remove(app.monitor)

    app.task(drop_monitor)

    async def on_revoked(sender: Any, *args: Any, signal: Any, **kwargs: Any) -> None:
        revoked = args[0] if args else kwargs.get("revoked", ())
        reader.assign({})
        await agent.checkpoint_all()  # the next owner starts from these commits
        await agent.forget(sorted({tp.partition for tp in revoked}))

    async def on_recovered(sender: Any, *args: Any, signal: Any, **kwargs: Any) -> None:
        # Read what the ticks say we own (the agent recovers the partitions' states first).
        owned = sorted({tp.partition for tp in app.consumer.assignment() if tp.topic == ticks.get_topic_name()})
        reader.assign(await agent.own(owned))

    async def on_shutdown(sender: Any, *args: Any, signal: Any, **kwargs: Any) -> None:
        # Faust stops its consumer, then sends this, then flushes and stops its producer:
        # the last moment the reader can stop and the state be committed with its outputs.
        await reader.stop()
        await agent.checkpoint_all()
        await transactions.stop()

    # type: ignore: faust's stubs want sync receivers
    app.on_partitions_revoked.connect(on_revoked)  # type: ignore[arg-type]
    app.on_rebalance_complete.connect(on_recovered)  # type: ignore[arg-type]
    app.on_before_shutdown.connect(on_shutdown)  # type: ignore[arg-type]

    if settings.release_key_file is not None:
        key = catalogue.load_public_key(settings.release_key_file)

        def on_catalogue(entries: Sequence[Release]) -> None:
            agent.set_catalogue(entries, key)

        async def follow_catalogue() -> None:
            await catalogue.follow(kafka, on_catalogue)

        app.task(follow_catalogue)

    async def status_line() -> None:
        c = agent.counters
        print(f"worker: applied {c.applied} records, {c.outputs} outputs, repeats {c.repeats}, "
              f"missing {reader.missing}, dead letters {c.dead_letters} (late {c.late}), checkpoints {c.checkpoints}, "
              f"lag {await reader.lag()}", flush=True)

    app.timer(settings.status_every_s)(status_line)
    declared = {name: ticks for name in ticks.topics}
    return WorkerApp(app, (*pipeline_topics(), *worker_topics(settings.app_id)), declared, ops)

