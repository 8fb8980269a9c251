"""Server-side decoding's container, read back with fastavro (no server): every message
is one block holding its header, its body, its offset and the batch's nonce."""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass
from typing import Any

import fastavro
import pytest

from schemas import SchemaRegistry
from schemas.samples import sample_records
from sinks.avro_insert import ServerDecode, eligible
from sinks.layout import layout


@dataclass(frozen=True)
class Msg:
    offset: int
    value: bytes | None


@pytest.fixture(scope="module")
def registry() -> SchemaRegistry:
    return SchemaRegistry.load_default()


def test_only_flat_kinds_are_eligible(registry: SchemaRegistry) -> None:
    flat = {k for k in registry.kinds if eligible(layout(registry.reader(k)))}
    assert "heartbeat" in flat and "job" not in flat and "alert" not in flat
    with pytest.raises(ValueError):
        ServerDecode(layout(registry.reader("job")), registry.reader("job"))


def test_the_container_holds_each_message_whole_with_its_offset_and_the_nonce(registry: SchemaRegistry) -> None:
    records = sample_records("heartbeat", 50)
    messages = [Msg(1000 + 3 * i, m) for i, m in enumerate(registry.encode_many("heartbeat", records))]
    avro = ServerDecode(layout(registry.reader("heartbeat")), registry.reader("heartbeat")).build(4, messages)
    assert avro is not None and avro.rows == 50 and avro.table == "heartbeat"
    read: list[dict[str, Any]] = [dict(r) for r in fastavro.reader(io.BytesIO(avro.body))]  # type: ignore[arg-type]
    assert len(read) == 50
    header = registry.reader("heartbeat").header
    nonces = {r.pop("_printfleet_check") for r in read}
    assert len(nonces) == 1 and nonces.pop().hex() in avro.statement
    for row, message, record in zip(read, messages, records):
        assert row.pop("_printfleet_header") == header
        assert struct.unpack("<q", row.pop("_printfleet_offset"))[0] == message.offset
        assert message.value is not None
        expected = dict(registry.decode(message.value).record)
        event_time = row.pop("event_time")
        assert int(event_time.timestamp() * 1000) == expected.pop("event_time")
        assert row == expected
    assert ", 4, reinterpretAsInt64" in avro.statement  # the partition is a constant


def test_batches_the_python_path_takes(registry: SchemaRegistry) -> None:
    server = ServerDecode(layout(registry.reader("heartbeat")), registry.reader("heartbeat"))
    good = [Msg(i, m) for i, m in enumerate(registry.encode_many("heartbeat", sample_records("heartbeat", 3)))]
    old = registry.encode("heartbeat", sample_records("heartbeat", 1)[0], version=registry.versions("heartbeat")[0].version)
    assert server.build(0, []) is None
    assert server.build(0, good + [Msg(9, None)]) is None
    assert server.build(0, [Msg(9, None)] + good) is None
    assert server.build(0, good[:1] + [Msg(9, None)] + good[1:]) is None
    assert server.build(0, [Msg(9, old)] + good) is None
    assert server.build(0, good + [Msg(9, b"\x00not avro")]) is None
    # Another version inside the batch is left for ClickHouse to refuse (header check).
    assert server.build(0, good[:1] + [Msg(9, old)] + good[1:]) is not None
