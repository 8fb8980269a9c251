"""The AsyncAPI document of the public topics: valid against the AsyncAPI 3.0.0 JSON
schema (vendored from @asyncapi/specs, tests/vendor/asyncapi-specs), complete, and the
committed docs/asyncapi.json is what the generator writes today."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft7Validator

from common.kafka import deadletter
from schemas.asyncapi import AVRO_FORMAT, JSON_SCHEMA_FORMAT, document, public_topics
from common.kafka.topics import CATALOGUE, DEAD_LETTER, GATEWAY_UPLOADS, topic_for
from printfleet.cli import version
from printfleet.cmd_asyncapi import render
from schemas import SchemaRegistry
from schemas.release import release_schema
from schemas.samples import sample_record

ROOT = Path(__file__).resolve().parents[3]
REGISTRY = SchemaRegistry.load_default()


@pytest.fixture(scope="module")
def validator() -> Draft7Validator:
    schema = json.loads((ROOT / "tests/vendor/asyncapi-specs/3.0.0.json").read_text())
    return Draft7Validator(schema)


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    # Through JSON, as a reader of the file sees it.
    loaded: dict[str, Any] = json.loads(render(REGISTRY, version()))
    return loaded


def test_document_is_valid_asyncapi_3(validator: Draft7Validator, doc: dict[str, Any]) -> None:
    errors = [f"{list(e.absolute_path)}: {e.message[:200]}" for e in validator.iter_errors(doc)]
    assert errors == []
    assert doc["asyncapi"] == "3.0.0"


def test_validator_rejects_what_asyncapi_forbids(validator: Draft7Validator, doc: dict[str, Any]) -> None:
    """The vendored schema really checks the parts we generate: Kafka bindings, the Avro
    payloads and operations (a schema whose references did not resolve would pass anything)."""
    zero_partitions = copy.deepcopy(doc)
    zero_partitions["channels"]["alerts"]["bindings"]["kafka"]["partitions"] = 0
    bad_avro = copy.deepcopy(doc)
    bad_avro["components"]["messages"]["alert.v2"]["payload"]["schema"] = {"type": "record", "name": 5}
    bad_action = copy.deepcopy(doc)
    bad_action["operations"]["receive-alerts"]["action"] = "consume"
    for broken in (zero_partitions, bad_avro, bad_action):
        assert not validator.is_valid(broken)


def test_committed_document_is_up_to_date() -> None:
    committed = (ROOT / "docs/asyncapi.json").read_text(encoding="utf-8")
    assert committed == render(REGISTRY, version()), (
        "docs/asyncapi.json is stale: run `printfleet asyncapi -o docs/asyncapi.json`")


def test_every_public_topic_and_schema_version_is_described(doc: dict[str, Any]) -> None:
    addresses = {c["address"] for c in doc["channels"].values()}
    assert addresses == {spec.name for spec in public_topics()}
    assert {topic_for("alert"), topic_for("heartbeat"), DEAD_LETTER, CATALOGUE} <= addresses
    assert GATEWAY_UPLOADS not in addresses
    messages = doc["components"]["messages"]
    for kind in REGISTRY.kinds:
        for v in REGISTRY.versions(kind):
            message = messages[f"{kind}.v{v.version}"]
            assert message["payload"] == {"schemaFormat": AVRO_FORMAT, "schema": json.loads(json.dumps(dict(v.raw)))}
            assert message["x-fingerprint"] == v.fingerprint.hex()
    alerts = doc["channels"]["alerts"]
    assert set(alerts["messages"]) == {"alert-v1", "alert-v2"}
    assert alerts["bindings"]["kafka"]["partitions"] == 6
    assert "device_id" in messages["alert.v2"]["bindings"]["kafka"]["key"]["description"]


def test_documented_header_is_what_the_codec_writes(doc: dict[str, Any]) -> None:
    """C3 01, then the writer's fingerprint little-endian: the first 10 bytes of a record."""
    encoded = REGISTRY.encode("alert", sample_record("alert"))
    message = doc["components"]["messages"][f"alert.v{REGISTRY.reader('alert').version}"]
    assert encoded[:10].hex() == message["x-header"] == "c301" + message["x-fingerprint"]
    assert "C3 01" in doc["info"]["description"] and "little-endian" in doc["info"]["description"]


def test_dead_letter_headers_are_the_contracts(doc: dict[str, Any]) -> None:
    origin = deadletter.Origin("sink", "convert", "alerts", 1, 2, 3)
    written = {name for name, _ in deadletter.headers(origin, "why", "Error")}
    headers = doc["components"]["messages"]["deadLetter"]["headers"]
    assert set(headers["properties"]) == written == set(headers["required"])


def test_release_catalogue_is_a_json_channel_written_by_the_release_tooling(
    validator: Draft7Validator, doc: dict[str, Any],
) -> None:
    channel = doc["channels"]["catalogue-releases"]
    assert channel["address"] == CATALOGUE and channel["messages"] == {"release": {"$ref": "#/components/messages/release"}}
    assert channel["bindings"]["kafka"]["topicConfiguration"]["cleanup.policy"] == ["compact"]
    message = doc["components"]["messages"]["release"]
    assert message["contentType"] == "application/json"
    assert message["payload"] == {"schemaFormat": JSON_SCHEMA_FORMAT, "schema": release_schema(REGISTRY)}
    assert doc["operations"]["send-catalogue-releases"]["action"] == "send"
    # the validator checks the JSON payload too: a schema that is no draft-07 schema is refused
    broken = copy.deepcopy(doc)
    broken["components"]["messages"]["release"]["payload"]["schema"]["type"] = 5
    assert not validator.is_valid(broken)
