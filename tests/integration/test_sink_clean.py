"""The sink on the real Kafka and ClickHouse: a clean run stores every record exactly
once, in its table and child tables, and the rollups count each once; so does a
simulated site's day of every kind; and writing keeps pace with the fetch of a backlog."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import AsyncIterator

import pytest

from deploy.settings import StackSettings
from producers.simulator.replay import new_fleet, replay
from schemas import SchemaRegistry
from sinks.clickhouse import ClickHouseSink, SinkSettings
import sink_harness as h


@pytest.fixture
async def sink_settings(stack: StackSettings, unique: str) -> AsyncIterator[SinkSettings]:
    settings = h.settings(stack, unique, "heartbeat,job,system_event")
    yield settings
    await h.drop_database(settings)


async def test_clean_run_stores_every_record_once(stack: StackSettings, sink_settings: SinkSettings) -> None:
    registry = SchemaRegistry.load_default()
    heartbeats = h.records("heartbeat", 3000)
    jobs = h.records("job", 30)
    events = h.records("system_event", 200)
    for kind, batch in (("heartbeat", heartbeats), ("job", jobs), ("system_event", events)):
        await h.produce_records(stack.kafka_bootstrap, registry, sink_settings, kind, batch)
    async with ClickHouseSink(sink_settings, registry) as sink:
        await h.run_until(sink, 3230)
        status = await sink.status()
    assert sink.counters.dead_lettered == 0
    assert sum(status.lag.values()) == 0
    s = sink_settings
    assert await h.scalar(s, "SELECT count() FROM heartbeat") == 3000
    assert await h.scalar(s, "SELECT uniqExact(record_id) FROM heartbeat") == 3000
    assert await h.scalar(s, "SELECT uniqExact(kafka_partition, kafka_offset) FROM heartbeat") == 3000
    assert await h.scalar(s, "SELECT sum(heartbeats) FROM heartbeat_hourly") == 3000
    assert await h.scalar(s, "SELECT count() FROM job") == 30
    assert await h.scalar(s, "SELECT count() FROM job_parts") == sum(len(j["parts"]) for j in jobs)
    assert await h.scalar(s, "SELECT count() FROM job_layers") == sum(len(j["layers"]) for j in jobs)
    assert await h.scalar(s, "SELECT count() FROM job_sub_jobs") == sum(len(j["sub_jobs"]) for j in jobs)
    assert await h.scalar(s, "SELECT sum(jobs) FROM job_daily") == 30
    assert await h.scalar(s, "SELECT sum(events) FROM system_event_daily") == 200
    # Child rows join their job by job_id.
    joined = await h.scalar(s, "SELECT count() FROM job_parts AS p INNER JOIN job AS j ON p.job_id = j.job_id")
    assert joined == sum(len(j["parts"]) for j in jobs)
    # A value survives the round trip: the first heartbeat's fields.
    first = heartbeats[0]
    row = await h.scalar(s, f"SELECT tuple(status, layers_done, toUnixTimestamp64Milli(event_time)) FROM heartbeat WHERE record_id = '{first['record_id']}'")
    assert tuple(row) == (first["status"], first["layers_done"], first["event_time"])


async def test_writing_keeps_pace_with_the_fetch_of_a_backlog(stack: StackSettings, unique: str) -> None:
    """A sink catching up on a backlog writes batches while it is still fetching: the
    write task shares the event loop with the polls, and aiokafka's getmany() does not
    yield while it holds fetched records."""
    settings = h.settings(stack, unique, "heartbeat", batch_max_records=2000, batch_max_age_s=5.0)
    registry = SchemaRegistry.load_default()
    template = h.records("heartbeat", 1)[0]
    backlog = [{**template, "device_id": h.DEVICES[i % len(h.DEVICES)], "record_id": f"hb-{i}"} for i in range(120_000)]
    await h.produce_records(stack.kafka_bootstrap, registry, settings, "heartbeat", backlog)
    try:
        async with ClickHouseSink(settings, registry) as sink:
            stored_when_all_fetched = None
            while stored_when_all_fetched is None:
                await sink.step()
                if sink.counters.records_in >= len(backlog):
                    stored_when_all_fetched = sink.counters.records_stored
            await h.run_until(sink, len(backlog))
        assert stored_when_all_fetched > 0, "nothing was written until the whole backlog was fetched"
        assert await h.scalar(settings, "SELECT count() FROM heartbeat") == len(backlog)
    finally:
        await h.drop_database(settings)


async def test_a_simulated_site_day_lands_exactly_once(stack: StackSettings, unique: str) -> None:
    """Every record a simulated site produces in a day, of every kind, is in its table once
    (the day ends now: the raw tables' TTLs drop rows older than their retention)."""
    registry = SchemaRegistry.load_default()
    start = int(time.time() * 1000) - 25 * 3_600_000
    sim = replay(new_fleet(3, 5, start), registry, duration_ms=24 * 3_600_000, site_id=f"site-{unique}", heartbeat_s=60)
    produced = Counter(kind for kind, _ in sim.records)
    assert {"heartbeat", "job", "system_event", "device_identity", "cleaning_roll"} <= set(produced)
    settings = h.settings(stack, unique, ",".join(sorted(produced)), batch_max_records=2000)
    for kind in produced:
        await h.produce_records(stack.kafka_bootstrap, registry, settings, kind, sim.of(kind))
    try:
        async with ClickHouseSink(settings, registry) as sink:
            await h.run_until(sink, len(sim.records))
        assert sink.counters.dead_lettered == 0
        for kind, n in produced.items():
            assert await h.scalar(settings, f"SELECT tuple(count(), uniqExact(record_id)) FROM {kind}") == (n, n), kind
        jobs = sim.of("job")
        assert await h.scalar(settings, "SELECT count() FROM job_layers") == sum(len(j["layers"]) for j in jobs)
        assert await h.scalar(settings, "SELECT sum(heartbeats) FROM heartbeat_hourly") == produced["heartbeat"]
    finally:
        await h.drop_database(settings)
