"""The single-object codec: fingerprints against the spec, message layout, round trips,
and one test per typed error."""

from __future__ import annotations

import io
import re
from datetime import datetime, timezone
from pathlib import Path

import fastavro
import pytest
from fastavro.schema import to_parsing_canonical_form

import schemas
from schemas import errors
from schemas.codec import fingerprint
from schemas.errors import (
    CorruptBodyError,
    NotSingleObjectError,
    RecordEncodeError,
    SchemaError,
    TrailingBytesError,
    TruncatedBodyError,
    UnexpectedKindError,
    UnknownFingerprintError,
    UnknownSchemaError,
)
from schemas.kinds import KINDS
from schemas.registry import SchemaRegistry
from schemas.samples import sample_record, sample_records

REGISTRY = SchemaRegistry.load_default()


# -- CRC-64-AVRO, written from the spec's description, independent of fastavro ----------

_EMPTY = 0xC15D213AA4D7A795


def _table() -> list[int]:
    table = []
    for i in range(256):
        fp = i
        for _ in range(8):
            fp = (fp >> 1) ^ (_EMPTY & -(fp & 1))
        table.append(fp)
    return table


_TABLE = _table()


def crc64_avro(data: bytes) -> int:
    fp = _EMPTY
    for byte in data:
        fp = (fp >> 8) ^ _TABLE[(fp ^ byte) & 0xFF]
    return fp


# Published in Apache Avro's share/test/data/schema-tests.txt as signed 64-bit values.
SPEC_VECTORS = [
    ('"null"', 7195948357588979594),
    ('"boolean"', -6970731678124411036),
    ('"int"', 8247732601305521295),
    ('{"name":"foo","type":"fixed","size":15}', 1756455273707447556),
    ('{"name":"foo","type":"record","fields":[{"name":"f1","type":"boolean"}]}', 7843277075252814651),
    (
        '{"name":"PigValue","type":"record","fields":[{"name":"value","type":["null","int","long","PigValue"]}]}',
        -1759257747318642341,
    ),
]


@pytest.mark.parametrize(("canonical", "signed"), SPEC_VECTORS)
def test_fingerprint_matches_the_spec_vectors_in_little_endian_order(canonical: str, signed: int) -> None:
    value = signed & 0xFFFF_FFFF_FFFF_FFFF
    assert crc64_avro(canonical.encode()) == value
    assert fingerprint(canonical) == value.to_bytes(8, "little")


def test_null_schema_fingerprint_bytes() -> None:
    # The spec's 0x63dd24e7cc258f8a goes on the wire least significant byte first.
    assert fingerprint('"null"').hex() == "8a8f25cce724dd63"
    assert int.from_bytes(fingerprint('"null"'), "little") == 0x63DD24E7CC258F8A


def test_canonical_form_follows_the_spec() -> None:
    raw = {"type": "record", "name": "foo", "doc": "dropped", "fields": [
        {"name": "f1", "type": "boolean", "doc": "dropped", "default": True}]}
    assert to_parsing_canonical_form(fastavro.parse_schema(raw)) == SPEC_VECTORS[4][0]


@pytest.mark.parametrize("schema", REGISTRY.all_versions(), ids=lambda s: f"{s.kind}-v{s.version}")
def test_every_kept_version_has_the_spec_fingerprint_of_its_canonical_form(schema: schemas.SchemaVersion) -> None:
    assert schema.fingerprint_int == crc64_avro(schema.canonical_form.encode())
    assert schema.header == b"\xc3\x01" + schema.fingerprint
    # Logical types are not part of the canonical form, so stripping them for the codec
    # leaves the fingerprint alone.
    assert to_parsing_canonical_form(fastavro.parse_schema(dict(schema.raw))) == schema.canonical_form


# -- layout and round trips ------------------------------------------------------------


def test_message_is_marker_fingerprint_then_schemaless_body() -> None:
    record = sample_record("heartbeat")
    data = REGISTRY.encode("heartbeat", record)
    schema = REGISTRY.schema("heartbeat")
    body = io.BytesIO()
    fastavro.schemaless_writer(body, schema.parsed, record)
    assert data[:2] == b"\xc3\x01"
    assert data[2:10] == schema.fingerprint
    assert data[10:] == body.getvalue()
    assert REGISTRY.identify(data) is schema


# Fields of the latest versions that schemas/samples.py does not fill yet: the decoded
# record has their schema default. Every other field must come from the sample.
NOT_IN_SAMPLES = {"fleet_state": ("firmware_release",), "utilisation": ("agent_consumed_cm3",),
                  "alert": ("confidence", "occurrences")}


@pytest.mark.parametrize("kind", KINDS)
def test_samples_round_trip_with_every_api(kind: str) -> None:
    records = sample_records(kind, 5)
    writer = REGISTRY.schema(kind)
    defaults = {f["name"]: f["default"] for f in writer.raw["fields"] if f["name"] in NOT_IN_SAMPLES.get(kind, ())}
    expected = [{**defaults, **r, "schema_version": writer.version} for r in records]
    single = [REGISTRY.decode(REGISTRY.encode(kind, r)) for r in records]
    batch = REGISTRY.encode_many(kind, records)
    assert batch == [REGISTRY.encode(kind, r) for r in records]
    assert [d.record for d in single] == expected
    assert [d.record for d in REGISTRY.decode_many(batch)] == expected
    assert REGISTRY.decode_records(kind, batch) == expected
    assert all(d.writer is writer and d.reader is writer and d.kind == kind for d in single)


def test_schema_version_is_filled_from_the_writer_default() -> None:
    data = REGISTRY.encode("heartbeat", sample_record("heartbeat"), version=1)
    decoded = REGISTRY.decode(data, reader_version=1)
    assert decoded.record["schema_version"] == 1 == decoded.version


def test_decode_many_mixes_kinds_and_versions() -> None:
    messages = [
        REGISTRY.encode("heartbeat", sample_record("heartbeat"), version=1),
        REGISTRY.encode("alert", sample_record("alert")),
        REGISTRY.encode("heartbeat", sample_record("heartbeat")),
    ]
    decoded = REGISTRY.decode_many(messages)
    assert [(d.kind, d.writer.version, d.reader.version) for d in decoded] == [
        ("heartbeat", 1, 2), ("alert", 2, 2), ("heartbeat", 2, 2)]
    assert REGISTRY.decode_many([]) == []


def test_readers_can_be_pinned_per_registry_and_per_call() -> None:
    data = REGISTRY.encode("heartbeat", sample_record("heartbeat"))
    old = REGISTRY.with_readers({"heartbeat": 1})
    assert old.reader("heartbeat").version == 1
    assert "cooling_remaining_s" not in old.decode(data).record
    assert "cooling_remaining_s" not in old.decode_records("heartbeat", [data])[0]
    assert "cooling_remaining_s" not in REGISTRY.decode(data, reader_version=1).record
    with pytest.raises(UnknownSchemaError):
        REGISTRY.with_readers({"heartbeat": 9})
    with pytest.raises(UnknownSchemaError):
        REGISTRY.with_readers({"no_such_kind": 1})


def test_lookups() -> None:
    assert SchemaRegistry.load_default() is REGISTRY  # parsed once per process
    assert [s.version for s in REGISTRY.versions("heartbeat")] == [1, 2]
    assert REGISTRY.schema("heartbeat", 1) is REGISTRY.versions("heartbeat")[0]
    assert REGISTRY.by_fingerprint(REGISTRY.schema("job").fingerprint).kind == "job"
    assert "UNLOADING_BUILD_UNIT" in REGISTRY.enum_symbols("heartbeat", "PrinterActivity")
    assert "UNLOADING_BUILD_UNIT" not in REGISTRY.enum_symbols("heartbeat", "PrinterActivity", 1)
    assert REGISTRY.schema("heartbeat").enums["PrinterStatus"].default == "UNKNOWN"
    for call in (lambda: REGISTRY.schema("nope"), lambda: REGISTRY.schema("heartbeat", 3),
                 lambda: REGISTRY.schema("heartbeat", 0), lambda: REGISTRY.enum_symbols("job", "Nope"),
                 lambda: REGISTRY.encode("nope", {}), lambda: REGISTRY.decode_records("nope", [])):
        with pytest.raises(UnknownSchemaError):
            call()


# -- typed errors ----------------------------------------------------------------------

GOOD = REGISTRY.encode("heartbeat", sample_record("heartbeat"))


@pytest.mark.parametrize("data", [b"", b"\xc3", b"\xc3\x01" + b"\x00" * 7, b"\xc3\x02" + GOOD[2:],
                                  b"\x00\x01" + GOOD[2:], b"{\"json\": true}"])
def test_not_single_object_encoded(data: bytes) -> None:
    with pytest.raises(NotSingleObjectError):
        REGISTRY.decode(data)
    with pytest.raises(NotSingleObjectError):
        REGISTRY.decode_many([GOOD, data])
    with pytest.raises(NotSingleObjectError):
        REGISTRY.identify(data)


def test_unknown_fingerprint_carries_it_in_hex() -> None:
    data = b"\xc3\x01" + fingerprint('"null"') + GOOD[10:]
    with pytest.raises(UnknownFingerprintError) as caught:
        REGISTRY.decode(data)
    assert caught.value.fingerprint == bytes.fromhex("8a8f25cce724dd63")
    assert caught.value.fingerprint_hex == "8a8f25cce724dd63"
    assert "8a8f25cce724dd63" in str(caught.value) and "0x63dd24e7cc258f8a" in str(caught.value)
    with pytest.raises(UnknownFingerprintError):
        REGISTRY.decode_many([GOOD, data])


@pytest.mark.parametrize("cut", [1, 5, 40, len(GOOD) - 11])
def test_truncated_body(cut: int) -> None:
    with pytest.raises(TruncatedBodyError):
        REGISTRY.decode(GOOD[: 10 + cut])
    with pytest.raises(TruncatedBodyError):
        REGISTRY.decode_many([GOOD, GOOD[: 10 + cut]])
    with pytest.raises(TruncatedBodyError):
        REGISTRY.decode(GOOD[:10])  # a header and no body at all


def test_trailing_bytes() -> None:
    with pytest.raises(TrailingBytesError, match="2 bytes left"):
        REGISTRY.decode(GOOD + b"\x00\x00")
    with pytest.raises(TrailingBytesError):
        REGISTRY.decode_records("heartbeat", [GOOD, GOOD + b"\x00"])


def test_corrupt_body() -> None:
    # The status enum is the first byte after the envelope; 0x7e is index 63, which no
    # symbol has.
    schema = REGISTRY.schema("heartbeat")
    envelope_only = REGISTRY.encode("heartbeat", sample_record("heartbeat"))
    record = REGISTRY.decode(envelope_only).record
    body = io.BytesIO()
    fastavro.schemaless_writer(body, {"type": "record", "name": "E", "fields": [
        f for f in schema.parsed["fields"][:5]]}, record)
    offset = 10 + len(body.getvalue())
    corrupt = envelope_only[:offset] + b"\x7e" + envelope_only[offset + 1:]
    with pytest.raises(CorruptBodyError) as caught:
        REGISTRY.decode(corrupt)
    assert not isinstance(caught.value, (TruncatedBodyError, TrailingBytesError))


def test_typed_batch_refuses_another_kind() -> None:
    alert = REGISTRY.encode("alert", sample_record("alert"))
    with pytest.raises(UnexpectedKindError) as caught:
        REGISTRY.decode_records("heartbeat", [GOOD, alert])
    assert (caught.value.expected, caught.value.actual) == ("heartbeat", "alert")


@pytest.mark.parametrize(("change", "reason"), [
    ({"status": "EXPLODED"}, "EXPLODED"),
    ({"layers_done": "many"}, None),
    # timestamps are int milliseconds; a datetime is a producer bug, not silently converted
    ({"event_time": datetime(2025, 1, 1, tzinfo=timezone.utc)}, None),
    ({"record_id": None}, None),
])
def test_records_that_do_not_fit_fail_to_encode(change: dict[str, object], reason: str | None) -> None:
    record = {**sample_record("heartbeat"), **change}
    with pytest.raises(RecordEncodeError, match=reason) as caught:
        REGISTRY.encode("heartbeat", record)
    assert (caught.value.kind, caught.value.version) == ("heartbeat", 2)
    with pytest.raises(RecordEncodeError, match="record 1 of the batch"):
        REGISTRY.encode_many("heartbeat", [sample_record("heartbeat"), record])


def test_missing_field_without_default_fails_to_encode() -> None:
    record = sample_record("heartbeat")
    del record["site_id"]
    with pytest.raises(RecordEncodeError, match="site_id"):
        REGISTRY.encode("heartbeat", record)


def test_error_tree() -> None:
    leaves = [obj for obj in vars(errors).values()
              if isinstance(obj, type) and issubclass(obj, Exception) and obj.__module__ == errors.__name__]
    assert len(leaves) == 11
    tree = errors.__doc__ or ""
    for cls in leaves:
        assert issubclass(cls, SchemaError)
        # each class states it, so a new leaf cannot inherit the answer by accident
        assert "retriable" in vars(cls) and cls.retriable is False
        assert re.search(rf"\b{cls.__name__}\b", tree), f"{cls.__name__} missing from the tree"


def test_public_api_matches_all() -> None:
    exported = {name for name in vars(schemas) if not name.startswith("_")}
    submodules = {p.stem for p in Path(schemas.__file__).parent.glob("*.py")} | {"avro"}
    assert set(schemas.__all__) == exported - submodules
    assert len(schemas.__all__) == len(set(schemas.__all__))
