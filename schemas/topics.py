"""Kafka topic names: the contract between producers, streams and sinks.

Telemetry topics carry one record kind each, keyed by device id, so that all records of a
printer land in one partition, in order.
"""

from __future__ import annotations

from typing import Final

from schemas.kinds import DEVICE_KINDS, KINDS

TELEMETRY_PREFIX: Final = "telemetry."
# Records that could not be processed, with the reason in their headers; never dropped.
DEAD_LETTER: Final = "deadletter"
# Utilisation of whole sites: `utilisation` records whose device_id is "" (all printers of
# the site), on their own topic so that summing the per-printer topic never counts twice.
SITE_UTILISATION: Final = "aggregates.utilisation.site"
# Partitions of every telemetry topic: enough for two stream workers and two sink
# consumers to share the load on a small machine.
TELEMETRY_PARTITIONS: Final = 6

_CLOUD_TOPICS: Final = {
    "alert": "alerts",
    "utilisation": "aggregates.utilisation",
    "fleet_state": "fleet.state",
    "benchmark": "aggregates.benchmark",
    "update_advisory": "advisories",
}


def topic_for(kind: str) -> str:
    """The topic that carries records of `kind`. Raises KeyError for an unknown kind."""
    if kind in DEVICE_KINDS:
        return TELEMETRY_PREFIX + kind
    if kind in KINDS:
        return _CLOUD_TOPICS[kind]
    raise KeyError(f"unknown record kind {kind!r}")


def telemetry_topics() -> tuple[str, ...]:
    return tuple(topic_for(kind) for kind in DEVICE_KINDS)
