"""The stream worker's metrics and readiness, served on its ops listener (common/ops.py)
by a task of the Faust app (streams/app.py). Names and meanings: docs/metrics.md.

The counters are the agent's own `Counters` and the reader's `missing`, read at each
scrape (booked once); the checkpoint histogram is observed around each partition's
transaction; lag per topic is read from the reader's consumer just before a scrape.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import Gauge, Histogram
from prometheus_client.core import CounterMetricFamily
from prometheus_client.metrics_core import Metric

from common.ops import OpsServer
from streams.device_agent import Counters
from streams.telemetry_reader import TelemetryReader

# One partition's transaction of states, outputs and its book: milliseconds to tens of
# milliseconds; seconds when Kafka is slow or a transaction has to be retried.
CHECKPOINT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class WorkerMetrics:
    def __init__(self, ops: OpsServer, reader: TelemetryReader) -> None:
        self._reader = reader
        self.checkpoint_seconds = Histogram(
            "printfleet_worker_checkpoint_duration_seconds",
            "Time of one partition's checkpoint: its outputs, states and position in one Kafka transaction.",
            buckets=CHECKPOINT_BUCKETS, registry=ops.registry,
        )
        self.lag = Gauge(
            "printfleet_worker_consumer_lag_records",
            "Records in the worker's own partitions not yet handed to the agent, per topic.",
            ["topic"], registry=ops.registry,
        )
        ops.before_scrape(self.show_lag)

    async def show_lag(self) -> None:
        by_topic = await self._reader.lag_by_topic()
        self.lag.clear()  # partitions that moved to another worker drop out
        for topic, lag in sorted((by_topic or {}).items()):
            self.lag.labels(topic).set(lag)


def counter_families(c: Counters, reader: TelemetryReader) -> Iterable[Metric]:
    """The agent's `Counters` and the reader's missing records as Prometheus counters."""
    yield CounterMetricFamily("printfleet_worker_records_applied", "Telemetry records applied to the printers' states.",
                              value=c.applied)
    yield CounterMetricFamily("printfleet_worker_records_repeated",
                              "Records seen before (a replay after a restart or rebalance), skipped.", value=c.repeats)
    yield CounterMetricFamily("printfleet_worker_outputs", "Records written to the output topics.", value=c.outputs)
    yield CounterMetricFamily("printfleet_worker_records_dead_lettered",
                              "Records that could not be applied, put on the dead-letter topic.", value=c.dead_letters)
    yield CounterMetricFamily("printfleet_worker_records_late",
                              "Records later than the allowed lateness (dead-lettered, and counted there too).",
                              value=c.late)
    yield CounterMetricFamily("printfleet_worker_checkpoints", "Partition checkpoints committed.", value=c.checkpoints)
    yield CounterMetricFamily("printfleet_worker_records_missing",
                              "Records deleted by retention before the worker read them (at most).", value=reader.missing)


async def consumer_reason(reader: TelemetryReader) -> str | None:
    return None if reader.running else "the telemetry consumer is not running (starting, or stopped)"
