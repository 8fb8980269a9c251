"""Avro bodies of a whole batch read one field at a time with numpy.

Every message's read position is one element of an array, so a field costs a few array
operations for the whole batch, whatever the number of messages. Two users:

- `FlatReader`: the records of a batch of one *flat* writer schema (numbers, booleans,
  strings and enums only, as the heartbeat is), as the same dicts fastavro returns.
  `codec.decode_records` takes this path for such batches: about 3 µs a heartbeat at
  2,000 a batch against about 10 µs record by record (docs/streams-bench.md).
- `sinks.native_block`, which builds ClickHouse columns from the same reads.

Whatever this module does not vouch for raises `Refused`, and the caller reads the batch
record by record, where the bad message gets its precise error. So this path only ever
returns what fastavro would have returned.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt

Bytes = npt.NDArray[np.uint8]
Positions = npt.NDArray[np.int64]

PAD: Final = 16  # zero bytes after the last body: a varint read near the end stays in bounds
_INT32: Final = (-(1 << 31), (1 << 31) - 1)
_FIXED: Final = {"float": "<f4", "double": "<f8"}


class Refused(Exception):
    """A message this module does not vouch for: the caller takes the record-by-record path."""


def varints(data: Bytes, pos: Positions, max_bytes: int) -> tuple[npt.NDArray[np.int64], Positions]:
    """Zigzag varints at `pos`: (values, positions after them). Byte k is read only for
    the values that still continue after byte k - 1: most values take one or two."""
    first = data[pos]
    raw = (first & 0x7F).astype(np.uint64)
    length = np.ones(len(pos), np.int64)
    rows = np.flatnonzero(first & 0x80)
    k = 1
    while rows.size:
        if k == max_bytes:
            raise Refused("varint longer than its type allows")
        byte = data[pos[rows] + k]
        if k == 9 and (byte > 1).any():  # the tenth byte holds bit 63 alone; more is wider than 64 bits
            raise Refused("varint wider than 64 bits")
        raw[rows] |= (byte & 0x7F).astype(np.uint64) << np.uint64(7 * k)
        length[rows] += 1
        rows = rows[(byte & 0x80) != 0]
        k += 1
    values = (raw >> np.uint64(1)).astype(np.int64) ^ -(raw & np.uint64(1)).astype(np.int64)
    return values, pos + length


def values_at(data: Bytes, pos: Positions, dtype: str) -> npt.NDArray[Any]:
    """The little-endian values of `dtype` that start at each of `pos` (unaligned)."""
    width = np.dtype(dtype).itemsize
    return np.ndarray((len(data) - width + 1,), dtype, data, 0, (1,))[pos]


def bodies(messages: Sequence[bytes], header: bytes) -> tuple[bytes, Bytes, Positions, Positions]:
    """The messages end to end: (their bytes, the same padded as an array, where each
    body starts, where each ends). Refused unless every message starts with `header`, a
    10-byte single-object header."""
    lengths = np.fromiter(map(len, messages), np.int64, len(messages))
    if (lengths < len(header)).any():
        raise Refused("a message shorter than its header")
    raw = b"".join(messages)
    data = np.frombuffer(raw + bytes(PAD), np.uint8)
    starts = np.cumsum(lengths) - lengths
    # A single-object header is 10 bytes: compared 8 and 2 at a time for every message.
    marker_and_fingerprint, fingerprint_end = np.frombuffer(header[:8], "<u8")[0], np.frombuffer(header[8:], "<u2")[0]
    if ((values_at(data, starts, "<u8") != marker_and_fingerprint)
            | (values_at(data, starts + 8, "<u2") != fingerprint_end)).any():
        raise Refused("not every message starts with the same header")
    return raw, data, starts + len(header), starts + lengths


@dataclass(frozen=True)
class _Field:
    name: str
    avro: str  # string, int, long, float, double, boolean, enum
    symbols: tuple[str, ...] = ()


@dataclass(frozen=True)
class FlatReader:
    """Reads batches of one flat record schema (see the module doc)."""

    fields: tuple[_Field, ...]
    make: Callable[..., dict[str, Any]]  # the field values, in order -> the record

    @staticmethod
    def of(parsed: dict[str, Any]) -> FlatReader | None:
        """The reader of a parsed record schema, or None when it is not flat."""
        fields = []
        for f in parsed["fields"]:
            t = f["type"]
            if isinstance(t, dict) and t.get("type") == "enum":
                fields.append(_Field(f["name"], "enum", tuple(t["symbols"])))
                continue
            if isinstance(t, dict) and set(t) <= {"type", "doc"}:  # {"type": "long"} and the like
                t = t["type"]
            if t not in ("string", "int", "long", "float", "double", "boolean"):
                return None
            fields.append(_Field(f["name"], t))
        # A dict display is the cheapest way to build a record (half the cost of
        # dict(zip(...))); the names are the schema's, quoted by repr.
        args = ", ".join(f"v{i}" for i in range(len(fields)))
        body = ", ".join(f"{f.name!r}: v{i}" for i, f in enumerate(fields))
        make = eval(f"lambda {args}: {{{body}}}")  # noqa: S307  (built from the schema's field names only)
        return FlatReader(tuple(fields), make)

    def read(self, messages: Sequence[bytes], header: bytes) -> list[dict[str, Any]]:
        """The records of `messages`, each `header` then a body of this schema.
        Raises Refused (see the module doc)."""
        if not messages:
            return []
        b = _Batch(*bodies(messages, header))
        try:
            columns = [_READ[f.avro](b, f) for f in self.fields]
        except IndexError as exc:  # a body cut short, read on into the padding and past it
            raise Refused("a read past the end of the batch") from exc
        # Positions only grow (lengths are checked non-negative), so a body that any read
        # ran past, or that has bytes left, ends anywhere but at its message's end.
        if (b.pos != b.ends).any():
            raise Refused("a body not consumed exactly by its schema")
        return list(map(self.make, *columns))


class _Batch:
    """A batch being read: its bytes, and where each message's next field starts."""

    def __init__(self, raw: bytes, data: Bytes, pos: Positions, ends: Positions) -> None:
        self.raw, self.data, self.pos, self.ends = raw, data, pos, ends
        # Every byte as one character: a string's slice of this text is its value when
        # the string is ASCII, which ids and codes are; the others are decoded as UTF-8.
        self.text = raw.decode("latin-1")


def _string(b: _Batch, f: _Field) -> list[Any]:
    lengths, pos = varints(b.data, b.pos, 10)
    after = pos + lengths
    if (lengths < 0).any() or (after > b.ends).any():
        raise Refused(f"{f.name}: string length negative or past the end of its message")
    starts, stops = pos.tolist(), after.tolist()
    text = b.text
    column = [text[i:j] for i, j in zip(starts, stops)]
    if not "".join(column).isascii():  # rare: find the others and decode them
        for row, value in enumerate(column):
            if not value.isascii():
                try:
                    column[row] = b.raw[starts[row]:stops[row]].decode("utf-8")
                except UnicodeDecodeError as exc:
                    raise Refused(f"{f.name} is not UTF-8") from exc
    b.pos = after
    return column


def _integer(b: _Batch, f: _Field) -> list[Any]:
    values, b.pos = varints(b.data, b.pos, 10 if f.avro == "long" else 5)
    if f.avro == "int" and values.size and (values.min() < _INT32[0] or values.max() > _INT32[1]):
        raise Refused(f"{f.name}: wider than an int")
    return values.tolist()  # type: ignore[no-any-return]


def _enum(b: _Batch, f: _Field) -> list[Any]:
    index, b.pos = varints(b.data, b.pos, 5)
    if index.size and (index.min() < 0 or index.max() >= len(f.symbols)):
        raise Refused(f"{f.name}: enum index out of range")
    symbols = f.symbols
    return [symbols[i] for i in index.tolist()]


def _boolean(b: _Batch, f: _Field) -> list[Any]:
    values = b.data[b.pos]
    if (values > 1).any():
        raise Refused(f"{f.name}: boolean byte other than 0 or 1")
    b.pos = b.pos + 1
    return (values == 1).tolist()  # type: ignore[no-any-return]


def _fixed_width(b: _Batch, f: _Field) -> list[Any]:
    dtype = _FIXED[f.avro]
    values = values_at(b.data, b.pos, dtype)
    b.pos = b.pos + np.dtype(dtype).itemsize
    return values.tolist()  # type: ignore[no-any-return]


_READ: Final[dict[str, Callable[[_Batch, _Field], list[Any]]]] = {
    "string": _string, "int": _integer, "long": _integer, "enum": _enum, "boolean": _boolean,
    "float": _fixed_width, "double": _fixed_width,
}
