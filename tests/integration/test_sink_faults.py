"""The sink under faults, on the real Kafka and ClickHouse: poison records go to the
dead-letter topic and the rest is stored; a sink that dies after inserting but before
committing is replaced without duplicates; ClickHouse going away pauses the sink, its lag
shows, and nothing is lost or doubled when it returns."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import pytest

from deploy.settings import StackSettings
from schemas import SchemaRegistry
from common.kafka.topics import DEAD_LETTER
from sinks.clickhouse import ClickHouseSink, SinkSettings
import sink_harness as h


@pytest.fixture
async def sink_settings(stack: StackSettings, unique: str) -> AsyncIterator[SinkSettings]:
    settings = h.settings(stack, unique, "heartbeat,job")
    yield settings
    await h.drop_database(settings)


@pytest.fixture(scope="module")
def registry() -> SchemaRegistry:
    return SchemaRegistry.load_default()


async def test_poison_records_are_dead_lettered_and_the_rest_stored(
    stack: StackSettings, sink_settings: SinkSettings, registry: SchemaRegistry,
) -> None:
    good = h.records("heartbeat", 600)
    topic = await h.produce_records(stack.kafka_bootstrap, registry, sink_settings, "heartbeat", good[:300])
    far_future = h.records("heartbeat", 1)[0] | {"event_time": 13_000_000_000_000}  # year 2381
    wrong_kind = registry.encode("job", h.records("job", 1)[0])
    poison = [
        (b"dev-00", b"\x00not avro at all"),
        (b"dev-01", wrong_kind),
        (b"dev-02", registry.encode("heartbeat", far_future)),
    ]
    for key, value in poison:  # all to one partition, between good records
        await h.produce(stack.kafka_bootstrap, topic, [(b"dev-00", value)])
    await h.produce_records(stack.kafka_bootstrap, registry, sink_settings, "heartbeat", good[300:])
    async with ClickHouseSink(sink_settings, registry) as sink:
        await h.run_until(sink, 603)
    assert sink.counters.dead_lettered == 3
    assert await h.scalar(sink_settings, "SELECT count() FROM heartbeat") == 600
    assert await h.scalar(sink_settings, "SELECT uniqExact(record_id) FROM heartbeat") == 600
    letters = await h.consume_all(stack.kafka_bootstrap, sink_settings.kafka.topic(DEAD_LETTER), 3)
    assert len(letters) == 3
    headers = [dict((k, v.decode()) for k, v in m.headers) for m in letters]
    assert [hd["deadletter.error"] for hd in headers] == ["NotSingleObjectError", "UnexpectedKindError", "ConvertError"]
    assert {hd["deadletter.origin.topic"] for hd in headers} == {topic}
    assert [m.value for m in letters] == [value for _, value in poison]
    assert "event_time=13000000000000 is outside" in headers[2]["deadletter.reason"]
    offsets = [int(hd["deadletter.origin.offset"]) for hd in headers]
    assert offsets == sorted(offsets) and len(set(offsets)) == 3


class _Crash(BaseException):
    """The sink process dies (not an error the sink could handle)."""


async def test_crash_after_insert_before_commit_is_replayed_without_duplicates(
    stack: StackSettings, sink_settings: SinkSettings, registry: SchemaRegistry,
) -> None:
    # Batches are cut by time (the size limit is far away), the case that needs the
    # intent: the replacement must cut exactly where the dead sink did.
    settings = SinkSettings(**{**sink_settings.__dict__, "batch_max_records": 100_000, "batch_max_age_s": 0.2})
    first = h.records("heartbeat", 1200)
    await h.produce_records(stack.kafka_bootstrap, registry, settings, "heartbeat", first)
    doomed = ClickHouseSink(settings, registry)
    await doomed.start()
    real_commit = doomed._commit

    async def commit_then_die(consumer: Any, offsets: dict[Any, Any]) -> None:
        if any(o.metadata == "" for o in offsets.values()):
            raise _Crash()  # inserted, end offsets not committed
        await real_commit(consumer, offsets)

    doomed._commit = commit_then_die  # type: ignore[method-assign]
    with pytest.raises(_Crash):
        for _ in range(400):
            await doomed.step()
    inserted = await h.scalar(settings, "SELECT count() FROM heartbeat")
    assert 0 < inserted <= 1200
    assert doomed._consumer is not None
    await doomed._consumer.stop()  # leaves the group without committing
    doomed._consumer = None
    await doomed.stop()
    # More records arrive meanwhile: a replacement that cut by time again would make
    # other batches (other tokens) and store the first ones twice.
    second = h.records("heartbeat", 600, first_seed=5000)
    await h.produce_records(stack.kafka_bootstrap, registry, settings, "heartbeat", second)
    async with ClickHouseSink(settings, registry) as replacement:
        await h.run_until(replacement, 1800 - 0)
        stored_again = replacement.counters.records_stored
    assert stored_again == 1800  # it re-did the dead sink's batches (all uncommitted)
    assert await h.scalar(settings, "SELECT count() FROM heartbeat") == 1800
    assert await h.scalar(settings, "SELECT uniqExact(record_id) FROM heartbeat") == 1800
    assert await h.scalar(settings, "SELECT sum(heartbeats) FROM heartbeat_hourly") == 1800


async def test_clickhouse_away_pauses_shows_lag_and_loses_nothing(
    stack: StackSettings, sink_settings: SinkSettings, registry: SchemaRegistry,
) -> None:
    proxy = h.Proxy(urlsplit(stack.clickhouse_url).port or 8123)
    await proxy.up()
    settings = replace(sink_settings, clickhouse=replace(sink_settings.clickhouse, url=f"http://127.0.0.1:{proxy.port}"))
    await h.produce_records(stack.kafka_bootstrap, registry, settings, "heartbeat", h.records("heartbeat", 600))
    try:
        async with ClickHouseSink(settings, registry) as sink:
            await h.run_until(sink, 600)
            await proxy.down()
            await h.produce_records(
                stack.kafka_bootstrap, registry, settings, "heartbeat", h.records("heartbeat", 900, first_seed=900)
            )
            deadline = time.monotonic() + 4.0
            while time.monotonic() < deadline:
                await sink.step()
            status = await sink.status()
            assert status.paused_for_s > 0 and status.last_error
            assert sink.counters.retries >= 2
            assert sum(status.lag.values()) == 900
            assert sink.counters.records_stored == 600
            await proxy.up()
            await h.run_until(sink, 1500, timeout_s=30)
            # The write that stored the last rows ends in its own task; the sink leaves
            # its pause at the next step that sees it done (and commits the offsets).
            deadline = time.monotonic() + 10.0
            while (status := await sink.status()).paused_for_s or sum(status.lag.values()):
                assert time.monotonic() < deadline, status
                await sink.step()
    finally:
        await proxy.down()
    assert await h.scalar(sink_settings, "SELECT count() FROM heartbeat") == 1500
    assert await h.scalar(sink_settings, "SELECT uniqExact(record_id) FROM heartbeat") == 1500
