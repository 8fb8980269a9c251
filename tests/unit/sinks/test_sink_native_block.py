"""Column-by-column decoding (`sinks.native_block`), no server: the Native blocks, read
back by a reader written here from ClickHouse's format description, hold exactly the
tables the record-by-record path (`decode_records`, then `Converter`) makes, for every
kind it reads (child tables, nulls, empty arrays included); every message that path
would dead-letter, or that is not of the newest version, sends the batch there (`build`
returns None)."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas import SchemaRegistry
from schemas.samples import sample_records
from producers.simulator.replay import new_fleet, replay
from sinks.convert import Converter
from sinks.layout import layout
from sinks.native_block import NativeDecode, NativeInsert, eligible

_FIXED = {"Int32": "<i", "Int64": "<q", "UInt32": "<I", "Float32": "<f", "Float64": "<d", "Bool": "<?",
          "DateTime64(3, 'UTC')": "<q", "Date32": "<i"}
# What the record-by-record path reads too, but this module does not (record by record).
NOT_READ = {"build_unit", "system_event"}


@dataclass(frozen=True)
class Msg:
    offset: int
    value: bytes | None


@pytest.fixture(scope="module")
def registry() -> SchemaRegistry:
    return SchemaRegistry.load_default()


def _uleb(body: bytes, at: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = body[at]
        at += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, at


def read_native(body: bytes) -> dict[str, tuple[str, list[Any]]]:
    """A Native block (no compression, no per-column serialization info) to
    {column: (declared type, values)}: strings come back as str, nulls as None."""
    columns, at = _uleb(body, 0)
    rows, at = _uleb(body, at)
    out: dict[str, tuple[str, list[Any]]] = {}
    for _ in range(columns):
        size, at = _uleb(body, at)
        name, at = body[at:at + size].decode(), at + size
        size, at = _uleb(body, at)
        kind, at = body[at:at + size].decode(), at + size
        nulls: list[int] = []
        inner = kind
        if kind.startswith("Nullable("):
            inner = kind[len("Nullable("):-1]
            nulls, at = list(body[at:at + rows]), at + rows
        values: list[Any] = []
        if inner == "String":
            for _ in range(rows):
                size, at = _uleb(body, at)
                values.append(body[at:at + size].decode())
                at += size
        else:
            fmt = _FIXED[inner]
            width = struct.calcsize(fmt)
            values = [v for (v,) in struct.iter_unpack(fmt, body[at:at + width * rows])]
            at += width * rows
        if nulls:
            values = [None if null else v for null, v in zip(nulls, values)]
        out[name] = (kind, values)
    assert at == len(body), "bytes left after the last column"
    return out


def _expected(registry: SchemaRegistry, kind: str, messages: list[Msg], partition: int) -> dict[str, dict[str, list[Any]]]:
    """Table -> column -> values, as the record-by-record path makes them."""
    records = registry.decode_records(kind, [m.value for m in messages if m.value is not None])
    converted = Converter(layout(registry.reader(kind))).convert(records, partition, [m.offset for m in messages])
    assert not converted.rejected
    return {t.table: dict(zip(t.names, t.columns)) for t in converted.tables if t.rows}


def _same(inserts: list[NativeInsert], expected: dict[str, dict[str, list[Any]]]) -> None:
    assert [i.table for i in inserts] == list(expected)
    for insert in inserts:
        block, columns = read_native(insert.body), expected[insert.table]
        assert insert.rows == len(next(iter(columns.values())))
        assert list(block) == list(columns), insert.table  # the same columns, in the same order
        for name, (kind, values) in block.items():
            if "Float32" in kind:  # both sides hold the same 32-bit float; compare its bits
                pack = struct.Struct("<f").pack
                assert [v if v is None else pack(v) for v in values] == \
                    [v if v is None else pack(v) for v in columns[name]], (insert.table, name)
            else:
                assert values == columns[name], (insert.table, name)


def _only(inserts: list[NativeInsert] | None) -> NativeInsert:
    assert inserts is not None and len(inserts) == 1
    return inserts[0]


def _decoder(registry: SchemaRegistry, kind: str = "heartbeat", **options: Any) -> NativeDecode:
    return NativeDecode(layout(registry.reader(kind)), registry.reader(kind), **options)


def _messages(registry: SchemaRegistry, kind: str, records: list[dict[str, Any]], first: int = 100) -> list[Msg]:
    return [Msg(first + i, m) for i, m in enumerate(registry.encode_many(kind, records))]


def test_every_kind_but_those_with_maps_or_nested_arrays_is_read(registry: SchemaRegistry) -> None:
    read = {k for k in registry.kinds if eligible(layout(registry.reader(k)), registry.reader(k))}
    assert read == set(registry.kinds) - NOT_READ
    with pytest.raises(ValueError, match="map"):
        _decoder(registry, "system_event")
    with pytest.raises(ValueError, match="top-level arrays"):
        _decoder(registry, "build_unit")


@pytest.mark.parametrize("kind", sorted(set(SchemaRegistry.load_default().kinds) - NOT_READ))
def test_the_blocks_hold_the_record_by_record_tables(registry: SchemaRegistry, kind: str) -> None:
    messages = _messages(registry, kind, sample_records(kind, 300))
    inserts = _decoder(registry, kind, steps_per_item=float("inf")).build(7, messages)
    assert inserts is not None and inserts[0].table == kind
    assert inserts[0].statement.startswith(f"INSERT INTO `{kind}` (") and inserts[0].statement.endswith("FORMAT Native")
    _same(inserts, _expected(registry, kind, messages, 7))
    assert read_native(inserts[0].body)["kafka_partition"] == ("Int32", [7] * 300)


def test_jobs_of_a_simulated_site_with_nulls_and_empty_arrays(registry: SchemaRegistry) -> None:
    sim = replay(new_fleet(6, 5, 1_741_944_413_589), registry, duration_ms=36 * 3_600_000, kinds=frozenset({"job"}))
    jobs = sim.of("job")
    # The simulator's jobs have every array filled; these have some empty and some null.
    plain = [j | {"warnings": [], "sub_jobs": [], "bounding_box": None, "material_type": None, "started_at": None}
             for j in sample_records("job", 5)]
    messages = _messages(registry, "job", jobs[:20] + plain + jobs[20:])
    assert len(jobs) >= 20 and sum(len(j["layers"]) for j in jobs) > 5_000
    inserts = _decoder(registry, "job", steps_per_item=float("inf")).build(2, messages)
    assert inserts is not None
    _same(inserts, _expected(registry, "job", messages, 2))


def test_few_records_with_long_arrays_go_record_by_record(registry: SchemaRegistry) -> None:
    job = sample_records("job", 1)[0]
    long = job | {"layers": [job["layers"][0] | {"layer_index": i} for i in range(2_000)]}
    assert _decoder(registry, "job").build(0, _messages(registry, "job", [long])) is None
    assert _decoder(registry, "job").build(0, _messages(registry, "job", sample_records("job", 300))) is not None


def test_offsets_with_gaps_are_kept(registry: SchemaRegistry) -> None:
    # Compaction and transaction markers leave gaps between a partition's offsets.
    messages = [Msg(10 + 3 * i, m.value) for i, m in enumerate(_messages(registry, "heartbeat", sample_records("heartbeat", 5)))]
    native = _only(_decoder(registry).build(0, messages))
    assert read_native(native.body)["kafka_offset"] == ("Int64", [10, 13, 16, 19, 22])


def test_strings_of_every_length_and_script(registry: SchemaRegistry) -> None:
    texts = ["", "a", "Zürich-Süd", "工場-3", "x" * 63, "y" * 64, "z" * 127, "w" * 128, "v" * 20_000, "ü" * 9_000]
    records = [r | {"current_job_id": t, "site_id": t[:40]} for r, t in zip(sample_records("heartbeat", len(texts)), texts)]
    messages = _messages(registry, "heartbeat", records)
    _same([_only(_decoder(registry).build(1, messages))], _expected(registry, "heartbeat", messages, 1))


def test_large_and_negative_numbers(registry: SchemaRegistry) -> None:
    extremes = [-(1 << 31), (1 << 31) - 1, -1, 0, 63, 64, -64, -65, 1 << 20]
    records = [r | {"layers_done": v, "pending_job_count": -v - 1 if v > -(1 << 31) else 5}
               for r, v in zip(sample_records("heartbeat", len(extremes)), extremes)]
    longs = [r | {"total_jobs": v << 20, "lamp_usage_s": -(v << 30), "total_print_volume_cm3": v / 3}
             for r, v in zip(sample_records("usage_counters", len(extremes)), extremes)]
    for kind, batch in (("heartbeat", records), ("usage_counters", longs)):
        messages = _messages(registry, kind, batch)
        inserts = _decoder(registry, kind).build(2, messages)
        assert inserts is not None
        _same(inserts, _expected(registry, kind, messages, 2))


_text = st.text(st.characters(codec="utf-8"), max_size=80)
_int32 = st.integers(-(1 << 31), (1 << 31) - 1)
_f32 = st.floats(width=32, allow_nan=False)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.fixed_dictionaries({
    "record_id": _text, "site_id": _text, "device_id": _text, "current_job_id": _text,
    "event_time": st.integers(-2_208_988_800_000, 10_413_791_999_999),
    "status": st.sampled_from(["UNKNOWN", "POWERED_ON", "ERROR", "UNREACHABLE"]),
    "activity": st.sampled_from(["IDLE", "PRINTING", "UNLOADING_BUILD_UNIT"]),
    "layers_done": _int32, "layers_total": _int32, "pending_job_count": _int32,
    "recent_layer_duration_s": _f32, "cooling_remaining_s": _f32,
}), min_size=1, max_size=40))
def test_any_valid_heartbeats_decode_as_record_by_record(records: list[dict[str, Any]]) -> None:
    registry = SchemaRegistry.load_default()
    messages = _messages(registry, "heartbeat", records)
    inserts = _decoder(registry).build(3, messages)
    assert inserts is not None
    _same(inserts, _expected(registry, "heartbeat", messages, 3))


def _damaged(registry: SchemaRegistry, damage: str) -> list[Msg]:
    records = sample_records("heartbeat", 30)
    messages = _messages(registry, "heartbeat", records)
    victim = messages[12].value
    assert victim is not None
    if damage == "tombstone":
        bad: bytes | None = None
    elif damage == "far_future":
        bad = registry.encode("heartbeat", records[12] | {"event_time": 13_000_000_000_000})
    elif damage == "padded":
        bad = victim + b"\x02"
    elif damage == "truncated":
        bad = victim[:-3]
    elif damage == "bad_utf8":
        bad = registry.encode("heartbeat", records[12] | {"current_job_id": "JOBX"}).replace(b"JOBX", b"\xff\xfe\xfd\xfc")
    elif damage == "old_version":
        bad = registry.encode("heartbeat", records[12], version=registry.versions("heartbeat")[0].version)
    elif damage == "short":
        bad = b"\x00not"
    elif damage == "long_string_length":
        at = victim.index(records[12]["current_job_id"].encode()) - 1  # its length byte
        bad = victim[:at] + b"\x7e" + victim[at + 1:]
    else:  # bad_enum: the status's index byte, after device_id and the event time
        assert damage == "bad_enum"
        plain = registry.encode("heartbeat", records[12] | {"event_time": 5})  # event time: one byte (0x0a)
        at = plain.index(records[12]["device_id"].encode()) + len(records[12]["device_id"]) + 1
        assert plain[at] == 2  # POWERED_ON, zigzag
        bad = plain[:at] + b"\x7e" + plain[at + 1:]
    messages[12] = Msg(messages[12].offset, bad)
    return messages


@pytest.mark.parametrize("damage", [
    "tombstone", "far_future", "padded", "truncated", "bad_utf8", "old_version", "short", "long_string_length", "bad_enum",
])
def test_a_message_the_python_path_must_judge_sends_the_batch_there(registry: SchemaRegistry, damage: str) -> None:
    messages = _damaged(registry, damage)
    assert _decoder(registry).build(0, messages) is None
    assert _decoder(registry).build(0, messages[:12] + messages[13:]) is not None  # the rest alone is fine


def test_an_int_outside_32_bits_sends_the_batch_there(registry: SchemaRegistry) -> None:
    # Avro ints are varints: a writer can put a 64-bit value where an int belongs.
    record = sample_records("heartbeat", 1)[0] | {"pending_job_count": 2}
    body = registry.encode("heartbeat", record)
    cooling = body[-4:]  # the last field, a float; pending_job_count (zigzag 4) before it
    assert body[-5] == 4
    wide = body[:-5] + b"\x80\x80\x80\x80\x10" + cooling  # 2**31 after zigzag: five bytes, one too big
    longer = body[:-5] + b"\x84\x80\x80\x80\x80\x00" + cooling  # 2 in six bytes: longer than an int's five
    assert registry.decode(wide).record["pending_job_count"] == 1 << 31
    assert _decoder(registry).build(0, [Msg(0, wide)]) is None
    assert _decoder(registry).build(0, [Msg(0, longer)]) is None


def test_a_long_wider_than_64_bits_sends_the_batch_there(registry: SchemaRegistry) -> None:
    record = sample_records("usage_counters", 1)[0] | {"event_time": 5, "total_jobs": 5}
    body = registry.encode("usage_counters", record)
    # after the event time and total_jobs' union branch (v2: optional)
    at = body.index(record["device_id"].encode()) + len(record["device_id"]) + 2
    assert body[at - 2:at + 1] == b"\x0a\x02\x0a"  # event time 5, branch long, total_jobs 5
    # 5 in ten bytes with bit 63 set too: a 64-bit value, read alike both ways.
    widest = Msg(0, body[:at] + b"\x8a" + b"\x80" * 8 + b"\x01" + body[at + 1:])
    _same([_only(_decoder(registry, "usage_counters").build(0, [widest]))],
          _expected(registry, "usage_counters", [widest], 0))
    # A bit beyond 64: the record-by-record path rejects it (test_sink_convert).
    wider = Msg(0, body[:at] + b"\x8a" + b"\x80" * 8 + b"\x02" + body[at + 1:])
    assert _decoder(registry, "usage_counters").build(0, [wider]) is None
