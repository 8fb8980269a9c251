"""`printfleet alerts follow` and `printfleet alerts list` on the real stack: the stream
worker raises alerts from simulated printhead errors; `follow` (a real process) prints
each lifecycle change within seconds; the sink stores them in ClickHouse, and `list`
shows the open ones with each filter and format, without the ones that cleared, and
drops one as soon as the sink has its CLEARED record."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import sink_harness as h
from stream_harness import Outputs, Worker, ensure_topics, produce
from stream_scenarios import Printer, event_storm

from common.alert_view import COLUMNS
from deploy.settings import StackSettings
from schemas import SchemaRegistry
from sinks.clickhouse import ClickHouseSink, SinkSettings

T0 = 1_748_736_000_000  # 2025-06-01T00:00:00Z
CODE = "0057-0001-0053"  # a printhead error


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "printfleet", "alerts", *args]


async def _read_until(stream: IO[str], done: Callable[[list[str]], bool], timeout_s: float) -> list[str]:
    """Lines of a child's pipe until `done` says so; fails after `timeout_s`."""
    lines: list[str] = []

    async def read() -> None:
        while not done(lines):
            line = await asyncio.to_thread(stream.readline)
            assert line, f"the stream ended after {lines}"
            lines.append(line)

    await asyncio.wait_for(read(), timeout_s)
    return lines


async def _sink_until(sink: ClickHouseSink, settings: SinkSettings, condition_sql: str, timeout_s: float = 90) -> None:
    """Step the sink until a SELECT of one boolean says it has stored what it should."""
    deadline = time.monotonic() + timeout_s
    while not await h.scalar(settings, condition_sql):
        assert time.monotonic() < deadline, f"the sink did not store it: {condition_sql}"
        await sink.step()


async def _quiet(out: Outputs, quiet_s: float, timeout_s: float = 60) -> None:
    """Poll the worker's outputs until no alert record came for `quiet_s`."""
    deadline, count, since = time.monotonic() + timeout_s, -1, time.monotonic()
    while True:
        await out.poll()
        if len(out.of("alert")) != count:
            count, since = len(out.of("alert")), time.monotonic()
        elif time.monotonic() - since >= quiet_s:
            return
        assert time.monotonic() < deadline, "the worker's alert output did not settle"


def _list(stack: StackSettings, database: str, *args: str) -> str:
    result = subprocess.run(
        _cli("list", "--clickhouse-url", stack.clickhouse_url, "--clickhouse-database", database, *args),
        capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


def _json_list(stack: StackSettings, database: str, *args: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = json.loads(_list(stack, database, "--format", "json", *args))
    return rows


async def test_follow_prints_changes_and_list_shows_the_open_alerts(stack: StackSettings, tmp_path: Path) -> None:
    site = f"site-{uuid.uuid4().hex[:8]}"
    stays, clears = (Printer(site, f"dev-{uuid.uuid4().hex[:12]}", T0) for _ in range(2))
    open_key, cleared_key = (f"system-event:{p.device_id}:{CODE}" for p in (stays, clears))
    await ensure_topics(stack.kafka_bootstrap)
    worker = Worker(stack.kafka_bootstrap, f"alerts-cli-{site}", tmp_path, PRINTFLEET_WORKER_START_AT="latest").start()
    follower = subprocess.Popen(_cli("follow", "--site", site, "--kafka-bootstrap", stack.kafka_bootstrap),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert follower.stdout is not None and follower.stderr is not None
    settings = h.settings(stack, uuid.uuid4().hex[:10], "alert", topic_prefix="")
    try:
        await worker.ready()
        # aiokafka may log a retried metadata error first (leaders move while earlier
        # tests restart brokers); the follower's own line is what this waits for.
        started = await _read_until(follower.stderr, lambda lines: any("following alerts" in line for line in lines), 60)
        assert "following alerts (6 partitions) from now" in started[-1]
        async with Outputs(stack.kafka_bootstrap, site) as out:
            # `stays`: five printhead errors, never cleared; `clears`: three, then the
            # operator clears them (event_storm's last step).
            await produce(stack.kafka_bootstrap, [*event_storm(stays, 5)[:-1], *event_storm(clears, 3)])
            produced_at = time.monotonic()

            def steps(o: Outputs, key: str) -> list[str]:
                return [a["lifecycle"] for a in o.of("alert") if a["dedup_key"] == key]

            await out.until(lambda o: "RAISED" in steps(o, open_key) and "CLEARED" in steps(o, cleared_key), worker)

            # follow: the same changes, as JSON lines, within seconds of being committed
            def followed(lines: list[str]) -> bool:
                changes = {(r["dedup_key"], r["lifecycle"]) for r in map(json.loads, lines)}
                return {(open_key, "RAISED"), (cleared_key, "RAISED"), (cleared_key, "CLEARED")} <= changes

            printed = [json.loads(line) for line in await _read_until(follower.stdout, followed, 30)]
            assert time.monotonic() - produced_at < 60
            assert all(list(r) == list(COLUMNS) and r["site_id"] == site for r in printed)
            raised = next(r for r in printed if r["dedup_key"] == open_key and r["lifecycle"] == "RAISED")
            assert raised["severity"] == "ERROR" and raised["raised_at"] == "2025-06-01T00:00:00+00:00"
            # The worker raises more than these two (printhead life, from the same input's
            # printhead records, maybe a moment later): what list is compared with below
            # is everything it published for the input, once it went quiet.
            await _quiet(out, 5.0)
            alert_records = [a for a in out.of("alert") if a["site_id"] == site]

        # The sink stores the worker's alert records in ClickHouse.
        sink = ClickHouseSink(settings, SchemaRegistry.load_default())
        await sink.start()
        try:
            wanted = len({a["record_id"] for a in alert_records})
            await _sink_until(sink, settings, f"SELECT uniqExact(record_id) >= {wanted} FROM alert WHERE site_id = '{site}'")
            database = settings.clickhouse.database

            # list: the open printhead alert, not the cleared one, whatever the format
            rows = _json_list(stack, database, "--site", site)
            keys = {r["dedup_key"]: r for r in rows}
            assert open_key in keys and cleared_key not in keys
            assert keys[open_key]["severity"] == "ERROR" and keys[open_key]["lifecycle"] in ("RAISED", "UPDATED")
            assert keys[open_key]["occurrences"] == max(a["occurrences"] for a in alert_records if a["dedup_key"] == open_key)
            assert {r["site_id"] for r in rows} == {site}
            # the other alerts the records raised (printhead life) stay open too, on both printers
            assert {r["device_id"] for r in rows} == {stays.device_id, clears.device_id}

            # each alert's recommended part numbers: those of its latest lifecycle record
            latest = sorted((a for a in alert_records if a["site_id"] == site),
                            key=lambda a: (a["event_time"], ("RAISED", "UPDATED", "CLEARED").index(a["lifecycle"])))
            parts = {a["alert_id"]: [p["part_number"] for p in a["recommended_parts"]] for a in latest}
            assert {r["alert_id"]: r["recommended_part_numbers"] for r in rows} == {r["alert_id"]: parts[r["alert_id"]] for r in rows}
            assert any(r["recommended_part_numbers"] for r in rows)  # the printhead-life alerts name the printhead

            # filters
            assert {r["dedup_key"] for r in _json_list(stack, database, "--site", site, "--rule", "system-event")} == {open_key}
            by_printer = _json_list(stack, database, "--site", site, "--printer", clears.device_id)
            assert by_printer and {r["device_id"] for r in by_printer} == {clears.device_id}
            assert cleared_key not in {r["dedup_key"] for r in by_printer}
            severe = _json_list(stack, database, "--site", site, "--severity", "ERROR")
            assert open_key in {r["dedup_key"] for r in severe} and {r["severity"] for r in severe} <= {"ERROR", "CRITICAL"}
            assert open_key not in {r["dedup_key"] for r in _json_list(stack, database, "--site", site, "--severity", "CRITICAL")}
            assert _json_list(stack, database, "--site", f"{site}-none") == []

            # csv: a header, then the same alerts; table: one line each and a count
            table = list(csv.reader(io.StringIO(_list(stack, database, "--site", site, "--format", "csv"))))
            assert table[0] == list(COLUMNS)
            assert sorted(r[0] for r in table[1:]) == sorted(r["alert_id"] for r in rows)
            in_csv = {r[0]: r[COLUMNS.index("recommended_part_numbers")] for r in table[1:]}
            assert in_csv == {r["alert_id"]: " ".join(r["recommended_part_numbers"]) for r in rows}
            text = _list(stack, database, "--site", site, "--rule", "system-event")
            assert stays.device_id in text and clears.device_id not in text and text.rstrip().endswith("(1 rows)")

            # The operator clears the open one: follow prints it within seconds, list drops it.
            await produce(stack.kafka_bootstrap, [event_storm(stays, 5)[-1]])
            produced_at = time.monotonic()
            more = await _read_until(follower.stdout, lambda lines: any(
                json.loads(x)["dedup_key"] == open_key and json.loads(x)["lifecycle"] == "CLEARED" for x in lines), 60)
            assert time.monotonic() - produced_at < 30
            assert json.loads(more[-1])["cleared_at"] is not None
            await _sink_until(sink, settings, f"SELECT count() > 0 FROM alert WHERE dedup_key = '{open_key}' AND lifecycle = 'CLEARED'")
            assert _json_list(stack, database, "--site", site, "--rule", "system-event") == []
            assert _list(stack, database, "--site", site, "--rule", "system-event") == "(no rows)\n"
        finally:
            await sink.stop()

        # Ctrl-C or SIGTERM: follow stops and exits 0
        follower.send_signal(signal.SIGTERM)
        assert follower.wait(timeout=30) == 0

        # --from-beginning, as CSV: the whole history of the site's changes, then Ctrl-C
        replay = subprocess.Popen(_cli("follow", "--site", site, "--rule", "system-event", "--from-beginning", "--format",
                                       "csv", "--kafka-bootstrap", stack.kafka_bootstrap),
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        assert replay.stdout is not None
        try:
            lines = await _read_until(replay.stdout, lambda got: sum("CLEARED" in x for x in got) >= 2, 60)
            history = list(csv.reader(io.StringIO("".join(lines))))
            assert history[0] == list(COLUMNS)
            assert {(r[COLUMNS.index("dedup_key")], r[COLUMNS.index("lifecycle")]) for r in history[1:]} >= {
                (open_key, "RAISED"), (open_key, "CLEARED"), (cleared_key, "RAISED"), (cleared_key, "CLEARED")}
            replay.send_signal(signal.SIGINT)
            assert replay.wait(timeout=30) == 0
        finally:
            if replay.poll() is None:
                replay.kill()
            replay.wait()
            replay.stdout.close()
    finally:
        if follower.poll() is None:
            follower.kill()
        follower.wait()
        follower.stdout.close()
        follower.stderr.close()
        await worker.stop()
        await h.drop_database(settings)
