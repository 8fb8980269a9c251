"""The AsyncAPI 3.0 document of printfleet's public topics, generated from the topic
registry (`common.kafka.topics`), the .avsc files (`schemas`) and the dead-letter
contract (`common.kafka.deadletter`).

Called by `printfleet asyncapi`, which writes it; docs/asyncapi.json is its output,
committed, and a unit test fails when that file and this generator disagree, so the
document cannot drift from the code. Pure: no I/O, the same input gives the same bytes.

Public means what a tool outside the pipeline may read (or, for telemetry, write through
the gateway or a site's own Kafka): the telemetry topics, the worker's outputs, the dead
letters, and the release catalogue the maker's tooling writes (signed JSON, not Avro: its
JSON Schema is `schemas.release`). Left out: `gateway.uploads` (the gateways' own
bookkeeping).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from common.kafka import deadletter
from common.kafka.topics import (
    CATALOGUE, DAY_MS, DEAD_LETTER, GATEWAY_UPLOADS, SITE_UTILISATION, TopicSpec, pipeline_topics, topic_for,
)
from schemas import SchemaRegistry, SchemaVersion
from schemas.codec import MARKER
from schemas.kinds import CLOUD_KINDS, DEVICE_KINDS
from schemas.release import release_schema

ASYNCAPI_VERSION: Final = "3.0.0"
AVRO_FORMAT: Final = "application/vnd.apache.avro+json;version=1.9.0"
JSON_SCHEMA_FORMAT: Final = "application/schema+json;version=draft-07"
KAFKA_BINDING: Final = "0.5.0"
NOT_PUBLIC: Final = frozenset({GATEWAY_UPLOADS})

ENCODING: Final = (
    "Every value is one Avro record in the single-object encoding of the Avro specification: "
    f"the 2-byte marker {MARKER.hex(' ').upper()}, then the 8-byte CRC-64-AVRO (Rabin) fingerprint of the writer "
    "schema's Parsing Canonical Form, little-endian, then the Avro binary body. The fingerprint names the "
    "exact writer schema (x-fingerprint of each message below); no schema registry service is involved. "
    "A reader resolves the writer schema against the newest version it knows (Avro schema resolution)."
)

# What each kind's topic is keyed by (the partitioner hashes it: one key, one partition, in order).
_DEVICE_KEY: Final = "Printer id (device_id of the record), UTF-8: a printer's records stay in one partition, in order."
_KEYS: Final[Mapping[str, str]] = {
    SITE_UTILISATION: "Site id (site_id of the record), UTF-8.",
    topic_for("benchmark"): "Cohort key '<model_number>|<window start ms>', UTF-8.",
}
_CATALOGUE_KEY: Final = ("The entry's own key, chosen by the release tooling, UTF-8: compaction keeps the latest value "
                         "per key, so one key per release.")


def _key_of(topic: str) -> str:
    return _KEYS.get(topic, _DEVICE_KEY)


def public_topics() -> tuple[TopicSpec, ...]:
    """The registry's public topics, in its order."""
    return tuple(spec for spec in pipeline_topics() if spec.name not in NOT_PUBLIC)


def _kinds_of(topic: str) -> tuple[str, ...]:
    """Record kinds a topic carries (the dead-letter topic: any)."""
    if topic == SITE_UTILISATION:
        return ("utilisation",)
    return tuple(kind for kind in (*DEVICE_KINDS, *CLOUD_KINDS) if topic_for(kind) == topic)


def _message_name(schema: SchemaVersion) -> str:
    return f"{schema.kind}.v{schema.version}"


def _message(schema: SchemaVersion) -> dict[str, Any]:
    raw = dict(schema.raw)
    return {
        "name": _message_name(schema),
        "title": f"{raw['name']} v{schema.version}",
        "summary": str(raw.get("doc", "")),
        "contentType": "application/octet-stream",
        "payload": {"schemaFormat": AVRO_FORMAT, "schema": raw},
        "x-fingerprint": schema.fingerprint.hex(),
        "x-header": schema.header.hex(),
    }


def _channel_id(topic: str) -> str:
    return topic.replace(".", "-")


def _channel(spec: TopicSpec, registry: SchemaRegistry) -> dict[str, Any]:
    kinds = _kinds_of(spec.name)
    config: dict[str, Any] = {"cleanup.policy": [spec.cleanup_policy]}
    if spec.retention_ms is not None:
        config["retention.ms"] = spec.retention_ms
    channel: dict[str, Any] = {
        "address": spec.name,
        "bindings": {"kafka": {"topic": spec.name, "partitions": spec.partitions,
                               "topicConfiguration": config, "bindingVersion": KAFKA_BINDING}},
    }
    if spec.name == DEAD_LETTER:
        channel["description"] = (
            f"What no component could process, kept {spec.retention_ms // DAY_MS if spec.retention_ms else '?'} days: "
            "the message unchanged (same key and value, any record kind or bytes that are no record at all), "
            "its own headers kept, and the dead-letter headers added (docs/dead-letters.md).")
        channel["messages"] = {"deadLetter": {"$ref": "#/components/messages/deadLetter"}}
        return channel
    if spec.name == CATALOGUE:
        channel["description"] = (
            "The maker's release catalogue, compacted: the latest value of each key is one release entry "
            "(UTF-8 JSON, not Avro), a null value (tombstone) withdraws it. Written by the maker's release "
            "tooling (no printfleet command); every stream worker reads all of it, outside any consumer group, "
            "and advises only entries whose Ed25519 signature verifies (docs/worker.md).")
        channel["messages"] = {"release": {"$ref": "#/components/messages/release"}}
        return channel
    described = ", ".join(sorted({str(registry.reader(kind).raw.get("name")) for kind in kinds}))
    channel["description"] = (f"{described} records ({', '.join(kinds)}). Key: {_key_of(spec.name)} "
                              "Values in the single-object encoding; every schema version listed may appear.")
    channel["messages"] = {_message_name(v).replace(".", "-"): {"$ref": f"#/components/messages/{_message_name(v)}"}
                           for kind in kinds for v in registry.versions(kind)}
    return channel


def _dead_letter_message() -> dict[str, Any]:
    described = {
        "reason": "What was wrong, in words.",
        "error": "The error class, e.g. UnknownFingerprintError.",
        "component": f"Who dead-lettered it: {' | '.join(deadletter.COMPONENTS)}.",
        "stage": "Where in that component: upload | decode | apply | convert.",
        "origin.topic": "Topic the message was on (the gateway: where it was headed).",
        "origin.partition": "Its partition, as decimal text; -1 when it never was in Kafka (the gateway).",
        "origin.offset": "Its offset, as decimal text; -1 when it never was in Kafka.",
        "origin.timestamp": "Its Kafka timestamp in ms, as decimal text; for the gateway, when refused.",
    }
    return {
        "name": "deadLetter",
        "title": "Dead letter",
        "summary": "A message no component could process, with why and where it came from.",
        "contentType": "application/octet-stream",
        "headers": {
            "type": "object",
            "description": "Kafka headers (UTF-8 values). The message's own headers come first, unchanged.",
            "required": [deadletter.PREFIX + name for name in described],
            "properties": {deadletter.PREFIX + name: {"type": "string", "description": text}
                           for name, text in described.items()},
        },
        "payload": {"description": "The original value, byte for byte (usually a single-object encoded record)."},
        "bindings": {"kafka": {"key": {"type": "string", "description": "The original key, unchanged."},
                               "bindingVersion": KAFKA_BINDING}},
    }


def _release_message(registry: SchemaRegistry) -> dict[str, Any]:
    return {
        "name": "release",
        "title": "Release",
        "summary": "One signed release entry: a firmware version or print-parameter set for a printer model.",
        "contentType": "application/json",
        "payload": {"schemaFormat": JSON_SCHEMA_FORMAT, "schema": release_schema(registry)},
        "bindings": {"kafka": {"key": {"type": "string", "description": _CATALOGUE_KEY},
                               "bindingVersion": KAFKA_BINDING}},
    }


def _operation(cid: str, address: str) -> dict[str, Any]:
    if address == CATALOGUE:
        return {"action": "send", "channel": {"$ref": f"#/channels/{cid}"},
                "summary": f"Publish (or withdraw, with a tombstone) a signed release entry on {address}."}
    return {"action": "receive", "channel": {"$ref": f"#/channels/{cid}"},
            "summary": f"Read {address} (read_committed: producers write in transactions)."}


def document(registry: SchemaRegistry, version: str) -> dict[str, Any]:
    """The AsyncAPI document (a JSON-ready dict) for printfleet `version`."""
    topics = public_topics()
    channels = {_channel_id(spec.name): _channel(spec, registry) for spec in topics}
    messages: dict[str, Any] = {}
    for spec in topics:
        for kind in _kinds_of(spec.name):
            for v in registry.versions(kind):
                message = _message(v)
                message["bindings"] = {"kafka": {"key": {"type": "string", "description": _key_of(spec.name)},
                                                 "bindingVersion": KAFKA_BINDING}}
                messages.setdefault(_message_name(v), message)
    messages["deadLetter"] = _dead_letter_message()
    messages["release"] = _release_message(registry)
    operations: dict[str, Any] = {}
    for cid, channel in channels.items():
        operation = _operation(cid, channel["address"])
        operations[f"{operation['action']}-{cid}"] = operation
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {
            "title": "printfleet public topics",
            "version": version,
            "description": (
                "The Kafka topics of printfleet that tools outside the pipeline read. Topic names are the "
                "registry's; a deployment may put a prefix in front of every one (--topic-prefix). " + ENCODING),
            "license": {"name": "Apache-2.0"},
        },
        "defaultContentType": "application/octet-stream",
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages},
    }
