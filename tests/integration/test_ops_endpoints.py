"""Metrics and health of every long-running component, scraped over HTTP as Prometheus
and Kubernetes would: the gateway and collector while a simulated site uploads, the
worker (`printfleet worker`, a real process) and the sink while records flow. Then, on a
stack of the test's own, readiness turns false when Kafka or ClickHouse is stopped, names
what is missing, and turns true again once it is back; liveness stays 200 throughout.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

import sink_harness as h
from deploy.clickhouse import ClickHouseServer
from deploy.kafka import KafkaServer
from deploy.settings import StackSettings
from private_stack import running_stack, start_server, stop_server
from producers.collector.collector import Collector
from producers.gateway.gateway import Gateway, GatewaySettings
from producers.gateway.sites import SiteDirectory
from schemas import SchemaRegistry
from sinks.clickhouse import ClickHouseSink
from site_harness import start_site
from stream_harness import Worker, produce

REGISTRY = SchemaRegistry.load_default()
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def _get(url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session, session.get(url, timeout=aiohttp.ClientTimeout(total=20)) as resp:
        return resp.status, await resp.text()


async def _scrape(base: str) -> Samples:
    status, text = await _get(f"{base}/metrics")
    assert status == 200, text
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def _value(samples: Samples, name: str, **labels: str) -> float:
    key = (name, tuple(sorted(labels.items())))
    assert key in samples, f"{name}{labels} not scraped; have {sorted(n for n, _ in samples if n.startswith(name))}"
    return samples[key]


def _labelled(samples: Samples, name: str, label: str) -> dict[str, float]:
    return {dict(labels)[label]: v for (n, labels), v in samples.items() if n == name}


async def _until(what: Callable[[], Awaitable[bool]], timeout_s: float, message: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not await what():
        assert time.monotonic() < deadline, message
        await asyncio.sleep(0.5)


async def test_gateway_and_collector_metrics_move_while_a_site_uploads(stack: StackSettings, tmp_path: Path) -> None:
    stop = asyncio.Event()
    async with start_site(stack, tmp_path) as site, Collector(site.collector_settings, REGISTRY) as collector:
        runner = asyncio.create_task(collector.run(stop))
        try:
            async def uploaded() -> bool:
                return collector.uploader.counters.records >= 500 and site.gateway.counters.batches_accepted >= 2
            await _until(uploaded, 120, collector.status_line())
            gateway, local = await _scrape(site.gateway.ops.url), await _scrape(collector.ops.url)
            ready = {name: await _get(f"{ops.url}/readyz") for name, ops in (("gateway", site.gateway.ops), ("collector", collector.ops))}
            live = await _get(f"{collector.ops.url}/livez")
            status, _ = await _get(collector.status_url)
        finally:
            stop.set()
            await runner

    assert _value(gateway, "printfleet_gateway_batches_total", outcome="accepted") >= 2
    assert _value(gateway, "printfleet_gateway_records_produced_total") >= 500
    assert _value(gateway, "printfleet_gateway_batches_total", outcome="refused") == 0
    assert _value(gateway, "printfleet_gateway_batch_duration_seconds_count") >= 2
    assert _value(gateway, "printfleet_gateway_kafka_commit_duration_seconds_count") >= 1
    assert _value(gateway, "printfleet_gateway_kafka_commit_failures_total") == 0

    polled = _labelled(local, "printfleet_collector_records_polled_total", "kind")
    assert polled["heartbeat"] > 0 and polled["device_identity"] > 0, polled
    failures = _labelled(local, "printfleet_collector_poll_failures_total", "printer")
    assert set(failures) == set(site.collector_settings.printer_urls)  # one series per printer, none per record
    assert _value(local, "printfleet_collector_records_uploaded_total") >= 500
    assert _value(local, "printfleet_collector_upload_duration_seconds_count") >= 2
    assert _value(local, "printfleet_collector_answering_printers") == len(site.collector_settings.printer_urls)
    assert _value(local, "printfleet_collector_spool_depth_records") >= 0
    assert _value(local, "printfleet_collector_spool_oldest_record_age_seconds") >= 0

    assert ready["gateway"][0] == 200 and '"kafka": "ok"' in ready["gateway"][1]
    assert ready["collector"][0] == 200, ready["collector"][1]
    assert '"printers": "ok"' in ready["collector"][1] and '"gateway": "ok"' in ready["collector"][1]
    assert live[0] == 200 and status == 200  # the status page is still served beside them


async def test_worker_metrics_count_what_it_applies(stack: StackSettings, tmp_path: Path) -> None:
    site = f"site-{uuid.uuid4().hex[:8]}"
    env = {"PRINTFLEET_WORKER_START_AT": "latest", "PRINTFLEET_WORKER_STATUS_EVERY_S": "1",
           "PRINTFLEET_WORKER_CHECKPOINT_EVERY_S": "1"}
    worker = Worker(stack.kafka_bootstrap, f"ops-{site}", tmp_path, **env).start()
    try:
        await worker.ready()
        found = re.search(r"worker metrics (http://\S+)/metrics", worker.log.read_text(errors="replace"))
        assert found, worker.tail()
        base = found.group(1)
        sent = await produce(stack.kafka_bootstrap, [("heartbeat", r) for r in h.simulated_heartbeats(300, site=site)])

        async def applied() -> bool:
            worker.check()
            samples = await _scrape(base)
            return (_value(samples, "printfleet_worker_records_applied_total") >= sent
                    and _value(samples, "printfleet_worker_checkpoint_duration_seconds_count") > 0)
        await _until(applied, 90, worker.tail())
        samples = await _scrape(base)
        ready = await _get(f"{base}/readyz")
    finally:
        await worker.stop()

    assert _value(samples, "printfleet_worker_checkpoints_total") > 0
    assert _value(samples, "printfleet_worker_records_dead_lettered_total") == 0
    lag = _labelled(samples, "printfleet_worker_consumer_lag_records", "topic")
    assert lag.get("telemetry.heartbeat") == 0, lag  # all applied: nothing behind on its own partitions
    assert ready[0] == 200 and '"consumer": "ok"' in ready[1], ready


async def test_sink_metrics_count_rows_per_table_and_lag_per_topic(stack: StackSettings, unique: str) -> None:
    settings = h.settings(stack, unique, "heartbeat", ops_port=0)
    topic = await h.produce_records(stack.kafka_bootstrap, REGISTRY, settings, "heartbeat", h.simulated_heartbeats(1_200))
    try:
        async with ClickHouseSink(settings, REGISTRY) as sink:
            await h.run_until(sink, 1_200)
            samples = await _scrape(sink.ops.url)
            ready = await _get(f"{sink.ops.url}/readyz")
    finally:
        await h.drop_database(settings)

    assert _value(samples, "printfleet_sink_records_stored_total") == 1_200
    assert _value(samples, "printfleet_sink_rows_inserted_total", table="heartbeat") >= 1_200
    assert _value(samples, "printfleet_sink_insert_duration_seconds_count", table="heartbeat") >= 1
    assert _value(samples, "printfleet_sink_batches_written_total") >= 1
    assert _value(samples, "printfleet_sink_consumer_lag_records", topic=topic) == 0
    assert ready[0] == 200 and ready[1].count('"ok"') == 2, ready


async def _ready(base: str) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as session, session.get(f"{base}/readyz") as resp:
        return resp.status, await resp.json()


async def _wait_ready(base: str, want: bool, timeout_s: float = 60.0) -> dict[str, Any]:
    """The /readyz body once its readiness is `want` (the results are cached 1.5 s)."""
    deadline = time.monotonic() + timeout_s
    while True:
        status, body = await _ready(base)
        if (status == 200) == want:
            assert body["ready"] is want
            return body
        assert time.monotonic() < deadline, f"readiness stayed {body} for {timeout_s} s"
        await asyncio.sleep(0.5)


async def test_readiness_follows_kafka_and_clickhouse_going_away_and_back(tmp_path: Path) -> None:
    with running_stack(tmp_path / "stack") as stack:
        unique = uuid.uuid4().hex[:10]
        sites = tmp_path / "sites.toml"
        sites.write_text(SiteDirectory.render([("s", "token", ["d1"])]))
        gw_settings = GatewaySettings(kafka=stack.kafka(), sites_file=sites, port=0, ops_port=0)
        sink_settings = h.settings(stack, unique, "heartbeat", ops_port=0)
        async with Gateway(gw_settings, REGISTRY, SiteDirectory.load(sites)) as gateway, \
                ClickHouseSink(sink_settings, REGISTRY) as sink:
            bases = {"gateway": gateway.ops.url, "sink": sink.ops.url}
            for base in bases.values():
                assert (await _wait_ready(base, True))["checks"]["kafka"] == "ok"

            kafka = KafkaServer(stack)
            await stop_server(kafka, stack)
            try:
                for name, base in bases.items():
                    body = await _wait_ready(base, False)
                    assert body["checks"]["kafka"].startswith("unreachable:"), (name, body)
                    if name == "sink":
                        assert body["checks"]["clickhouse"] == "ok", body  # only what is missing is named
                    assert (await _get(f"{base}/livez"))[0] == 200
                health, _ = await _get(f"{gateway.url}/healthz")  # the public port's probe says so too
                assert health == 503
            finally:
                await start_server(kafka, stack)
            for base in bases.values():
                assert (await _wait_ready(base, True))["checks"]["kafka"] == "ok"

            clickhouse = ClickHouseServer(stack)
            await stop_server(clickhouse, stack)
            try:
                body = await _wait_ready(sink.ops.url, False)
                assert body["checks"]["clickhouse"].startswith("no answer to ping"), body
                assert body["checks"]["kafka"] == "ok", body
                assert (await _get(f"{sink.ops.url}/livez"))[0] == 200
            finally:
                await start_server(clickhouse, stack)
            assert (await _wait_ready(sink.ops.url, True))["checks"] == {"clickhouse": "ok", "kafka": "ok"}
            await h.drop_database(sink_settings)
