"""The Avro single-object codec as a Faust serializer (`value_serializer="printfleet-avro"`).

Loading never raises: a message that does not decode becomes `Undecodable` with the
reason and the original bytes, so the agent can send it to the dead-letter topic and go
on. (A codec error inside Faust would stop the stream or drop the message, and a
telemetry pipeline must do neither.) Dumping takes `(kind, record)` pairs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from faust.serializers import codecs

from schemas import Decoded, SchemaError, SchemaRegistry

CODEC_NAME: Final = "printfleet-avro"


@dataclass(frozen=True)
class Undecodable:
    data: bytes
    reason: str


class AvroCodec(codecs.Codec):
    def __init__(self, registry: SchemaRegistry) -> None:
        super().__init__()
        self.registry = registry

    def decode(self, data: bytes) -> Decoded | Undecodable:
        """The message decoded, or why it is not (also for records read outside Faust)."""
        try:
            return self.registry.decode(data)
        except SchemaError as exc:
            return Undecodable(bytes(data), f"{type(exc).__name__}: {exc}")

    def _loads(self, s: bytes) -> Decoded | Undecodable:
        return self.decode(s)

    def _dumps(self, obj: Any) -> bytes:
        kind, record = obj
        return self.registry.encode(kind, record)


def install(registry: SchemaRegistry) -> None:
    """Register the codec under CODEC_NAME (Faust's codec registry is process-wide;
    registering again replaces it with an equal codec)."""
    codecs.register(CODEC_NAME, AvroCodec(registry))
