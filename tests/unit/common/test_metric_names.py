"""Every component's metrics follow Prometheus' naming conventions (common.ops.naming_problems)
and carry the names docs/metrics.md lists; the components are built, not started (no
server is asked), and their registries read as a scrape would read them."""

from __future__ import annotations

import re
from pathlib import Path

from prometheus_client import CollectorRegistry

from common.kafka.settings import KafkaSettings
from common.ops import naming_problems
from common.settings import Secret
from producers.collector import metrics as collector_metrics
from producers.collector.collector import Collector
from producers.collector.config import CollectorSettings
from producers.collector.device_sink import PrinterStatus
from producers.collector.uploader import UploaderCounters
from producers.gateway import metrics as gateway_metrics
from producers.gateway.gateway import Gateway, GatewayCounters, GatewaySettings
from producers.gateway.sites import SiteDirectory
from schemas import SchemaRegistry
from sinks.clickhouse import ClickHouseSink, SinkSettings
from sinks.connection import ClickHouseSettings
from sinks.webhook.forwarder import Forwarder
from sinks.webhook.settings import WebhookSettings
from streams.app import create_app
from streams.worker_settings import WorkerSettings

REGISTRY = SchemaRegistry.load_default()
KAFKA = KafkaSettings("127.0.0.1:1", topic_prefix="p.")
DOC = Path(__file__).resolve().parents[3] / "docs" / "metrics.md"


def _names(registry: CollectorRegistry) -> set[str]:
    return {f"{f.name}_total" if f.type == "counter" else f.name for f in registry.collect()}


async def _registries(tmp_path: Path) -> dict[str, CollectorRegistry]:
    sites = tmp_path / "sites.toml"
    sites.write_text(SiteDirectory.render([("s", "token", ["d1"])]))
    gateway = Gateway(GatewaySettings(kafka=KAFKA, sites_file=sites), REGISTRY, SiteDirectory.load(sites))
    collector = Collector(CollectorSettings(
        site_id="s", site_secret="x", state_dir=tmp_path / "c", gateway_url="https://127.0.0.1:1", gateway_token="t",
        printer_urls=("https://127.0.0.1:1/printers/p1/",), status_port=-1,
    ), REGISTRY)
    sink = ClickHouseSink(SinkSettings(kafka=KAFKA, clickhouse=ClickHouseSettings("http://127.0.0.1:1")), REGISTRY)
    worker = create_app(WorkerSettings(kafka=KAFKA, app_id="w", data_dir=tmp_path / "w"), REGISTRY)
    webhook = Forwarder(WebhookSettings(kafka=KAFKA, url="http://127.0.0.1:1/hook", secret=Secret("s")), REGISTRY)
    return {"gateway": gateway.ops.registry, "collector": collector.ops.registry, "sink": sink.ops.registry,
            "worker": worker.ops.registry, "webhook": webhook.ops.registry}


async def test_every_component_follows_the_naming_conventions(tmp_path: Path) -> None:
    for component, registry in (await _registries(tmp_path)).items():
        assert naming_problems(registry, component) == [], component


async def test_the_metrics_the_issue_asks_for_are_there(tmp_path: Path) -> None:
    names = {c: _names(r) for c, r in (await _registries(tmp_path)).items()}
    assert {"printfleet_gateway_batches_total", "printfleet_gateway_records_produced_total",
            "printfleet_gateway_batch_duration_seconds", "printfleet_gateway_kafka_commit_duration_seconds"} <= names["gateway"]
    assert {"printfleet_collector_records_polled_total", "printfleet_collector_poll_failures_total",
            "printfleet_collector_upload_duration_seconds", "printfleet_collector_spool_depth_records",
            "printfleet_collector_spool_oldest_record_age_seconds"} <= names["collector"]
    assert {"printfleet_worker_records_applied_total", "printfleet_worker_records_dead_lettered_total",
            "printfleet_worker_records_late_total", "printfleet_worker_checkpoint_duration_seconds",
            "printfleet_worker_consumer_lag_records"} <= names["worker"]
    assert {"printfleet_sink_rows_inserted_total", "printfleet_sink_insert_duration_seconds",
            "printfleet_sink_consumer_lag_records", "printfleet_sink_records_dead_lettered_total"} <= names["sink"]
    assert {"printfleet_webhook_retries_total", "printfleet_webhook_oldest_undelivered_age_seconds",
            "printfleet_webhook_dead_lettered_total"} <= names["webhook"]


async def test_docs_list_every_metric_and_no_other(tmp_path: Path) -> None:
    documented = set(re.findall(r"^\| `(printfleet_\w+)`", DOC.read_text(), re.MULTILINE))
    served = set().union(*(_names(r) for r in (await _registries(tmp_path)).values()))
    assert documented == served


def test_each_gateway_batch_has_one_outcome() -> None:
    """A 503 is counted in batches_refused and in kafka_unavailable: "refused" is the rest."""
    counters = GatewayCounters(batches_accepted=5, batches_duplicate=2, batches_refused=4, kafka_unavailable=3)
    (batches, *_) = gateway_metrics.counter_families(counters)
    by_outcome = {s.labels["outcome"]: s.value for s in batches.samples}
    assert by_outcome == {"accepted": 5, "duplicate": 2, "refused": 1, "unavailable": 3}


def test_collector_readiness_names_the_silent_printers_and_the_failed_upload() -> None:
    up = PrinterStatus("https://p1/", reachable=True)
    down = PrinterStatus("https://p2/", reachable=False, last_error="api/v1/status: HTTP 500")
    assert collector_metrics.printers_reason([up, down]) is None  # one answering is enough
    reason = collector_metrics.printers_reason([down, PrinterStatus("https://p3/")])
    assert reason is not None and "https://p2/ (api/v1/status: HTTP 500)" in reason and "https://p3/ (not polled yet)" in reason
    assert collector_metrics.gateway_reason(UploaderCounters()) is None  # no upload yet: nothing says it is away
    failed = UploaderCounters(last_success_at=100.0, last_failure_at=200.0, last_error="gateway unreachable: refused")
    assert "gateway unreachable: refused" in (collector_metrics.gateway_reason(failed) or "")
    assert collector_metrics.gateway_reason(UploaderCounters(last_success_at=300.0, last_failure_at=200.0)) is None
