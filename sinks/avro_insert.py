"""Server-side decoding: a batch's Avro bodies handed to ClickHouse's own Avro reader.

Called by the sink for every batch of a *flat* kind (one table, no nested records, no
unions, no arrays or maps: heartbeat, usage_counters, cleaning_roll; `eligible`) whose
messages are all written with the kind's newest schema version. Decoding in Python costs
about 10 µs per heartbeat, five times the rest of the sink's work; ClickHouse's C++ reader
takes a fraction of that. Pure functions, no I/O.

What is sent: an Avro object container file whose writer schema is the kind's newest
schema with a fixed(10) field put in front (the message's single-object header: marker
and fingerprint) and two fixed(8) fields appended: the message's Kafka offset
(little-endian, as `struct` packs it faster than a varint) and a check nonce drawn per
batch. Each message becomes one block of one object: the whole message as it came from
Kafka, followed by the two appended values. No byte of a message is parsed or copied
apart here (about 0.6 µs a message); the partition, the same for the whole batch, is a
constant of the statement.

Why the result is exactly what the Python path (`sinks.prepare`) would store, or nothing:

- every message's header must equal the newest version's (ClickHouse checks each one; a
  batch whose first or last message is of another version, or that holds a tombstone,
  goes the Python path at once: `build` returns None). The Python path resolves old
  versions and dead-letters the rest;
- the statement is `INSERT ... SELECT ... FROM input(...) WHERE throwIf(...)`, and the
  condition rejects the whole insert when any row fails a check the Python path makes:
  the nonce must read back unchanged (a body shorter or longer than its schema shifts
  it, so a truncated, padded or garbled body cannot pass), timestamps
  must lie in the range the converter admits (`sinks.convert._RANGES`), strings must be
  valid UTF-8. ClickHouse refuses bad enum indexes and bodies cut short by itself;
- one batch is one block, so a refused insert stores nothing. The sink then prepares the
  same batch in Python (same offsets, same token), which names the bad messages and
  dead-letters them. A repeat after an unknown outcome carries the same deduplication
  token whichever path it takes, so ClickHouse stores the batch once.
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from schemas import SchemaVersion
from sinks.convert import _RANGES
from sinks.layout import KAFKA_COLUMNS, KindLayout

HEADER_SIZE: Final = 10
_FLAT_TYPES: Final = frozenset({
    "String", "Int32", "Int64", "Float32", "Float64", "Bool", "LowCardinality(String)", "DateTime64(3, 'UTC')",
})
_HEADER_FIELD: Final = "_printfleet_header"
_CHECK_FIELD: Final = "_printfleet_check"
_OFFSET_FIELD: Final = "_printfleet_offset"
_PACK_OFFSET: Final = struct.Struct("<q").pack
_SYNC: Final = b"printfleet-sink!"  # 16 bytes; ClickHouse reads blocks by their sizes


@dataclass(frozen=True, slots=True)
class AvroInsert:
    """One batch, ready for `ClickHouseClient.insert_avro`."""

    table: str
    statement: str
    body: bytes
    rows: int


def eligible(layout: KindLayout) -> bool:
    """True for a kind whose rows ClickHouse can read straight from the Avro body."""
    return not layout.children and all(len(c.path) == 1 and c.type in _FLAT_TYPES for c in layout.columns)


def _zigzag(n: int) -> bytes:
    n = (n << 1) ^ (n >> 63)
    out = bytearray()
    while n & ~0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _quote(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


class ServerDecode:
    """Builds the container and the statement for batches of one flat kind."""

    def __init__(self, layout: KindLayout, newest: SchemaVersion) -> None:
        if not eligible(layout):
            raise ValueError(f"{layout.kind}: not a flat kind, ClickHouse cannot read it from the body alone")
        self.layout = layout
        self._header = newest.header
        schema: dict[str, Any] = dict(newest.raw)
        schema["fields"] = [
            {"name": _HEADER_FIELD, "type": {"type": "fixed", "name": "PrintfleetSinkHeader", "size": HEADER_SIZE}},
            *newest.raw["fields"],
            {"name": _OFFSET_FIELD, "type": {"type": "fixed", "name": "PrintfleetSinkOffset", "size": 8}},
            {"name": _CHECK_FIELD, "type": {"type": "fixed", "name": "PrintfleetSinkCheck", "size": 8}},
        ]
        text = json.dumps(schema).encode()
        self._file_header = (
            b"Obj\x01" + _zigzag(1) + _zigzag(len(b"avro.schema")) + b"avro.schema" + _zigzag(len(text)) + text
            + _zigzag(0) + _SYNC
        )
        columns = layout.columns_of(layout.table)
        names = ", ".join(f"`{c.name}`" for c in columns)
        body_columns = layout.columns  # the Kafka columns come from the appended fields
        structure = f"`{_HEADER_FIELD}` FixedString({HEADER_SIZE}), " + ", ".join(
            f"`{c.name}` {'Int64' if c.checked == 'datetime64' else c.type}" for c in body_columns
        ) + f", `{_OFFSET_FIELD}` FixedString(8), `{_CHECK_FIELD}` FixedString(8)"
        self._select = ", ".join(
            f"fromUnixTimestamp64Milli(`{c.name}`, 'UTC')" if c.checked == "datetime64" else f"`{c.name}`"
            for c in body_columns
        )
        lo, hi = _RANGES["datetime64"]
        self._checks = [f"`{c.name}` NOT BETWEEN {lo} AND {hi}" for c in body_columns if c.checked == "datetime64"]
        self._checks += [f"NOT isValidUTF8(`{c.name}`)" for c in body_columns if c.type.endswith(("String", "String)"))]
        self._insert = f"INSERT INTO `{layout.table}` ({names}) SELECT {self._select}"
        self._input = f"FROM input({_quote(structure)})"
        assert [n for n, _ in KAFKA_COLUMNS] == ["kafka_partition", "kafka_offset"]
        # One block of one object: count 1, then the block's size; precomputed per size.
        self._block_heads = [_zigzag(1) + _zigzag(n) for n in range(1 << 14)]

    def build(self, partition: int, messages: Sequence[Any]) -> AvroInsert | None:
        """The insert of `messages` (one partition's batch), or None when the batch is
        empty, holds a tombstone, or its first or last message is not of the newest
        schema version (the Python path handles that batch). Other messages of another
        version make ClickHouse refuse the insert."""
        header = self._header
        if not messages or any(m.value is None or not m.value.startswith(header) for m in (messages[0], messages[-1])):
            return None
        nonce = os.urandom(8)
        trailer = nonce + _SYNC
        extra = 16  # the offset and the nonce
        heads, pack = self._block_heads, _PACK_OFFSET
        parts = [self._file_header]
        append = parts.append
        for m in messages:
            value = m.value
            if value is None:
                return None
            size = len(value) + extra
            append(heads[size] if size < len(heads) else _zigzag(1) + _zigzag(size))
            append(value)
            append(pack(m.offset))
            append(trailer)
        checks = " OR ".join([
            f"`{_CHECK_FIELD}` != unhex('{nonce.hex()}')", f"`{_HEADER_FIELD}` != unhex('{header.hex()}')", *self._checks,
        ])
        statement = (
            f"{self._insert}, {int(partition)}, reinterpretAsInt64(`{_OFFSET_FIELD}`) {self._input} "
            f"WHERE throwIf({checks}, 'printfleet-sink: a record failed the server-side checks') = 0 FORMAT Avro"
        )
        return AvroInsert(self.layout.table, statement, b"".join(parts), len(messages))
