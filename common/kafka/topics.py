"""The topic registry: every topic printfleet reads or writes, defined once.

    telemetry.<kind>             one per device kind, keyed by device id, so a printer's
                                 records land in one partition, in order
    fleet.state                  compacted: the newest state per printer
    alerts, aggregates.utilisation, aggregates.utilisation.site, aggregates.benchmark,
    advisories                   the worker's outputs
    catalogue.releases           compacted: the maker's signed release catalogue
    deadletter                   what no component could process (`common.kafka.deadletter`)
    gateway.uploads              compacted: per site collector, the highest sequence number
                                 any gateway produced (`producers.gateway.uploads`)
    <app id>-...                 a stream worker's own topics (`worker_topics`)

Names here are the registry's; on the cluster each gets `KafkaSettings.topic_prefix`
in front (`KafkaSettings.topic`). Replication: a topic takes the cluster's (the
settings': production 3 replicas and min.insync.replicas 2, the local single-node stack
1 and 1, `deploy.settings.StackSettings.kafka`) unless its entry here says otherwise.
Topics are created or checked only by `common.kafka.admin`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from common.kafka.settings import KafkaSettings
from schemas.kinds import CLOUD_KINDS, DEVICE_KINDS, KINDS

TELEMETRY_PREFIX: Final = "telemetry."
DEAD_LETTER: Final = "deadletter"
# Utilisation of whole sites: `utilisation` records whose device_id is "" (all printers of
# the site), on their own topic so that summing the per-printer topic never counts twice.
SITE_UTILISATION: Final = "aggregates.utilisation.site"
CATALOGUE: Final = "catalogue.releases"
GATEWAY_UPLOADS: Final = "gateway.uploads"
# Partitions of every keyed topic: the unit of parallelism. Telemetry, the worker's
# outputs and its internal topics must agree (a printer's records and its state meet on
# one worker), so this is one number, fixed at creation.
PARTITIONS: Final = 6

DAY_MS: Final = 24 * 3600 * 1000

_CLOUD_TOPICS: Final = {
    "alert": "alerts",
    "utilisation": "aggregates.utilisation",
    "fleet_state": "fleet.state",
    "benchmark": "aggregates.benchmark",
    "update_advisory": "advisories",
}


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """One topic as the registry wants it. `retention_ms` None: the broker's default;
    `replication_factor`/`min_insync_replicas` None: the cluster's (`replicas()`)."""

    name: str
    partitions: int
    compacted: bool = False
    retention_ms: int | None = None
    replication_factor: int | None = None
    min_insync_replicas: int | None = None

    @property
    def cleanup_policy(self) -> str:
        return "compact" if self.compacted else "delete"

    def replicas(self, settings: KafkaSettings) -> tuple[int, int]:
        """(replication factor, min.insync.replicas) of this topic on `settings`' cluster."""
        factor = self.replication_factor or settings.replication_factor
        return factor, min(self.min_insync_replicas or settings.min_insync_replicas, factor)


def topic_for(kind: str) -> str:
    """The registry name of the topic that carries records of `kind`. Raises KeyError."""
    if kind in DEVICE_KINDS:
        return TELEMETRY_PREFIX + kind
    if kind in KINDS:
        return _CLOUD_TOPICS[kind]
    raise KeyError(f"unknown record kind {kind!r}")


def telemetry_topics() -> tuple[str, ...]:
    return tuple(topic_for(kind) for kind in DEVICE_KINDS)


def pipeline_topics() -> tuple[TopicSpec, ...]:
    """Every topic shared between components, whoever writes or reads it."""
    telemetry = [TopicSpec(name, PARTITIONS, retention_ms=7 * DAY_MS) for name in telemetry_topics()]
    outputs = [TopicSpec(topic_for(kind), PARTITIONS, compacted=kind == "fleet_state") for kind in CLOUD_KINDS]
    return (
        *telemetry,
        *outputs,
        TopicSpec(SITE_UTILISATION, PARTITIONS),
        TopicSpec(CATALOGUE, 1, compacted=True),
        TopicSpec(DEAD_LETTER, PARTITIONS, retention_ms=30 * DAY_MS),
        # One small record per site collector, read whole by every gateway at start.
        TopicSpec(GATEWAY_UPLOADS, 1, compacted=True),
    )


# A stream worker's own topics, named after its app id as Faust names them.
WORKER_INTERNAL: Final = ("ticks", "windows-by-site", "sites-by-cohort")
# The worker's changelogs, written in its transactions (streams/partition_transactions.py).
WORKER_CHANGELOGS: Final = ("partition-states", "partition-books")
# Faust's leader topic (faust/assignor/leader_assignor.py): the member that gets its one
# partition runs the leader timers.
FAUST_LEADER: Final = "__assignor-__leader"


def worker_internal(app_id: str) -> tuple[str, str, str]:
    """Registry names of a worker's ticks, windows-by-site and sites-by-cohort topics."""
    ticks, by_site, by_cohort = (f"{app_id}-{name}" for name in WORKER_INTERNAL)
    return ticks, by_site, by_cohort


def worker_topics(app_id: str) -> tuple[TopicSpec, ...]:
    """The topics a stream worker with this (prefixed) app id uses besides the pipeline's."""
    internal = [TopicSpec(f"{app_id}-{name}", PARTITIONS) for name in WORKER_INTERNAL]
    changelogs = [TopicSpec(f"{app_id}-{name}", PARTITIONS, compacted=True) for name in WORKER_CHANGELOGS]
    return (*internal, *changelogs, TopicSpec(f"{app_id}-{FAUST_LEADER}", 1))


def pipeline_specs(names: Iterable[str]) -> tuple[TopicSpec, ...]:
    """The registry's entries of these shared topics. Raises KeyError for a name it lacks."""
    registered = {spec.name: spec for spec in pipeline_topics()}
    return tuple(registered[name] for name in dict.fromkeys(names))
