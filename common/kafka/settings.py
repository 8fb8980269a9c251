"""How every printfleet component reaches Kafka: one settings object for connecting.

`KafkaSettings` is built once per process (flags, then `PRINTFLEET_KAFKA_*` variables;
see `printfleet/kafka_flags.py`) and handed to `common.kafka.clients`, which makes every
producer, consumer and admin client from it, and to Faust (`clients.faust_options`).
Transport security (TLS, SASL) belongs here and nowhere else.

Replication is a property of the cluster, not of one topic: production defaults are a
replication factor of 3 and `min.insync.replicas` 2 (with acks=all a write survives one
broker's loss); the local single-broker stack overrides both to 1 in one place,
`deploy.settings.StackSettings.kafka`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

_LEGAL = re.compile(r"[A-Za-z0-9._-]*")


@dataclass(frozen=True, slots=True)
class KafkaSettings:
    bootstrap_servers: str
    # Put before every topic and consumer group name: two deployments (or a benchmark
    # and the user's pipeline) share one cluster without seeing each other's records.
    topic_prefix: str = ""
    client_id: str = "printfleet"
    request_timeout_s: float = 30.0
    replication_factor: int = 3
    min_insync_replicas: int = 2

    def __post_init__(self) -> None:
        if not self.bootstrap_servers.strip():
            raise ValueError("Kafka bootstrap servers are empty (host:port[,host:port...])")
        if not _LEGAL.fullmatch(self.topic_prefix):
            raise ValueError(f"topic prefix {self.topic_prefix!r}: only letters, digits, '.', '_' and '-'")
        if self.replication_factor < 1 or not 1 <= self.min_insync_replicas <= self.replication_factor:
            raise ValueError(
                f"replication factor {self.replication_factor} and min.insync.replicas {self.min_insync_replicas}: "
                "need 1 <= min.insync.replicas <= replication factor"
            )
        if self.request_timeout_s <= 0:
            raise ValueError("request_timeout_s must be positive")

    def topic(self, name: str) -> str:
        """The cluster's name of registry topic `name` (see `common.kafka.topics`)."""
        return self.topic_prefix + name

    def group(self, name: str) -> str:
        """The cluster's name of consumer group (or Faust app id) `name`."""
        return self.topic_prefix + name

    def connection(self) -> dict[str, Any]:
        """Keyword arguments every aiokafka client gets: where and how to connect."""
        return {"bootstrap_servers": self.bootstrap_servers, "client_id": self.client_id}

    @property
    def request_timeout_ms(self) -> int:
        return int(self.request_timeout_s * 1000)
