"""Decoding a message the worker reads: never raises.

A message that does not decode becomes `Undecodable` with the reason and the original
bytes, so the agent can send it to the dead-letter topic and go on: a telemetry pipeline
must neither stop nor drop a message it cannot read.
"""

from __future__ import annotations

from dataclasses import dataclass

from schemas import Decoded, SchemaError, SchemaRegistry


@dataclass(frozen=True)
class Undecodable:
    data: bytes
    reason: str


def decode(registry: SchemaRegistry, data: bytes) -> Decoded | Undecodable:
    """The message decoded, or why it is not."""
    try:
        return registry.decode(data)
    except SchemaError as exc:
        return Undecodable(bytes(data), f"{type(exc).__name__}: {exc}")
