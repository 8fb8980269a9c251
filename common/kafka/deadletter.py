"""The dead-letter contract: one topic, one header scheme, for every component.

A message no component can process goes to the `deadletter` topic (registry name; the
prefix applies) unchanged: same key, same value, its own headers kept (telemetry as the
gateway writes it has none, so the worker has none to keep), and these added:

    deadletter.reason            what was wrong, in words
    deadletter.error             the error class, e.g. UnknownFingerprintError
    deadletter.component         gateway | worker | sink | webhook
    deadletter.stage             where in that component: upload | decode | apply | convert | deliver
    deadletter.origin.topic      where the message was (the gateway: where it was headed)
    deadletter.origin.partition  -1 when it never was in Kafka (the gateway)
    deadletter.origin.offset     -1 when it never was in Kafka
    deadletter.origin.timestamp  its Kafka timestamp in ms; for the gateway, when refused

Each component sends its dead letters with acks=all and waits for the acknowledgement
before it moves past the message (commits its offset, answers the upload). A replay may
send a letter again: the origin headers (topic, partition, offset) identify a repeat.
What each component dead-letters is listed in docs/dead-letters.md.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final

PREFIX: Final = "deadletter."
COMPONENTS: Final = ("gateway", "worker", "sink", "webhook")


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a dead letter came from."""

    component: str
    stage: str
    topic: str
    partition: int = -1
    offset: int = -1
    timestamp_ms: int = -1


def headers(origin: Origin, reason: str, error: str, kept: Iterable[tuple[str, bytes]] = ()) -> list[tuple[str, bytes]]:
    """The message's own headers (`kept`), then the contract's."""
    if origin.component not in COMPONENTS:
        raise ValueError(f"unknown dead-letter component {origin.component!r}")
    own = {
        "reason": reason,
        "error": error,
        "component": origin.component,
        "stage": origin.stage,
        "origin.topic": origin.topic,
        "origin.partition": str(origin.partition),
        "origin.offset": str(origin.offset),
        "origin.timestamp": str(origin.timestamp_ms),
    }
    return [*((k, bytes(v)) for k, v in kept if not k.startswith(PREFIX)),
            *((PREFIX + k, v.encode()) for k, v in own.items())]


def read(message_headers: Iterable[tuple[str, bytes]]) -> Mapping[str, str]:
    """The contract's headers of a dead letter, without the prefix (for tools and tests)."""
    return {k.removeprefix(PREFIX): bytes(v).decode() for k, v in message_headers if k.startswith(PREFIX)}
