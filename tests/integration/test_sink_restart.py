"""`printfleet sink` as a real process: killed with SIGKILL mid-run and started again, it
stores every heartbeat of a simulated fleet exactly once. Migrations are idempotent,
also when two sinks start at once."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from deploy.settings import StackSettings
from schemas import SchemaRegistry
from sinks import migrations
from sinks.client import ClickHouseClient
from sinks.clickhouse import SinkSettings
import sink_harness as h

PRINTFLEET = str(Path(sys.executable).parent / "printfleet")


@pytest.fixture
async def sink_settings(stack: StackSettings, unique: str) -> AsyncIterator[SinkSettings]:
    settings = h.settings(stack, unique, "heartbeat", batch_max_records=1000)
    yield settings
    await h.drop_database(settings)


def _start(settings: SinkSettings, log: Path) -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    env.update({
        "PRINTFLEET_CLICKHOUSE_DATABASE": settings.clickhouse.database, "PRINTFLEET_SINK_GROUP_ID": settings.group_id,
        "PRINTFLEET_SINK_KINDS": settings.kinds, "PRINTFLEET_KAFKA_TOPIC_PREFIX": settings.kafka.topic_prefix,
        "PRINTFLEET_SINK_BATCH_MAX_RECORDS": str(settings.batch_max_records),
        "PRINTFLEET_SINK_BATCH_MAX_AGE_S": "0.5",
    })
    with log.open("ab") as out:
        return subprocess.Popen([PRINTFLEET, "sink", "--status-every-s", "1", "--ops-port", "0"], env=env, stdout=out, stderr=subprocess.STDOUT)


async def _count(settings: SinkSettings) -> int:
    try:
        return int(await h.scalar(settings, "SELECT count() FROM heartbeat"))
    except Exception:  # noqa: BLE001 - the table does not exist before the sink's migration
        return 0


async def _wait_for(settings: SinkSettings, predicate: object, timeout_s: float) -> int:
    deadline = time.monotonic() + timeout_s
    while True:
        count = await _count(settings)
        if predicate(count) or time.monotonic() > deadline:  # type: ignore[operator]
            return count
        await asyncio.sleep(0.05)


async def test_sigkill_mid_run_then_restart_stores_every_record_once(
    stack: StackSettings, sink_settings: SinkSettings, tmp_path: Path,
) -> None:
    registry = SchemaRegistry.load_default()
    beats = h.simulated_heartbeats(45_000)  # 40,000 before the kill, 5,000 after it
    total = 40_000
    await h.produce_records(stack.kafka_bootstrap, registry, sink_settings, "heartbeat", beats[:total])
    log = tmp_path / "sink.log"
    first = _start(sink_settings, log)
    try:
        seen = await _wait_for(sink_settings, lambda n: n > 0, 60)
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    finally:
        if first.poll() is None:
            first.kill()
    at_kill = await _count(sink_settings)
    assert 0 < seen <= at_kill <= total, log.read_text()
    await h.produce_records(stack.kafka_bootstrap, registry, sink_settings, "heartbeat", beats[total:])
    total = len(beats)
    second = _start(sink_settings, log)
    try:
        final = await _wait_for(sink_settings, lambda n: n >= total, 90)
        await asyncio.sleep(1.5)  # anything doubled would land by now
        second.send_signal(signal.SIGTERM)
        assert second.wait(30) == 0, log.read_text()
    finally:
        if second.poll() is None:
            second.kill()
    assert final == total, log.read_text()
    assert await _count(sink_settings) == total
    assert await h.scalar(sink_settings, "SELECT uniqExact(record_id) FROM heartbeat") == total
    assert await h.scalar(sink_settings, "SELECT sum(heartbeats) FROM heartbeat_hourly") == total
    text = log.read_text()
    assert "lag 0" in text.splitlines()[-1], text[-2000:]


async def test_migrations_are_idempotent_and_safe_to_run_concurrently(
    stack: StackSettings, sink_settings: SinkSettings,
) -> None:
    plan = migrations.plan(SchemaRegistry.load_default())
    clients = [ClickHouseClient(sink_settings.clickhouse) for _ in range(2)]
    for c in clients:
        await c.start(create_database=True)
    try:
        first, second = await asyncio.gather(*(migrations.migrate(c, plan) for c in clients))
        assert set(first) | set(second) == {m.id for m in plan}
        assert await migrations.migrate(clients[0], plan) == []
        recorded = await migrations.applied(clients[0])
        assert recorded == {m.id: m.checksum for m in plan}
        tables = {r[0] for r in await clients[0].rows("SELECT name FROM system.tables WHERE database = currentDatabase()")}
        assert {"heartbeat", "job", "job_parts", "job_layers", "heartbeat_hourly", "heartbeat_hourly_mv",
                "schema_migrations"} <= tables
        settings = await clients[0].rows(
            "SELECT count() FROM system.tables WHERE database = currentDatabase() AND engine LIKE '%MergeTree' "
            "AND name != 'schema_migrations' AND create_table_query NOT LIKE '%non_replicated_deduplication_window = 10000%'"
        )
        assert settings[0][0] == 0  # every data table deduplicates retried inserts
    finally:
        for c in clients:
            await c.close()
