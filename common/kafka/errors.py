"""Errors of the Kafka layer (`common.kafka`), where aiokafka's are translated.

    PrintfleetError
    └── KafkaLayerError          root of this subtree
        ├── KafkaUnavailable     retriable  no broker answered, or not in time, or a write
        │   │                               was not acknowledged; nothing was lost
        │   └── KafkaRefused     not retriable  the cluster refused our credentials, our
        │                                   certificate or an operation (no ACL); an
        │                                   operator has to act. Still "unavailable" to
        │                                   callers that only wait (the gateway answers 503)
        └── TopicMismatch        not retriable  a topic exists with other partitions or
                                 another cleanup policy than the registry's, or the cluster
                                 has fewer brokers than the replication factor

Every client of `common.kafka.clients` raises aiokafka's errors as they are; the
components translate them at their one boundary with `common.kafka.diagnose.failure`.
"""

from __future__ import annotations

from common.errors import PrintfleetError


class KafkaLayerError(PrintfleetError):
    retriable = False


class KafkaUnavailable(KafkaLayerError):
    """Kafka did not answer or acknowledge in time; the caller should retry later,
    after `retry_after` seconds when the raiser knows better than its backoff."""

    retriable = True

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class KafkaRefused(KafkaUnavailable):
    """Kafka refused the credentials, the certificate or the client's rights."""

    retriable = False


class TopicMismatch(KafkaLayerError):
    """The cluster's topics cannot be made to match the registry without an operator:
    `printfleet topics plan` shows what differs."""

    retriable = False
