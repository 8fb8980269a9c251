"""The sink's metrics and readiness, served on its ops listener (common/ops.py). Names and
meanings: docs/metrics.md.

The counters are the sink's own `SinkCounters`, read at each scrape (booked once); the
insert histogram is observed around each insert; lag per topic is asked of the brokers
just before a scrape (`ClickHouseSink.status`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from prometheus_client import Gauge, Histogram
from prometheus_client.core import CounterMetricFamily
from prometheus_client.metrics_core import Metric

from common.ops import OpsServer

if TYPE_CHECKING:
    from sinks.clickhouse import SinkCounters, SinkStatus

# One insert of a batch (up to 20,000 rows) into one table: tens of milliseconds on a
# healthy server, seconds when it merges hard or is away.
INSERT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class SinkMetrics:
    def __init__(self, ops: OpsServer) -> None:
        self.insert_seconds = Histogram(
            "printfleet_sink_insert_duration_seconds", "Time of one insert of a batch into one ClickHouse table.",
            ["table"], buckets=INSERT_BUCKETS, registry=ops.registry,
        )
        self.lag = Gauge(
            "printfleet_sink_consumer_lag_records",
            "Records in the sink's assigned partitions not yet stored and committed, per topic.",
            ["topic"], registry=ops.registry,
        )
        self.paused = Gauge(
            "printfleet_sink_paused_seconds", "How long the sink has been waiting to retry a write (0: running).",
            registry=ops.registry,
        )
        self.assigned = Gauge(
            "printfleet_sink_assigned_partitions", "Partitions assigned to this sink.", registry=ops.registry,
        )

    def show(self, status: SinkStatus) -> None:
        """Set the gauges from a status snapshot; topics no longer assigned drop out."""
        self.lag.clear()
        for topic, lag in status.lag.items():
            self.lag.labels(topic).set(lag)
        self.paused.set(status.paused_for_s)
        self.assigned.set(status.assigned)


def counter_families(c: SinkCounters) -> Iterable[Metric]:
    """`SinkCounters` as Prometheus counters."""
    yield CounterMetricFamily("printfleet_sink_records_consumed", "Records fetched from Kafka into batches.",
                              value=c.records_in)
    yield CounterMetricFamily("printfleet_sink_records_stored", "Records whose batch was written and committed.",
                              value=c.records_stored)
    rows = CounterMetricFamily("printfleet_sink_rows_inserted", "Rows inserted, per table (child rows included).",
                               labels=["table"])
    for table, count in sorted(c.rows_by_table.items()):
        rows.add_metric([table], count)
    yield rows
    yield CounterMetricFamily("printfleet_sink_batches_written", "Batches written and committed.",
                              value=c.batches_written)
    yield CounterMetricFamily("printfleet_sink_records_dead_lettered",
                              "Records that could not be stored, put on the dead-letter topic.", value=c.dead_lettered)
    yield CounterMetricFamily("printfleet_sink_write_retries", "Writes or commits that failed and were retried later.",
                              value=c.retries)
    yield CounterMetricFamily("printfleet_sink_kafka_commits", "Offset commits to Kafka.", value=c.commits)
