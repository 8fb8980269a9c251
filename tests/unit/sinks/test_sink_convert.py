"""Records to columns, and the dead letters of `prepare`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from schemas import SchemaRegistry
from schemas.samples import sample_record, sample_records
from sinks.batch import Batch
from sinks.convert import Converter
from sinks.layout import layout
from sinks.prepare import prepare


@pytest.fixture(scope="module")
def registry() -> SchemaRegistry:
    return SchemaRegistry.load_default()


@dataclass(frozen=True)
class Msg:
    offset: int
    value: Any
    key: bytes = b"k"
    topic: str = "telemetry.job"
    partition: int = 2
    timestamp: int = 0
    headers: tuple[tuple[str, bytes], ...] = ()


def _table(converted: Any, name: str) -> dict[str, list[Any]]:
    table = next(t for t in converted.tables if t.table == name)
    return dict(zip(table.names, table.columns))


def test_job_rows_and_child_rows(registry: SchemaRegistry) -> None:
    jobs = [dict(r) for r in registry.decode_records("job", registry.encode_many("job", sample_records("job", 3)))]
    converted = Converter(layout(registry.reader("job"))).convert(jobs, 2, [10, 11, 12])
    main = _table(converted, "job")
    assert main["job_id"] == [j["job_id"] for j in jobs]
    assert main["kafka_partition"] == [2, 2, 2] and main["kafka_offset"] == [10, 11, 12]
    assert main["bounding_box_x_mm"] == [(j["bounding_box"] or {}).get("x_mm") for j in jobs]
    layers = _table(converted, "job_layers")
    assert len(layers["idx"]) == sum(len(j["layers"]) for j in jobs)
    assert layers["job_id"][0] == jobs[0]["job_id"]
    assert layers["idx"][: len(jobs[0]["layers"])] == list(range(len(jobs[0]["layers"])))
    assert layers["started_at"][0] == jobs[0]["layers"][0]["started_at"]
    assert converted.rejected == []


def test_conversion_is_deterministic(registry: SchemaRegistry) -> None:
    jobs = registry.decode_records("job", registry.encode_many("job", sample_records("job", 4)))
    conv = Converter(layout(registry.reader("job")))
    a = conv.convert(jobs, 0, [0, 1, 2, 3])
    b = conv.convert(jobs, 0, [0, 1, 2, 3])
    assert [(t.table, t.columns) for t in a.tables] == [(t.table, t.columns) for t in b.tables]


def test_out_of_range_values_are_rejected_with_a_reason(registry: SchemaRegistry) -> None:
    jobs = registry.decode_records("job", registry.encode_many("job", sample_records("job", 3)))
    jobs[1]["event_time"] = 99_999_999_999_999
    jobs[2]["layers"][0]["ended_at"] = -9_999_999_999_999
    converted = Converter(layout(registry.reader("job"))).convert(jobs, 0, [5, 6, 7])
    assert [i for i, _ in converted.rejected] == [1, 2]
    assert "event_time=99999999999999" in converted.rejected[0][1]
    assert converted.rejected[1][1].startswith("job_layers.ended_at=")
    assert _table(converted, "job")["kafka_offset"] == [5]
    assert set(_table(converted, "job_layers")["job_id"]) == {jobs[0]["job_id"]}


def test_an_int_wider_than_its_column_is_rejected_with_a_reason(registry: SchemaRegistry) -> None:
    # fastavro reads an Avro int or long as whatever its varint holds; ClickHouse cannot.
    beats = [dict(r) for r in registry.decode_records("heartbeat", registry.encode_many("heartbeat", sample_records("heartbeat", 3)))]
    beats[1]["pending_job_count"] = 1 << 31
    beats[2]["layers_done"] = -(1 << 31)  # the smallest Int32: stored
    converted = Converter(layout(registry.reader("heartbeat"))).convert(beats, 0, [5, 6, 7])
    assert converted.rejected == [(1, "pending_job_count=2147483648 is outside ClickHouse's Int32 range [-2147483648, 2147483647]")]
    assert _table(converted, "heartbeat")["kafka_offset"] == [5, 7]
    counters = [dict(r) for r in registry.decode_records("usage_counters", registry.encode_many("usage_counters", sample_records("usage_counters", 2)))]
    counters[0]["total_jobs"] = 1 << 63
    converted = Converter(layout(registry.reader("usage_counters"))).convert(counters, 0, [1, 2])
    assert [(i, r.split(" is ")[0]) for i, r in converted.rejected] == [(0, f"total_jobs={1 << 63}")]


def test_prepare_dead_letters_what_it_cannot_decode(registry: SchemaRegistry) -> None:
    good = registry.encode_many("job", sample_records("job", 2))
    messages = (
        Msg(0, good[0]),
        Msg(1, b"garbage"),
        Msg(2, registry.encode("heartbeat", sample_record("heartbeat"))),
        Msg(3, None),
        Msg(4, good[1]),
    )
    batch = Batch("telemetry.job", 2, 0, 5, messages)
    prepared = prepare(batch, "job", registry, Converter(layout(registry.reader("job"))))
    assert prepared.records == 2
    assert [(d.message.offset, d.error, d.stage) for d in prepared.dead] == [
        (1, "NotSingleObjectError", "decode"), (2, "UnexpectedKindError", "decode"), (3, "EmptyMessage", "decode"),
    ]
    assert _table(prepared, "job")["kafka_offset"] == [0, 4]
    headers = dict(prepared.dead[0].headers())
    assert headers["deadletter.origin.offset"] == b"1"
    assert headers["deadletter.origin.topic"] == b"telemetry.job"
    assert headers["deadletter.origin.partition"] == b"2"
