"""A batch of Avro bodies decoded column by column into ClickHouse Native blocks, one per table.

Called by the sink for every batch whose kind's newest schema this module can read
(`NativeDecode` raises ValueError for one it cannot: maps, arrays of scalars, arrays not
at the top). Pure functions, no I/O.

Why: decoding record by record in Python (fastavro, then columns) costs 7-10 µs a
heartbeat, and ClickHouse's own Avro reader about 5 µs of the server's CPU, against
about 2 µs for a Native insert of ready columns. Here a batch is decoded one *field*
at a time across all its messages with numpy: every message's read position is one
element of an array, so a field costs a few array operations for the whole batch,
whatever the number of messages (about 1 µs a heartbeat in all). Optional values (a
union of null and one type) narrow the positions to the messages that hold one. An
array of records (a job's parts, layers, ...) is read item by item: item j of every
message that has more than j items at once, into the child table's rows. The results
are Native blocks, the format ClickHouse reads cheapest, sent as they are
(`ClickHouseClient.insert_native`).

The blocks hold exactly what the record-by-record path (`sinks.prepare`) would insert,
or `build` returns None and the sink takes that path, which names and dead-letters the
bad messages. None whenever any message:
- does not start with the newest version's single-object header, or is empty;
- is not consumed exactly by its schema (a body cut short, padded or garbled);
- holds a union or enum index out of range, a boolean other than 0 or 1, a varint longer
  than its type allows, a negative string length, an array in more than one block;
- has a value outside the column's range (`sinks.convert.RANGES`: timestamps, ints), or
  a string that is not UTF-8 (checked in Python for the rare non-ASCII ones).
It is None too when a batch's records are too few for their arrays: item by item costs
a few array operations per item of the longest array, so a handful of jobs with
thousands of layers each goes record by record, where they cost less.

ClickHouse refusing a block built here is an insert error like any other (a schema drift
stops the sink, nothing is committed): it would be a defect of this module, not bad data.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import sliding_window_view

from schemas import SchemaVersion
from schemas.columns import Bytes, Positions, Refused, bodies, values_at, varints
from sinks.convert import RANGES
from sinks.layout import KAFKA_COLUMNS, ChildTable, Column, KindLayout, collect_named

# Item by item pays off while the longest array's items times the item's fields stay
# under this share of all items (each step of the loop costs about as much as a few
# items decoded record by record).
_ITEM_STEPS_PER_ITEM: Final = 0.2
_INT_TYPES: Final = {"Int32": "<i4", "Date32": "<i4", "Int64": "<i8", "DateTime64(3, 'UTC')": "<i8"}
_FLOAT_TYPES: Final = {"Float32": "<f4", "Float64": "<f8"}

@dataclass(frozen=True, slots=True)
class NativeInsert:
    """One table's rows of one batch, ready for `ClickHouseClient.insert_native`."""

    table: str
    statement: str  # INSERT INTO `table` (`columns`, ...) FORMAT Native
    body: bytes
    rows: int
    columns: tuple[str, ...] = ()  # the statement's columns, in order


def _leb128(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _name(text: str) -> bytes:
    raw = text.encode()
    return _leb128(len(raw)) + raw


# -- String columns ------------------------------------------------------------------


def _native_strings(data: Bytes, starts: Positions, lengths: npt.NDArray[np.int64], *, utf8: bool) -> bytes:
    """A Native String column: for each row its length (LEB128) and its bytes, taken
    from `data[starts[i]:starts[i] + lengths[i]]`; with `utf8`, Refused unless every
    string is UTF-8."""
    longest = int(lengths.max(initial=0))
    if longest < 0x80 and len(lengths) * longest <= 4 * int(lengths.sum()) + 64:
        # Short strings of similar lengths (ids, codes): one row of a 2-D window per
        # string, its length byte in front; the rows cut to size are the column.
        window = np.empty((len(lengths), longest + 1), np.uint8)
        window[:, 0] = lengths
        if longest and len(starts) and int(starts.max()) + longest <= len(data):
            # Rows of a view of every `longest` bytes from each position: copied straight
            # from the data, without an index per byte.
            window[:, 1:] = sliding_window_view(data, longest)[starts]
        else:
            window[:, 1:] = data.take(starts[:, None] + np.arange(longest), mode="clip")
        if int(lengths.min(initial=longest)) == longest:  # all of one length (ids): every row whole
            column = window.reshape(-1)
            keep = None
        else:
            keep = np.arange(longest + 1) < lengths[:, None] + 1
            column = window[keep]
        if utf8 and (column & 0x80).any():  # length bytes are < 0x80: a string has one
            high = window & 0x80 if keep is None else (window & 0x80) * keep
            _check_utf8(data, starts, lengths, np.flatnonzero(high.any(axis=1)))
        return column.tobytes()
    if longest >= 1 << 21:
        raise Refused("string longer than 2 MiB")
    head = 1 + (lengths >= 1 << 7).astype(np.int64) + (lengths >= 1 << 14)
    width = head + lengths
    row_at = np.cumsum(width) - width
    out = np.empty(int(width.sum()), np.uint8)
    for k in range(int(head.max(initial=1))):
        rows = head > k
        byte = (lengths[rows] >> (7 * k)) & 0x7F
        out[row_at[rows] + k] = byte | np.where(head[rows] > k + 1, 0x80, 0)
    total = int(lengths.sum())
    if total:
        before = np.cumsum(lengths) - lengths
        within = np.arange(total) - np.repeat(before, lengths)
        taken = data[np.repeat(starts, lengths) + within]
        out[np.repeat(row_at + head, lengths) + within] = taken
        if utf8:
            owner = np.repeat(np.arange(len(lengths)), lengths)
            _check_utf8(data, starts, lengths, np.unique(owner[np.flatnonzero(taken & 0x80)]))
    return out.tobytes()


def _check_utf8(data: Bytes, starts: Positions, lengths: npt.NDArray[np.int64], rows: npt.NDArray[np.intp]) -> None:
    """Refused unless the strings of `rows` (those with a byte >= 0x80; ASCII is UTF-8)
    decode as UTF-8. Rare: ids and codes are ASCII."""
    for row in rows:
        s = int(starts[row])
        try:
            data[s:s + int(lengths[row])].tobytes().decode("utf-8")
        except UnicodeDecodeError as exc:
            raise Refused(f"string is not UTF-8: {exc}") from exc


# -- the columns of one batch, filled field by field ----------------------------------


class _Fixed:
    """A column of fixed-width values (numbers, timestamps, booleans); a nullable one
    starts all null and loses the mark where a value is put."""

    def __init__(self, n: int, dtype: str, nullable: bool) -> None:
        self.values = np.zeros(n, dtype)
        self.nulls = np.ones(n, np.uint8) if nullable else None

    def put(self, rows: Positions, values: npt.NDArray[Any]) -> None:
        self.values[rows] = values
        if self.nulls is not None:
            self.nulls[rows] = 0

    def repeat(self, counts: npt.NDArray[np.int64]) -> _Fixed:
        out = _Fixed(0, self.values.dtype.str, False)
        out.values = np.repeat(self.values, counts)
        out.nulls = None if self.nulls is None else np.repeat(self.nulls, counts)
        return out

    def native(self) -> bytes:
        return (b"" if self.nulls is None else self.nulls.tobytes()) + self.values.tobytes()


class _Strings:
    """A String column: where each value's bytes lie in `source` (the batch's bodies, or
    an enum's symbols); a nullable one starts all null (empty strings)."""

    def __init__(self, n: int, source: Bytes, utf8: bool, nullable: bool) -> None:
        self.source, self.utf8 = source, utf8
        self.starts = np.zeros(n, np.int64)
        self.lengths = np.zeros(n, np.int64)
        self.nulls = np.ones(n, np.uint8) if nullable else None

    def put(self, rows: Positions, starts: Positions, lengths: npt.NDArray[np.int64]) -> None:
        self.starts[rows] = starts
        self.lengths[rows] = lengths
        if self.nulls is not None:
            self.nulls[rows] = 0

    def repeat(self, counts: npt.NDArray[np.int64]) -> _Strings:
        out = _Strings(0, self.source, self.utf8, False)
        out.starts, out.lengths = np.repeat(self.starts, counts), np.repeat(self.lengths, counts)
        out.nulls = None if self.nulls is None else np.repeat(self.nulls, counts)
        return out

    def native(self) -> bytes:
        strings = _native_strings(self.source, self.starts, self.lengths, utf8=self.utf8)
        return strings if self.nulls is None else self.nulls.tobytes() + strings


_Column = _Fixed | _Strings


@dataclass
class _Batch:
    """What decoding one batch works on: the bodies end to end, where each ends, and
    the columns of every table by (table, column)."""

    data: Bytes
    ends: Positions
    columns: dict[tuple[str, str], _Column] = field(default_factory=dict)
    counts: dict[str, npt.NDArray[np.int64]] = field(default_factory=dict)  # child table -> items a message


class _Step(Protocol):
    def run(self, b: _Batch, pos: Positions, rows: Positions, msg: Positions) -> Positions:
        """Read this part of the schema at `pos` (in messages `msg`), store it in rows
        `rows` of its table; the positions after it."""


def _run(steps: Sequence[_Step], b: _Batch, pos: Positions, rows: Positions, msg: Positions) -> Positions:
    for step in steps:
        pos = step.run(b, pos, rows, msg)
    return pos


# -- the steps: a schema compiled into reads ------------------------------------------


@dataclass
class _Leaf:
    """One value of a column: a number, a timestamp, a boolean, a string or an enum."""

    key: tuple[str, str]
    column: Column
    avro: str  # int, long, float, double, boolean, string, bytes, enum
    symbols: tuple[bytes, ...] = ()

    def __post_init__(self) -> None:
        inner = self.column.type
        if inner.startswith("LowCardinality("):  # a dictionary ClickHouse builds from plain strings
            inner = inner[len("LowCardinality("):-1]
        self.nullable = inner.startswith("Nullable(")
        if self.nullable:
            inner = inner[len("Nullable("):-1]
        self.native_type = f"Nullable({inner})" if self.nullable else inner
        self.dtype = ""
        self.range: tuple[int, int] | None = RANGES[self.column.checked] if self.column.checked else None
        if self.avro in ("string", "bytes", "enum") and inner == "String":
            pass
        elif self.avro in ("int", "long") and inner in _INT_TYPES:
            self.dtype = _INT_TYPES[inner]
        elif self.avro in ("float", "double") and inner == ("Float32" if self.avro == "float" else "Float64"):
            self.dtype = _FLOAT_TYPES[inner]
        elif self.avro == "boolean" and inner == "Bool":
            self.dtype = "<u1"
        else:
            raise ValueError(f"{self.column.name}: Avro {self.avro} into {self.column.type} is not read column by column")
        if self.avro == "enum":
            if max(map(len, self.symbols)) >= 0x80:
                raise ValueError(f"{self.column.name}: an enum symbol longer than 127 bytes")
            self.table = np.frombuffer(b"".join(self.symbols), np.uint8)
            self.sizes = np.array([len(s) for s in self.symbols], np.int64)
            self.at = np.cumsum(self.sizes) - self.sizes

    def allocate(self, n: int, data: Bytes) -> _Column:
        if self.avro == "enum":
            return _Strings(n, self.table, False, self.nullable)
        if self.avro in ("string", "bytes"):
            return _Strings(n, data, self.avro == "string", self.nullable)
        return _Fixed(n, self.dtype, self.nullable)

    def run(self, b: _Batch, pos: Positions, rows: Positions, msg: Positions) -> Positions:
        column = b.columns[self.key]
        ends = b.ends[msg]
        if isinstance(column, _Strings):
            if self.avro == "enum":
                index, pos = varints(b.data, pos, 5)
                if ((index < 0) | (index >= len(self.symbols))).any():
                    raise Refused("enum index out of range")
                column.put(rows, self.at[index], self.sizes[index])
            else:
                lengths, pos = varints(b.data, pos, 10)
                if ((lengths < 0) | (pos + lengths > ends)).any():
                    raise Refused("string length negative or past the end of its message")
                column.put(rows, pos, lengths)
                pos = pos + lengths
        elif self.avro in ("int", "long"):
            values, pos = varints(b.data, pos, 5 if self.avro == "int" else 10)
            if self.range is not None and values.size and (values.min() < self.range[0] or values.max() > self.range[1]):
                raise Refused(f"{self.column.name} outside [{self.range[0]}, {self.range[1]}]")
            column.put(rows, values)
        else:
            values = values_at(b.data, pos, self.dtype)
            if self.avro == "boolean" and (values > 1).any():
                raise Refused("boolean byte other than 0 or 1")
            column.put(rows, values)
            pos = pos + np.dtype(self.dtype).itemsize
        if (pos > ends).any():  # read past its message: no later read may start there
            raise Refused("read past the end of a message")
        return pos


@dataclass
class _Optional:
    """A union of null and one type: the type's steps, for the messages that hold one."""

    null_index: int
    steps: list[_Step]

    def run(self, b: _Batch, pos: Positions, rows: Positions, msg: Positions) -> Positions:
        index, pos = varints(b.data, pos, 5)
        if ((index != 0) & (index != 1)).any():
            raise Refused("union index out of range")
        held = np.flatnonzero(index != self.null_index)
        if held.size:
            pos[held] = _run(self.steps, b, pos[held], rows[held], msg[held])
        return pos


@dataclass
class _Array:
    """A top-level array of records: its items are the rows of a child table."""

    child: str
    steps: list[_Step]
    leaves: list[_Leaf]  # the child table's columns
    steps_per_item: float  # see _ITEM_STEPS_PER_ITEM

    def run(self, b: _Batch, pos: Positions, rows: Positions, msg: Positions) -> Positions:
        counts, pos = varints(b.data, pos, 10)
        if (counts < 0).any():
            raise Refused("array written in blocks with byte sizes")
        longest, total = int(counts.max(initial=0)), int(counts.sum())
        if longest * len(self.leaves) > self.steps_per_item * total + 64:
            raise Refused("too few records for their items: record by record costs less")
        first_row = np.cumsum(counts) - counts
        b.counts[self.child] = counts
        for leaf in self.leaves:
            b.columns[leaf.key] = leaf.allocate(total, b.data)
        for j in range(longest):
            at = np.flatnonzero(counts > j)
            pos[at] = _run(self.steps, b, pos[at], first_row[at] + j, msg[at])
        filled = np.flatnonzero(counts)
        if filled.size:  # a block of items ends the array with a count of 0
            end, after = varints(b.data, pos[filled], 10)
            if (end != 0).any():
                raise Refused("array in more than one block")
            pos[filled] = after
        return pos


# -- compiling a schema ---------------------------------------------------------------


def _resolve(avro: Any, named: dict[str, Any]) -> Any:
    return named[avro] if isinstance(avro, str) and avro in named else avro


class _Compiler:
    """The steps that read one schema, with the columns of each table by path."""

    def __init__(self, layout: KindLayout, schema: dict[str, Any], steps_per_item: float) -> None:
        self.layout, self.steps_per_item = layout, steps_per_item
        self.named: dict[str, Any] = {}
        collect_named(schema, self.named)
        self.leaves: list[_Leaf] = []

    def record(self, table: str, by_path: dict[tuple[str, ...], Column], fields: list[dict[str, Any]],
               prefix: tuple[str, ...], optional: bool) -> list[_Step]:
        """`optional`: under a union with null, where every column must be nullable."""
        steps: list[_Step] = []
        for fld in fields:
            steps += self.value(table, by_path, fld["type"], prefix + (fld["name"],), optional)
        return steps

    def value(self, table: str, by_path: dict[tuple[str, ...], Column], avro: Any, path: tuple[str, ...],
              optional: bool) -> list[_Step]:
        avro = _resolve(avro, self.named)
        if isinstance(avro, list):
            if len(avro) != 2 or "null" not in avro:
                raise ValueError(f"{'.'.join(path)}: only unions of null and one type are read column by column")
            inner = _resolve(avro[1 - avro.index("null")], self.named)
            return [_Optional(avro.index("null"), self.value(table, by_path, inner, path, True))]
        kind = avro.get("type") if isinstance(avro, dict) else avro
        if isinstance(kind, (dict, list)):
            return self.value(table, by_path, kind, path, optional)
        if kind == "record":
            return self.record(table, by_path, avro["fields"], path, optional)
        if kind == "array":
            child = next((c for c in self.layout.children if c.path == path), None)
            if child is None or optional or table != self.layout.table or len(path) != 1:
                raise ValueError(f"{'.'.join(path)}: only top-level arrays of records are read column by column")
            item = _resolve(avro["items"], self.named)
            before = len(self.leaves)
            steps = self.record(child.name, {c.path: c for c in child.columns}, item["fields"], (), False)
            return [_Array(child.name, steps, self.leaves[before:], self.steps_per_item)]
        if kind not in ("int", "long", "float", "double", "boolean", "string", "bytes", "enum"):
            raise ValueError(f"{'.'.join(path)}: Avro {kind} is not read column by column")
        column = by_path[path]
        symbols = tuple(s.encode() for s in avro["symbols"]) if kind == "enum" else ()
        leaf = _Leaf((table, column.name), column, kind, symbols)
        if optional and not leaf.nullable:
            raise ValueError(f"{column.name}: a value under a union with null in a column that cannot hold null")
        self.leaves.append(leaf)
        return [leaf]


def native_decoder(layout: KindLayout, newest: SchemaVersion) -> NativeDecode | None:
    """The decoder of a kind, or None for a kind this module cannot read."""
    try:
        return NativeDecode(layout, newest)
    except ValueError:
        return None


def eligible(layout: KindLayout, newest: SchemaVersion) -> bool:
    """True for a kind whose rows can be decoded column by column from its bodies."""
    return native_decoder(layout, newest) is not None


class NativeDecode:
    """Builds the Native blocks and statements for batches of one kind."""

    def __init__(self, layout: KindLayout, newest: SchemaVersion, *, steps_per_item: float = _ITEM_STEPS_PER_ITEM) -> None:
        """`steps_per_item`: how many steps of the item-by-item loop a batch may take per
        item of its arrays before it goes record by record (tests: inf, always here)."""
        if layout.version != newest.version:
            raise ValueError(f"{layout.kind}: layout of v{layout.version}, schema v{newest.version}")
        self.layout = layout
        self._header = newest.header
        compiler = _Compiler(layout, dict(newest.raw), steps_per_item)
        self._steps = compiler.record(layout.table, {c.path: c for c in layout.columns}, list(newest.raw["fields"]), (), False)
        self._leaves = {leaf.key: leaf for leaf in compiler.leaves}
        for table in layout.tables:
            missing = [c.name for c in self._table_columns(table) if (table, c.name) not in self._leaves]
            if missing:
                raise ValueError(f"{table}: columns {missing} are not read column by column")
        self._columns = {t: tuple(c.name for c in layout.columns_of(t)) for t in layout.tables}
        self._statements = {
            t: f"INSERT INTO `{t}` ({', '.join(f'`{c}`' for c in self._columns[t])}) FORMAT Native"
            for t in layout.tables
        }

    def _table_columns(self, table: str) -> tuple[Column, ...]:
        if table == self.layout.table:
            return self.layout.columns
        return next(c for c in self.layout.children if c.name == table).columns

    def build(self, partition: int, messages: Sequence[Any]) -> list[NativeInsert] | None:
        """The inserts of `messages` (one partition's batch), one per table with rows, or
        None when the record-by-record path must take it (see the module's docstring)."""
        try:
            return self._build(partition, messages)
        except (Refused, IndexError):  # IndexError: a garbled body read past the batch
            return None

    def _build(self, partition: int, messages: Sequence[Any]) -> list[NativeInsert] | None:
        if not messages:
            return None
        values = [m.value for m in messages]
        if None in values:  # a tombstone
            return None
        n = len(values)
        _, data, pos, ends = bodies(values, self._header)  # Refused unless all are the newest version's
        b = _Batch(data, ends)
        for key, leaf in self._leaves.items():
            if key[0] == self.layout.table:  # a child table's are sized by its _Array
                b.columns[key] = leaf.allocate(n, data)
        everyone = np.arange(n)
        pos = _run(self._steps, b, pos, everyone, everyone)
        if (pos != b.ends).any():
            return None
        first, last = messages[0].offset, messages[-1].offset
        # Offsets rise within a partition: n of them from first to last are consecutive.
        offsets = np.arange(first, last + 1) if last - first == n - 1 else np.fromiter((m.offset for m in messages), np.int64, n)
        main = self.layout.table
        kafka = [_Fixed(n, "<i4", False), _Fixed(0, "<i8", False)]
        kafka[0].values[:] = partition
        kafka[1].values = offsets.astype("<i8")
        out = [self._insert(main, n, [(c.name, self._leaves[(main, c.name)].native_type, b.columns[(main, c.name)])
                                      for c in self.layout.columns]
                            + [(name, t, col) for (name, t), col in zip(KAFKA_COLUMNS, kafka)])]
        for child in self.layout.children:
            counts = b.counts[child.name]
            total = int(counts.sum())
            if total:
                out.append(self._insert(child.name, total, self._child_columns(child, b, counts)))
        return out

    def _child_columns(self, child: ChildTable, b: _Batch, counts: npt.NDArray[np.int64]) -> list[tuple[str, str, _Column]]:
        main = self.layout.table
        columns: list[tuple[str, str, _Column]] = [
            (c.name, self._leaves[(main, c.name)].native_type, b.columns[(main, c.name)].repeat(counts))
            for c in child.parent_columns
        ]
        idx = _Fixed(0, "<u4", False)
        idx.values = (np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)).astype("<u4")
        columns.append(("idx", "UInt32", idx))
        columns += [(c.name, self._leaves[(child.name, c.name)].native_type, b.columns[(child.name, c.name)])
                    for c in child.columns]
        return columns

    def _insert(self, table: str, rows: int, columns: list[tuple[str, str, _Column]]) -> NativeInsert:
        parts = [_leb128(len(columns)), _leb128(rows)]
        for name, native_type, column in columns:
            parts += [_name(name), _name(native_type), column.native()]
        return NativeInsert(table, self._statements[table], b"".join(parts), rows, self._columns[table])
