"""The flat-schema writer (`schemas.flat_writer`) writes exactly fastavro's bytes, and
whatever it does not write goes to fastavro: `encode` gives fastavro's bytes or its
`RecordEncodeError` for any record, well-formed or not."""

from __future__ import annotations

import math
from io import BytesIO
from typing import Any

import pytest
from fastavro import schemaless_writer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from avro_strategies import records
from schemas import codec
from schemas.errors import RecordEncodeError
from schemas.loader import SchemaVersion
from schemas.registry import SchemaRegistry
from schemas.samples import sample_record

REGISTRY = SchemaRegistry.load_default()
WRITTEN = [s for s in REGISTRY.all_versions() if s.write is not None]
PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _fastavro(schema: SchemaVersion, record: Any) -> bytes:
    buffer = BytesIO()
    buffer.write(schema.header)
    schemaless_writer(buffer, schema.parsed, record)
    return buffer.getvalue()


def _ids(schema: SchemaVersion) -> str:
    return f"{schema.kind}-v{schema.version}"


def test_flat_schemas_get_a_writer_and_the_others_do_not() -> None:
    assert {s.kind for s in WRITTEN} == {
        "heartbeat", "fleet_state", "utilisation", "usage_counters", "cleaning_roll", "update_advisory"}
    # a map, arrays, records, a boolean: fastavro's
    assert all(REGISTRY.schema(kind).write is None for kind in ("system_event", "job", "alert", "device_log"))


@pytest.mark.parametrize("schema", WRITTEN, ids=_ids)
@PROPERTY
@given(data=st.data())
def test_random_records_are_written_as_fastavro_writes_them(schema: SchemaVersion, data: st.DataObject) -> None:
    record = data.draw(records(dict(schema.raw)))
    assert schema.write is not None
    assert schema.write(record) == _fastavro(schema, record)


_WRONG = st.one_of(st.none(), st.booleans(), st.integers(), st.integers(min_value=2**63), st.floats(),
                   st.text(max_size=3), st.binary(max_size=3), st.just([1]), st.just({"a": 1}))


@pytest.mark.parametrize("schema", WRITTEN, ids=_ids)
@PROPERTY
@given(data=st.data())
def test_a_record_with_any_value_anywhere_encodes_as_fastavro_or_fails_as_it_does(
    schema: SchemaVersion, data: st.DataObject
) -> None:
    record = dict(data.draw(records(dict(schema.raw))))
    name = data.draw(st.sampled_from([f["name"] for f in schema.parsed["fields"]]))
    if data.draw(st.booleans()):
        record[name] = data.draw(_WRONG)
    else:
        del record[name]
    try:
        expected: bytes | None = _fastavro(schema, record)
    except Exception:  # noqa: BLE001 - whatever fastavro refuses, encode must refuse too
        expected = None
    if expected is None:
        with pytest.raises(RecordEncodeError):
            codec.encode(schema, record)
    else:
        assert codec.encode(schema, record) == expected
        assert codec.encode_many(schema, [record, record]) == [expected, expected]


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, -0.0, 5e-324, 1.7976931348623157e308])
def test_special_doubles_are_written_as_fastavro_writes_them(value: float) -> None:
    schema = REGISTRY.schema("fleet_state")
    record = {**sample_record("fleet_state", seed=1), "estimated_remaining_s": value}
    assert schema.write is not None
    assert schema.write(record) == _fastavro(schema, record)


def test_defaults_fill_in_what_a_record_leaves_out() -> None:
    schema = REGISTRY.schema("heartbeat")
    record = sample_record("heartbeat", seed=2)
    record.pop("schema_version", None)
    assert schema.write is not None
    assert schema.write(record) == _fastavro(schema, record)
    assert REGISTRY.decode(schema.write(record)).record["schema_version"] == schema.version
