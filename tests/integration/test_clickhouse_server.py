"""The local ClickHouse is a real ClickHouse server reached by clickhouse-connect over HTTP."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone
from typing import Any

import clickhouse_connect

from deploy.settings import StackSettings

ROWS = 100_000


def test_mergetree_round_trip_of_mixed_types(stack: StackSettings, unique: str) -> None:
    client = clickhouse_connect.get_client(host="127.0.0.1", port=stack.clickhouse_http_port)
    table = f"it_mixed_{unique}"
    client.command(
        f"""
        CREATE TABLE {table} (
            event_time DateTime64(3, 'UTC'),
            device_id LowCardinality(String),
            temperature_c Float64,
            job_id Nullable(String),
            layer_durations_s Array(Float32),
            seq UInt32
        ) ENGINE = MergeTree
        PARTITION BY toYYYYMM(event_time)
        ORDER BY (device_id, event_time, seq)
        """
    )
    try:
        rng = random.Random(7)
        start = datetime(2026, 10, 30, tzinfo=timezone.utc)
        rows: list[list[Any]] = [
            [
                start + timedelta(milliseconds=37 * i),  # spans two months: two partitions
                f"printer-{i % 20:02d}",
                round(rng.uniform(20.0, 190.0), 3),
                None if i % 3 == 0 else f"job-{i // 100}",
                [float(rng.randint(5, 40)) for _ in range(i % 4)],
                i,
            ]
            for i in range(ROWS)
        ]
        # Make the rows span a month boundary so PARTITION BY is exercised.
        rows[-1][0] = datetime(2026, 11, 2, tzinfo=timezone.utc)
        columns = ["event_time", "device_id", "temperature_c", "job_id", "layer_durations_s", "seq"]
        client.insert(table, rows, column_names=columns)

        assert client.command(f"SELECT count() FROM {table}") == ROWS
        assert client.command(f"SELECT count() FROM {table} WHERE job_id IS NULL") == sum(
            1 for r in rows if r[3] is None
        )
        assert client.command(f"SELECT uniqExact(_partition_id) FROM {table}") == 2
        assert client.command(f"SELECT toTypeName(device_id) FROM {table} LIMIT 1") == "LowCardinality(String)"

        back = list(client.query(f"SELECT {', '.join(columns)} FROM {table} ORDER BY seq").result_rows)
        assert len(back) == ROWS
        for want, got in zip(rows[::997] + rows[-1:], back[::997] + back[-1:]):
            # clickhouse-connect returns naive datetimes in UTC for a UTC column.
            assert got[0].replace(tzinfo=timezone.utc) == want[0]
            assert got[1:4] == tuple(want[1:4])
            assert list(got[4]) == want[4]
            assert got[5] == want[5]
        total = client.query(f"SELECT sum(temperature_c) FROM {table}").result_rows[0][0]
        assert abs(total - sum(float(r[2]) for r in rows)) < 1e-6 * ROWS
    finally:
        client.command(f"DROP TABLE IF EXISTS {table}")
        client.close()
