"""The gateway's metrics and readiness, served on its ops listener (common/ops.py), never
on the public upload port. Names and meanings: docs/metrics.md.

The counters are the gateway's own `GatewayCounters`, read at each scrape (booked once);
the histograms are observed where the time passes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING

from aiohttp import web
from prometheus_client import Counter, Histogram
from prometheus_client.core import CounterMetricFamily
from prometheus_client.metrics_core import Metric

from common.ops import OpsServer

if TYPE_CHECKING:
    from producers.gateway.gateway import GatewayCounters

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# An upload of up to 5,000 records takes tens of milliseconds when Kafka is well, and up to
# the Kafka timeout (15 s) when it is not.
BATCH_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0, 30.0)
COMMIT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0)


class GatewayMetrics:
    """Created by whoever serves the ops endpoints, handed to the `Gateway` (`metrics=`)."""

    def __init__(self, ops: OpsServer) -> None:
        self.batch_seconds = Histogram(
            "printfleet_gateway_batch_duration_seconds",
            "Time from an upload's arrival to its answer, every outcome.",
            buckets=BATCH_BUCKETS, registry=ops.registry,
        )
        self.commit_seconds = Histogram(
            "printfleet_gateway_kafka_commit_duration_seconds",
            "Time of one Kafka transaction of uploads (a group commit), committed or not.",
            buckets=COMMIT_BUCKETS, registry=ops.registry,
        )
        self.commit_failures = Counter(
            "printfleet_gateway_kafka_commit_failures",
            "Kafka transactions of uploads that did not commit (the uploads were answered 503).",
            registry=ops.registry,
        )

    def committed(self, seconds: float, ok: bool) -> None:
        self.commit_seconds.observe(seconds)
        if not ok:
            self.commit_failures.inc()


def counter_families(c: GatewayCounters) -> Iterable[Metric]:
    """`GatewayCounters` as Prometheus counters. A batch has one outcome: kafka_unavailable
    batches are also counted in batches_refused, so "refused" is the difference."""
    batches = CounterMetricFamily(
        "printfleet_gateway_batches", "Uploaded batches by outcome.", labels=["outcome"],
    )
    batches.add_metric(["accepted"], c.batches_accepted)
    batches.add_metric(["duplicate"], c.batches_duplicate)
    batches.add_metric(["refused"], c.batches_refused - c.kafka_unavailable)
    batches.add_metric(["unavailable"], c.kafka_unavailable)
    yield batches
    yield CounterMetricFamily("printfleet_gateway_records_produced", "Records produced to Kafka (committed).",
                              value=c.records_produced)
    yield CounterMetricFamily("printfleet_gateway_records_repeated",
                              "Records acknowledged as repeats of ones already in Kafka.", value=c.records_repeated)
    yield CounterMetricFamily("printfleet_gateway_records_dead_lettered",
                              "Records refused for good (corrupt, another site's), put on the dead-letter topic.",
                              value=c.records_dead_lettered)
    yield CounterMetricFamily("printfleet_gateway_records_refused",
                              "Records refused one by one in accepted batches (an unenrolled printer, a corrupt "
                              "record); the rest of their batch was produced.", value=c.records_refused)
