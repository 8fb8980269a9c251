"""Every Kafka client of printfleet is made here, from one `KafkaSettings`.

Producers write with acks=all and idempotence unless told otherwise: a broker retry then
never writes a record twice, and an acknowledged record is on every in-sync replica.
Consumers never commit on their own (`enable_auto_commit=False`): each component commits
what it has made durable. They read committed records only (`read_committed`): the
gateway writes in transactions, and a record of an aborted one was never acknowledged.
A transactional producer's id is a registry name like a group's, prefixed here. Options a component passes go on top of these.
"""

from __future__ import annotations

from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import IllegalOperation, KafkaError

from common.kafka.settings import KafkaSettings

# What a transactional producer raises once its transaction cannot go on. One fenced while
# a request of its own was in flight (another producer with its transactional id started,
# or the broker timed its transaction out) is left in aiokafka's fatal state: `send` then
# raises IllegalOperation, and `begin_`, `commit_` or `abort_transaction` an AssertionError
# of its state machine, not a KafkaError. Such a producer can only be stopped.
TRANSACTION_ERRORS: tuple[type[Exception], ...] = (KafkaError, IllegalOperation, AssertionError)


def producer(settings: KafkaSettings, **options: Any) -> AIOKafkaProducer:
    base: dict[str, Any] = {"acks": "all", "enable_idempotence": True, "request_timeout_ms": settings.request_timeout_ms}
    if options.get("transactional_id") is not None:
        options["transactional_id"] = settings.group(options["transactional_id"])
    return AIOKafkaProducer(**settings.connection(), **{**base, **options})


def consumer(settings: KafkaSettings, *topics: str, **options: Any) -> AIOKafkaConsumer:
    """A consumer of `topics` (cluster names). Give `group_id` as a registry name: it is
    prefixed here, like the topics' are by `KafkaSettings.topic`."""
    base: dict[str, Any] = {
        "enable_auto_commit": False,
        "isolation_level": "read_committed",
        "request_timeout_ms": settings.request_timeout_ms + 5000,
    }
    if options.get("group_id") is not None:
        options["group_id"] = settings.group(options["group_id"])
    return AIOKafkaConsumer(*topics, **settings.connection(), **{**base, **options})


def admin_client(settings: KafkaSettings) -> AIOKafkaAdminClient:
    return AIOKafkaAdminClient(**settings.connection(), request_timeout_ms=settings.request_timeout_ms)


def faust_options(settings: KafkaSettings) -> dict[str, Any]:
    """What a `faust.App` needs to reach the same cluster as every other client."""
    servers = ";".join(f"kafka://{server.strip()}" for server in settings.bootstrap_servers.split(","))
    return {
        "broker": servers,
        "broker_client_id": settings.client_id,
        "broker_credentials": _faust_credentials(settings),
        "topic_replication_factor": settings.replication_factor,
        "producer_acks": -1,
    }


def _faust_credentials(settings: KafkaSettings) -> Any:
    """Faust's form of the same security settings (it hands them to its aiokafka clients)."""
    from faust.auth import SASLCredentials, SSLCredentials  # the worker's dependency only

    if settings.sasl:
        # An SSL context makes Faust say SASL_SSL, none SASL_PLAINTEXT (faust/auth.py).
        return SASLCredentials(username=settings.sasl_username, password=settings.password(),
                               ssl_context=settings.ssl_context() if settings.tls else None,
                               mechanism=settings.sasl_mechanism)
    if settings.tls:
        return SSLCredentials(settings.ssl_context())
    return None
