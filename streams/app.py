"""The Faust app: topics, tables, agents and timers of a stream worker.

    worker = create_app(WorkerSettings(kafka=...))
    await admin.apply(settings.kafka, worker.topics)     # before Faust's consumer joins
    faust.Worker(worker.app).execute_from_commandline()

Faust runs the group, the tables and the timers; the telemetry itself is read by a
`TelemetryReader` (a plain aiokafka consumer, ten times cheaper per record than a Faust
stream) and handed in batches to `DeviceAgent`. Which telemetry partitions a worker reads
follows Faust's assignment of an internal ticks topic that is co-partitioned with the
telemetry (all keyed by device, all with the same partition count, so a printer's records
and its state meet on one worker). A leader timer sends a tick to every partition of that
topic, so the owner of a partition also gets its ticks: offline detection and window
closing run even when no record arrives.
Outputs: fleet.state (compacted), alerts, aggregates.utilisation, advisories, all Avro
through the codec; records that cannot be applied go to the dead-letter topic. The device
agent's outputs, states and books go to Kafka in one transaction per partition and
checkpoint (`streams.partition_transactions`): exactly once for readers of committed data.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from typing import Any, NamedTuple

import faust

from common.kafka import clients
from common.kafka.topics import PARTITIONS, SITE_UTILISATION, TopicSpec, pipeline_topics, topic_for, worker_topics
from schemas import SchemaRegistry
from streams import anonymous_benchmark as benchmarks
from streams import catalogue, site_rollup
from streams.advisories import Release
from streams.anonymous_benchmark import BenchmarkSettings, Cohort
from streams.site_rollup import SiteUtilisation, SiteWindows
from streams.device_agent import DeviceAgent
from streams.faust_codec import CODEC_NAME, install
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


def create_app(settings: WorkerSettings, registry: SchemaRegistry | None = None) -> WorkerApp:
    registry = registry or SchemaRegistry.load_default()
    install(registry)
    kafka = settings.kafka
    app_id = kafka.group(settings.app_id)  # Faust names its own topics after it
    app = faust.App(
        app_id,
        **clients.faust_options(kafka),
        store="memory://",  # state comes back from the changelog topics after a restart
        datadir=str(settings.data_dir),
        topic_partitions=PARTITIONS,
        table_standby_replicas=0,  # one small machine: a standby would double the memory
        consumer_auto_offset_reset="earliest",  # its own topics only; the telemetry: see TelemetryReader
        web_enabled=settings.web_port > 0,
        web_port=settings.web_port or 6066,
        web_host="127.0.0.1",
        broker_session_timeout=settings.session_timeout_s,
        broker_heartbeat_interval=min(3.0, settings.session_timeout_s / 3),
    )
    # The telemetry is read by the TelemetryReader, the device outputs written by the
    # partition transactions: Faust is told only of the topics it sends to or reads itself.
    benchmark_out = app.topic(kafka.topic(topic_for("benchmark")), key_serializer="raw", value_serializer=CODEC_NAME)
    ticks = app.topic(f"{app_id}-ticks", value_serializer="json", internal=True)
    provenance = [("app_id", app_id.encode())]  # which pipeline made a record
    # Re-keyed copies of the printers' windows: by site (site roll-ups), and of the sites'
    # day roll-ups by model and day (benchmark cohorts). Internal, JSON.
    by_site = app.topic(f"{app_id}-windows-by-site", key_serializer="raw", value_serializer="json", internal=True)
    by_cohort = app.topic(f"{app_id}-sites-by-cohort", key_serializer="raw", value_serializer="json", internal=True)
    site_out = app.topic(kafka.topic(SITE_UTILISATION), key_serializer="raw", value_serializer=CODEC_NAME)
    sites = app.Table("sites", key_type=str)
    cohorts = app.Table("cohorts", key_type=str)

    transactions = PartitionTransactions(kafka, registry, provenance, app_id=settings.app_id,
                                         site_windows_topic=by_site.get_topic_name())
    agent = DeviceAgent(settings.device(), transactions, checkpoint_every_s=settings.checkpoint_every_s)
    reader = TelemetryReader(kafka, registry, start_at=settings.start_at,
                             batch_max=settings.batch_max, batch_within_s=settings.batch_within_s)
    bench_settings = BenchmarkSettings(min_sites=settings.benchmark_min_sites)

    async def to_cohorts(models: Sequence[tuple[str, SiteUtilisation]]) -> None:
        for model, rolled in models:
            if rolled.window_end - rolled.window_start == benchmarks.DAY_MS:
                key = f"{model}|{rolled.window_start}"
                await by_cohort.send(key=key.encode(), value={"cohort": key, "site": rolled.to_dict()})

    @app.agent(by_site, name="printfleet-sites")
    async def site_windows(stream: faust.StreamT[Any]) -> None:
        """Per site: the printers' windows summed (idempotent: a printer's newer version of
        a window replaces its older one), and per model the site's day for the cohorts.
        A printer's model, when it becomes known (`{"model_number", "device_id"}` without
        a window), moves its windows into their cohorts."""
        async for event in stream.events():
            record = event.value
            site = str(record["site_id"])
            stored = sites.get(site)
            state = SiteWindows.from_dict(stored) if stored is not None else SiteWindows()
            if "window_start" not in record:
                state, changed = site_rollup.set_model(state, str(record["device_id"]), str(record["model_number"]))
                sites[site] = state.to_dict()
                for start, end in changed:
                    await to_cohorts(site_rollup.by_model(state, start, end))
                continue
            state, site_record, models = site_rollup.step(state, record)
            sites[site] = state.to_dict()
            await site_out.send(key=site.encode(), value=("utilisation", site_record), headers=provenance)
            await to_cohorts(models)

    @app.agent(by_cohort, name="printfleet-cohorts")
    async def cohort_benchmarks(stream: faust.StreamT[Any]) -> None:
        """Per model and day: each site's roll-up; the benchmark once k sites are in."""
        async for event in stream.events():
            key, site = str(event.value["cohort"]), event.value["site"]
            members = {**(cohorts.get(key) or {}), str(site["site_id"]): site}
            cohorts[key] = members
            model, start = key.rsplit("|", 1)
            cohort = Cohort(model, None, int(start), int(start) + benchmarks.DAY_MS)
            record = benchmarks.from_sites(cohort, [SiteUtilisation.from_dict(v) for _, v in sorted(members.items())], bench_settings)
            if record is not None:
                await benchmark_out.send(key=key.encode(), value=("benchmark", record), headers=provenance)

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
        await agent.checkpoint_all()
        # The site agents' tables go to their changelogs through Faust's producer.
        await app.producer.flush()
        await agent.forget(sorted({tp.partition for tp in revoked}))

    async def on_recovered(sender: Any, *args: Any, signal: Any, **kwargs: Any) -> None:
        # The tables (the books among them) are recovered: read what the ticks say we own.
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
              f"missing {c.missing}, dead letters {c.dead_letters} (late {c.late}), checkpoints {c.checkpoints}, "
              f"lag {reader.lag()}", flush=True)

    app.timer(settings.status_every_s)(status_line)
    declared = {name: topic for topic in (benchmark_out, ticks, by_site, by_cohort, site_out,
                                          *(table.changelog_topic for table in (sites, cohorts)))
                for name in topic.topics}
    return WorkerApp(app, (*pipeline_topics(), *worker_topics(settings.app_id)), declared)

