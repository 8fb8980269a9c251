"""The JSON Schema of a release catalogue entry (`schemas.release`) says what the stream
worker really parses: the fields of `streams.advisories.Release`, which are required,
their types, and that a signed entry as the release tooling writes it is valid."""

from __future__ import annotations

import base64
import dataclasses
import json
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from jsonschema import Draft7Validator

from schemas import SchemaRegistry
from schemas.release import release_schema
from streams.advisories import Release, parse_version, sign, verify

REGISTRY = SchemaRegistry.load_default()
SCHEMA = release_schema(REGISTRY)
VALIDATOR = Draft7Validator(SCHEMA)
# The dataclass's annotations (strings: `from __future__ import annotations`) as JSON types.
JSON_TYPES = {"str": "string", "int": "integer", "str | None": ["string", "null"]}


def _entry(**changes: Any) -> dict[str, Any]:
    fields: dict[str, Any] = dict(model_number="M0P44A", advisory_type="FIRMWARE", version="5.10.0",
                                  released_at=1_748_736_000_000, summary="Faster warm-up")
    release = Release(**(fields | changes))
    signed = sign(release, Ed25519PrivateKey.generate())
    loaded: dict[str, Any] = json.loads(json.dumps(dataclasses.asdict(signed)))
    return loaded


def test_the_schema_is_valid_draft_07() -> None:
    Draft7Validator.check_schema(SCHEMA)


def test_properties_required_and_types_are_the_dataclasss() -> None:
    fields = {f.name: f for f in dataclasses.fields(Release)}
    assert set(SCHEMA["properties"]) == set(fields)
    no_default = {n for n, f in fields.items() if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING}
    assert set(SCHEMA["required"]) == no_default
    for name, f in fields.items():
        assert SCHEMA["properties"][name]["type"] == JSON_TYPES[str(f.type)], name
        if f.default is not dataclasses.MISSING:
            assert SCHEMA["properties"][name]["default"] == f.default, name


def test_a_signed_entry_as_the_tooling_writes_it_is_valid_and_parses() -> None:
    entry = _entry(material_type=None, package_sha256="ab" * 32)
    assert list(VALIDATOR.iter_errors(entry)) == []
    release = Release.from_dict(entry)
    assert len(base64.b64decode(release.signature)) == 64
    minimal = {k: entry[k] for k in SCHEMA["required"]}
    assert VALIDATOR.is_valid(minimal) and Release.from_dict(minimal).severity == "INFO"


def test_what_the_worker_refuses_the_schema_refuses_too() -> None:
    entry = _entry()
    with pytest.raises(TypeError):
        Release.from_dict({**entry, "job_name": "x"})
    assert not VALIDATOR.is_valid({**entry, "job_name": "x"})
    missing = {k: v for k, v in entry.items() if k != "version"}
    with pytest.raises(TypeError):
        Release.from_dict(missing)
    assert not VALIDATOR.is_valid(missing)


@pytest.mark.parametrize(("version", "valid"), [("5.10.0", True), ("5.3", True), ("6.0.0-rc.1", True), ("v5", False), ("5.", False)])
def test_the_version_pattern_is_what_the_worker_compares(version: str, valid: bool) -> None:
    assert VALIDATOR.is_valid(_entry(version=version)) is valid
    if valid:
        parse_version(version)


def test_the_enums_are_the_update_advisorys() -> None:
    assert SCHEMA["properties"]["advisory_type"]["enum"] == ["FIRMWARE", "PRINT_PARAMETERS"]
    assert set(SCHEMA["properties"]["severity"]["enum"]) == set(REGISTRY.enum_symbols("update_advisory", "Severity"))
    assert not VALIDATOR.is_valid(_entry(advisory_type="SOFTWARE"))


def test_the_signature_still_verifies_after_the_json_round_trip() -> None:
    key = Ed25519PrivateKey.generate()
    release = sign(Release("M0P44A", "PRINT_PARAMETERS", "1.2", 1, "PA12 set", material_type="PA12"), key)
    again = Release.from_dict(json.loads(json.dumps(dataclasses.asdict(release))))
    assert verify(again, key.public_key()) and VALIDATOR.is_valid(dataclasses.asdict(again))
