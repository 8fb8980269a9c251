"""The forwarder's metrics, on its ops listener (common/ops.py); names and meanings in
docs/metrics.md. Counters are the forwarder's own `ForwardCounters`, read at each scrape."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric


@dataclass
class ForwardCounters:
    delivered: int = 0  # changes the receiver answered 2xx (and committed past)
    filtered: int = 0  # changes the filters left out (committed past)
    retries: int = 0  # failed attempts that were tried again
    dead_lettered: int = 0  # changes refused for good, or not alerts, put on the dead-letter topic


def families(c: ForwardCounters, oldest_undelivered_s: Callable[[], float]) -> Iterable[Metric]:
    yield CounterMetricFamily("printfleet_webhook_deliveries", "Alert changes the receiver acknowledged (2xx).",
                              value=c.delivered)
    yield CounterMetricFamily("printfleet_webhook_filtered", "Alert changes the filters left out, committed past.",
                              value=c.filtered)
    yield CounterMetricFamily("printfleet_webhook_retries", "Attempts that failed and were tried again.",
                              value=c.retries)
    yield CounterMetricFamily("printfleet_webhook_dead_lettered",
                              "Changes refused for good by the receiver, or not alerts, put on the dead-letter topic.",
                              value=c.dead_lettered)
    yield GaugeMetricFamily("printfleet_webhook_oldest_undelivered_age_seconds",
                            "Age (from its Kafka timestamp) of the change being delivered now; 0 when idle.",
                            value=oldest_undelivered_s())
