"""Batches of flat schemas read column by column (`schemas.columns`) give exactly what
fastavro gives record by record, and every message it cannot vouch for is refused, so
`decode_records` falls back to the record-by-record path and its precise errors."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from avro_strategies import records
from schemas import codec
from schemas.columns import FlatReader, Refused
from schemas.errors import CorruptBodyError, TrailingBytesError, TruncatedBodyError
from schemas.loader import SchemaVersion
from schemas.registry import SchemaRegistry
from schemas.samples import sample_record

REGISTRY = SchemaRegistry.load_default()
FLAT = [s for s in REGISTRY.all_versions() if FlatReader.of(s.parsed) is not None]
PROPERTY = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _reader(schema: SchemaVersion) -> FlatReader:
    reader = FlatReader.of(schema.parsed)
    assert reader is not None
    return reader


def _one_by_one(schema: SchemaVersion, messages: list[bytes]) -> list[dict[str, Any]]:
    return [codec.decode(m, codec.plan(schema, schema)).record for m in messages]


def _heartbeats(n: int, **changes: Any) -> list[bytes]:
    base = sample_record("heartbeat", seed=3)
    return REGISTRY.encode_many("heartbeat", [{**base, "record_id": f"hb-{i}", "layers_done": i, **changes} for i in range(n)])


def test_the_flat_schemas_are_the_ones_without_unions_arrays_maps_or_records() -> None:
    assert {s.kind for s in FLAT} == {"heartbeat", "cleaning_roll", "usage_counters"}
    assert FlatReader.of(REGISTRY.schema("job").parsed) is None
    assert FlatReader.of(REGISTRY.schema("fleet_state").parsed) is None  # nullable unions


@pytest.mark.parametrize("schema", FLAT, ids=lambda s: f"{s.kind}-v{s.version}")
@PROPERTY
@given(data=st.data())
def test_random_batches_read_as_fastavro_reads_them(schema: SchemaVersion, data: st.DataObject) -> None:
    batch = data.draw(st.lists(records(dict(schema.raw)), min_size=1, max_size=12))
    messages = REGISTRY.encode_many(schema.kind, batch, version=schema.version)
    assert _reader(schema).read(messages, schema.header) == _one_by_one(schema, messages) == batch


def test_strings_of_every_script_and_length_and_extreme_numbers() -> None:
    schema = REGISTRY.schema("heartbeat")
    base = sample_record("heartbeat", seed=1)
    texts = ["", "a", "é", "日本語", "🖨️ printer", "x" * 127, "y" * 128, "ü" * 20_000, "\x00\x7f"]
    batch = [{**base, "record_id": t, "site_id": t[::-1], "layers_done": n, "event_time": e,
              "recent_layer_duration_s": f}
             for t in texts
             for n, e, f in [(0, 0, 0.0), (-(2**31), -(2**63), -3.5e38), (2**31 - 1, 2**63 - 1, 1e-45)]]
    messages = REGISTRY.encode_many("heartbeat", batch)
    assert _reader(schema).read(messages, schema.header) == _one_by_one(schema, messages)


def test_nan_and_infinity_come_back_as_the_same_floats() -> None:
    schema = REGISTRY.schema("heartbeat")
    messages = [_heartbeats(1, recent_layer_duration_s=v)[0] for v in (math.nan, math.inf, -math.inf)]
    got = [r["recent_layer_duration_s"] for r in _reader(schema).read(messages, schema.header)]
    assert math.isnan(got[0]) and got[1:] == [math.inf, -math.inf]


def test_decode_records_reads_a_large_batch_column_by_column(monkeypatch: pytest.MonkeyPatch) -> None:
    messages = _heartbeats(codec.COLUMNS_FROM)
    expected = _one_by_one(REGISTRY.schema("heartbeat"), messages)
    calls: list[int] = []
    read = FlatReader.read

    def counted(self: FlatReader, batch: list[bytes], header: bytes) -> list[dict[str, Any]]:
        calls.append(len(batch))
        return read(self, batch, header)

    monkeypatch.setattr(FlatReader, "read", counted)
    assert REGISTRY.decode_records("heartbeat", messages) == expected
    assert REGISTRY.decode_records("heartbeat", messages[:-1]) == expected[:-1]  # too few: record by record
    assert calls == [codec.COLUMNS_FROM]


def _refused(messages: list[bytes], match: str) -> None:
    schema = REGISTRY.schema("heartbeat")
    with pytest.raises(Refused, match=match):
        _reader(schema).read(messages, schema.header)


def test_a_body_cut_short_or_padded_is_refused_and_decode_records_names_it() -> None:
    messages = _heartbeats(codec.COLUMNS_FROM)
    short, padded = [*messages[:-1], messages[-1][:-1]], [*messages[:5], messages[5] + b"\x00", *messages[6:]]
    _refused(short, "consumed exactly|past the end")
    _refused(padded, "consumed exactly")
    with pytest.raises(TruncatedBodyError):
        REGISTRY.decode_records("heartbeat", short)
    with pytest.raises(TrailingBytesError):
        REGISTRY.decode_records("heartbeat", padded)


def _with_body_byte(message: bytes, offset: int, value: bytes) -> bytes:
    at = codec.HEADER_SIZE + offset
    return message[:at] + value + message[at + len(value):]


def test_a_string_length_past_the_end_or_negative_is_refused() -> None:
    message = _heartbeats(1)[0]
    _refused([_with_body_byte(message, 0, b"\xfe\x01")], "past the end")  # record_id: 127 bytes
    _refused([_with_body_byte(message, 0, b"\x01")], "negative")  # zigzag 1 = -1


def test_a_string_that_is_not_utf8_is_refused_and_decode_records_names_it() -> None:
    messages = _heartbeats(codec.COLUMNS_FROM, record_id="ab")
    bad = _with_body_byte(messages[3], 1, b"\xff")
    _refused([*messages[:3], bad], "not UTF-8")
    with pytest.raises(CorruptBodyError):
        REGISTRY.decode_records("heartbeat", [*messages[:3], bad, *messages[4:]])


def test_an_enum_index_out_of_range_is_refused() -> None:
    schema = REGISTRY.schema("heartbeat")
    record = REGISTRY.decode(_heartbeats(1)[0]).record
    symbols = schema.enums["PrinterStatus"].symbols
    # Re-encode the status index by hand: past the last symbol.
    prefix = REGISTRY.encode("heartbeat", {**record, "status": symbols[0]})
    fields_before = 5  # record_id, schema_version, site_id, device_id, event_time
    body = prefix[codec.HEADER_SIZE:]
    at = _offset_after(body, fields_before, strings=(0, 2, 3))
    assert body[at] == 0  # index 0
    _refused([prefix[:codec.HEADER_SIZE] + body[:at] + bytes([2 * len(symbols)]) + body[at + 1:]], "enum index")


def test_a_varint_wider_than_an_int_is_refused() -> None:
    message = _heartbeats(1)[0]
    body = message[codec.HEADER_SIZE:]
    at = _offset_after(body, 1, strings=(0,))  # schema_version, an int
    wide = b"\xfe\xff\xff\xff\x1f"  # 2**34 - 1 zigzagged: five bytes, more than 32 bits
    _refused([message[:codec.HEADER_SIZE] + body[:at] + wide + body[at + 1:]], "wider than an int")


def test_messages_of_another_header_are_refused() -> None:
    messages = _heartbeats(2)
    other = REGISTRY.encode("heartbeat", REGISTRY.decode(messages[1]).record, version=1)
    _refused([messages[0], other], "same header")


def _offset_after(body: bytes, fields: int, *, strings: tuple[int, ...]) -> int:
    """Where field `fields` starts: every field before it a varint, those in `strings`
    followed by that many bytes."""
    at = 0
    for i in range(fields):
        value, at = _read_varint(body, at)
        if i in strings:
            at += value
    return at


def _read_varint(body: bytes, at: int) -> tuple[int, int]:
    shift = raw = 0
    while True:
        byte = body[at]
        raw |= (byte & 0x7F) << shift
        at += 1
        shift += 7
        if not byte & 0x80:
            return (raw >> 1) ^ -(raw & 1), at



def test_a_last_message_cut_after_its_header_is_refused_not_read_past_the_batch() -> None:
    messages = _heartbeats(3)
    _refused([*messages[:2], messages[2][:codec.HEADER_SIZE + 1]], "past the end")
