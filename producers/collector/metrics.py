"""The collector's metrics and readiness, served with its status page (common/ops.py).
Names and meanings: docs/metrics.md.

The counters are the drivers', the uploader's and the spool's own, read at each scrape
(booked once); the upload histogram is observed around each upload.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence

from prometheus_client import Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from common.ops import OpsServer
from producers.collector.device_sink import PrinterStatus
from producers.collector.uploader import UploaderCounters
from producers.collector.kept import KeptStore
from producers.spool.spool import SpoolStats

# An upload of up to 5,000 records over the site's uplink: a fraction of a second to the
# 30 s request timeout.
UPLOAD_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class CollectorMetrics:
    def __init__(self, ops: OpsServer) -> None:
        self.upload_seconds = Histogram(
            "printfleet_collector_upload_duration_seconds",
            "Time of one upload to the gateway, from the request to its answer or failure.",
            buckets=UPLOAD_BUCKETS, registry=ops.registry,
        )


def families(printers: Sequence[PrinterStatus], uploads: UploaderCounters, spool: SpoolStats,
             kept: KeptStore) -> Iterable[Metric]:
    """The drivers', uploader's, spool's and kept-aside store's counters and gauges.
    `printer` labels carry the printer's configured URL: set in site.toml, so a fixed,
    small set per site; `reason` labels the gateway's refusal codes."""
    polled = CounterMetricFamily("printfleet_collector_records_polled",
                                 "Records read from the printers and appended to the spool, per kind.", labels=["kind"])
    by_kind: dict[str, int] = {}
    for p in printers:
        for kind, n in p.spooled_by_kind.items():
            by_kind[kind] = by_kind.get(kind, 0) + n
    for kind, n in sorted(by_kind.items()):
        polled.add_metric([kind], n)
    yield polled
    failures = CounterMetricFamily("printfleet_collector_poll_failures",
                                   "Polls of a printer that got no usable answer.", labels=["printer"])
    for p in printers:
        failures.add_metric([p.base_url], p.poll_failures)
    yield failures
    yield CounterMetricFamily("printfleet_collector_records_unmappable",
                              "Printer answers that fit no schema, kept aside in the state folder.",
                              value=sum(p.unmappable for p in printers))
    yield GaugeMetricFamily("printfleet_collector_answering_printers",
                            "Printers whose last poll was answered.", value=sum(p.reachable for p in printers))
    yield CounterMetricFamily("printfleet_collector_upload_batches", "Batches the gateway accepted.", value=uploads.batches)
    yield CounterMetricFamily("printfleet_collector_records_uploaded", "Records the gateway accepted.", value=uploads.records)
    yield CounterMetricFamily("printfleet_collector_upload_bytes", "Compressed bytes sent to the gateway.",
                              value=uploads.wire_bytes)
    yield CounterMetricFamily("printfleet_collector_upload_failures",
                              "Uploads that failed (gateway away, busy, 5xx, credential refused); retried.",
                              value=uploads.failures)
    yield CounterMetricFamily("printfleet_collector_batches_rejected",
                              "Batches the gateway refused for their content, kept in the rejected folder.",
                              value=uploads.rejected_batches)
    yield CounterMetricFamily("printfleet_collector_records_refused",
                              "Records the gateway refused one by one (kept aside, or rejected for good).",
                              value=uploads.records_refused)
    yield CounterMetricFamily("printfleet_collector_records_rejected",
                              "Records refused for good (corrupt, another site's): written to the rejected folder.",
                              value=uploads.records_rejected)
    by_reason: dict[str, int] = {}
    for reasons in kept.counts().values():
        for reason, n in reasons.items():
            by_reason[reason] = by_reason.get(reason, 0) + n
    kept_records = GaugeMetricFamily("printfleet_collector_kept_aside_records",
                                     "Records kept aside to be sent again (an unenrolled printer, a schema the "
                                     "gateway does not know yet), per refusal reason.", labels=["reason"])
    for reason, n in sorted(by_reason.items()):
        kept_records.add_metric([reason], n)
    yield kept_records
    yield GaugeMetricFamily("printfleet_collector_kept_aside_bytes", "Bytes of the records kept aside.",
                            value=kept.bytes)
    yield CounterMetricFamily("printfleet_collector_kept_aside_resent_records",
                              "Kept records put back into the spool to be sent again.", value=kept.counters.resent)
    yield CounterMetricFamily("printfleet_collector_kept_aside_evicted_records",
                              "Kept records moved to the rejected folder: the store was full.",
                              value=kept.counters.evicted)
    yield GaugeMetricFamily("printfleet_collector_spool_depth_records", "Records in the spool not yet uploaded.",
                            value=spool.pending_records)
    yield GaugeMetricFamily("printfleet_collector_spool_depth_bytes", "Bytes of the records in the spool not yet uploaded.",
                            value=spool.pending_bytes)
    yield GaugeMetricFamily("printfleet_collector_spool_oldest_record_age_seconds",
                            "Age of the oldest record in the spool (0 when empty).", value=spool.oldest_age_s or 0.0)
    yield CounterMetricFamily("printfleet_collector_spool_dropped_records",
                              "Heartbeats the full spool dropped to make room (since the start).",
                              value=spool.dropped_records)


def printers_reason(printers: Sequence[PrinterStatus]) -> str | None:
    """Ready when at least one printer answered its last poll; the reason names the
    printers that did not."""
    silent = [p for p in printers if not p.reachable]
    if printers and len(silent) == len(printers):
        return "no printer answers: " + ", ".join(f"{p.base_url} ({p.last_error or 'not polled yet'})" for p in silent)
    return None


def gateway_reason(uploads: UploaderCounters) -> str | None:
    """Ready unless the last upload failed (none yet: nothing says the gateway is away)."""
    failed, succeeded = uploads.last_failure_at, uploads.last_success_at
    if failed is not None and (succeeded is None or failed > succeeded):
        return f"last upload failed {time.time() - failed:.0f}s ago: {uploads.last_error[:200]}"
    return None
