"""Property tests: random records of every kind and version round-trip; random bytes,
and mutations and truncations of valid messages, never raise anything but the typed
errors."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from avro_strategies import records
from schemas.errors import SchemaError
from schemas.loader import SchemaVersion
from schemas.registry import SchemaRegistry

REGISTRY = SchemaRegistry.load_default()
ALL = REGISTRY.all_versions()
PROPERTY = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _ids(schema: SchemaVersion) -> str:
    return f"{schema.kind}-v{schema.version}"


@pytest.mark.parametrize("schema", ALL, ids=_ids)
@PROPERTY
@given(data=st.data())
def test_random_records_round_trip(schema: SchemaVersion, data: st.DataObject) -> None:
    record = data.draw(records(dict(schema.raw)))
    message = REGISTRY.encode(schema.kind, record, version=schema.version)
    decoded = REGISTRY.decode(message, reader_version=schema.version)
    assert decoded.record == record
    assert decoded.writer is schema and decoded.reader is schema
    assert REGISTRY.decode_many([message])[0].writer is schema


@PROPERTY
@given(data=st.data())
def test_random_heartbeats_cross_versions_both_ways(data: st.DataObject) -> None:
    v1, v2 = REGISTRY.versions("heartbeat")
    old = data.draw(records(dict(v1.raw)))
    as_new = REGISTRY.decode(REGISTRY.encode("heartbeat", old, version=1), reader_version=2).record
    assert as_new == {**old, "cooling_remaining_s": 0.0}
    new = data.draw(records(dict(v2.raw)))
    as_old = REGISTRY.decode(REGISTRY.encode("heartbeat", new, version=2), reader_version=1).record
    expected = {k: v for k, v in new.items() if k != "cooling_remaining_s"}
    if expected["activity"] not in v1.enums["PrinterActivity"].symbols:
        expected["activity"] = v1.enums["PrinterActivity"].default
    assert as_old == expected


def _decode_or_typed_error(message: bytes) -> Any:
    try:
        return REGISTRY.decode(message)
    except SchemaError:
        return None


@FUZZ
@given(st.binary(max_size=64))
def test_random_bytes_raise_only_typed_errors(message: bytes) -> None:
    _decode_or_typed_error(message)


@FUZZ
@given(schema=st.sampled_from(ALL), body=st.binary(max_size=200))
def test_a_known_header_with_a_random_body_raises_only_typed_errors(schema: SchemaVersion, body: bytes) -> None:
    _decode_or_typed_error(schema.header + body)
    try:
        REGISTRY.decode_many([schema.header + body])
    except SchemaError:
        pass


@st.composite
def _valid_message(draw: st.DrawFn) -> bytes:
    schema = draw(st.sampled_from(ALL))
    record = draw(records(dict(schema.raw), max_items=2))
    return REGISTRY.encode(schema.kind, record, version=schema.version)


@FUZZ
@given(message=_valid_message(), data=st.data())
def test_mutated_messages_raise_only_typed_errors(message: bytes, data: st.DataObject) -> None:
    position = data.draw(st.integers(0, len(message) - 1))
    how = data.draw(st.sampled_from(["flip", "truncate", "insert", "delete", "append"]))
    byte = data.draw(st.integers(0, 255))
    mutated = {
        "flip": message[:position] + bytes([message[position] ^ (byte or 1)]) + message[position + 1:],
        "truncate": message[:position],
        "insert": message[:position] + bytes([byte]) + message[position:],
        "delete": message[:position] + message[position + 1:],
        "append": message + bytes([byte]),
    }[how]
    _decode_or_typed_error(mutated)
    if how in ("truncate", "append") and position >= 10:
        # Whole-record framing: a message that lost or gained bytes never decodes quietly.
        with pytest.raises(SchemaError):
            REGISTRY.decode(mutated)
