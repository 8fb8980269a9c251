"""Decoded records to ClickHouse columns: pure functions, no I/O.

Called by the sink for every batch of one topic-partition, after decoding. One
`Converter` per kind, built once from its `KindLayout`; `convert()` returns the columns of
every table the kind writes to, and the records it refused with the reason. Refused
records are dead-lettered by the caller; the rest are inserted. The result depends only on
the records, so a retried batch converts to exactly the same rows (required for the
insert deduplication token to be sound).

The only values Avro admits that ClickHouse cannot store are dates and timestamps outside
ClickHouse's range (years 1900-2299) and ints wider than their 32 or 64 bits: those are
checked per column with min/max, which costs little on the hot path, and searched record
by record only when a column fails.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any, Final

from sinks.layout import ChildTable, Column, KindLayout

Record = dict[str, Any]
Getter = Callable[[Any], Any]

# DateTime64(3): 1900-01-01 00:00:00.000 .. 2299-12-31 23:59:59.999 (ms since the epoch);
# Date32 covers the same years in days. Int32 and Int64: what an Avro int and long are
# meant to hold.
RANGES: Final = {
    "datetime64": (-2_208_988_800_000, 10_413_791_999_999),
    "date32": (-25_567, 120_529),
    "int32": (-(1 << 31), (1 << 31) - 1),
    "int64": (-(1 << 63), (1 << 63) - 1),
}


@dataclass
class TableRows:
    """The rows for one table, as columns, ready for `insert_columns`."""

    table: str
    names: tuple[str, ...]
    types: tuple[str, ...]
    columns: list[list[Any]]

    @property
    def rows(self) -> int:
        return len(self.columns[0]) if self.columns else 0


@dataclass
class Converted:
    tables: list[TableRows]
    rejected: list[tuple[int, str]] = field(default_factory=list)  # (record index, reason)


def _getter(path: tuple[str, ...]) -> Getter:
    if len(path) == 1:
        return itemgetter(path[0])

    def get(record: Any) -> Any:
        value = record
        for key in path:
            if value is None:
                return None
            value = value[key]
        return value

    return get


class Converter:
    """Columns for the tables of one kind; reusable and stateless between calls."""

    def __init__(self, layout: KindLayout) -> None:
        self.layout = layout
        self._main = [(c, _getter(c.path)) for c in layout.columns]
        main_all = layout.columns_of(layout.table)
        self._main_names = tuple(c.name for c in main_all)
        self._main_types = tuple(c.type for c in main_all)
        self._children = [
            (
                child,
                _getter(child.path),
                [_getter(c.path) for c in child.parent_columns],
                [_getter(c.path) for c in child.columns],
            )
            for child in layout.children
        ]

    def convert(self, records: Sequence[Record], partition: int, offsets: Sequence[int]) -> Converted:
        """Columns of every table for `records` (the messages at `offsets` of one
        partition). Raises nothing for bad values: they come back in `rejected`."""
        result = self._convert(records, partition, offsets)
        bad = self._check(result, records)
        if not bad:
            return result
        keep = [i for i in range(len(records)) if i not in bad]
        result = self._convert([records[i] for i in keep], partition, [offsets[i] for i in keep])
        result.rejected = sorted(bad.items())
        return result

    def _convert(self, records: Sequence[Record], partition: int, offsets: Sequence[int]) -> Converted:
        n = len(records)
        main = [list(map(get, records)) for _, get in self._main]
        main.append([partition] * n)
        main.append(list(offsets))
        tables = [TableRows(self.layout.table, self._main_names, self._main_types, main)]
        for child, items_of, parent_gets, item_gets in self._children:
            tables.append(self._child_rows(child, records, items_of, parent_gets, item_gets)[0])
        return Converted(tables)

    @staticmethod
    def _child_rows(
        child: ChildTable, records: Sequence[Record], items_of: Getter,
        parent_gets: list[Getter], item_gets: list[Getter],
    ) -> tuple[TableRows, list[int]]:
        """The child table's columns, and for each row the index of its record."""
        width = len(parent_gets) + 1 + len(item_gets)
        columns: list[list[Any]] = [[] for _ in range(width)]
        owners: list[int] = []
        parents = columns[: len(parent_gets)]
        idx_column = columns[len(parent_gets)]
        item_columns = columns[len(parent_gets) + 1:]
        for index, record in enumerate(records):
            items = items_of(record)
            if not items:
                continue
            count = len(items)
            for column, get in zip(parents, parent_gets):
                column.extend([get(record)] * count)
            idx_column.extend(range(count))
            for column, get in zip(item_columns, item_gets):
                column.extend(map(get, items))
            owners.extend([index] * count)
        all_columns = child.all_columns
        rows = TableRows(child.name, tuple(c.name for c in all_columns), tuple(c.type for c in all_columns), columns)
        return rows, owners

    def _check(self, result: Converted, records: Sequence[Record]) -> dict[int, str]:
        """Record index -> reason, for every record with a value out of range."""
        bad: dict[int, str] = {}
        main = result.tables[0]
        for position, (column, _) in enumerate(self._main):
            if column.checked:
                _out_of_range(column, main.columns[position], list(range(len(records))), bad)
        for (child, items_of, parent_gets, item_gets), rows in zip(self._children, result.tables[1:]):
            checked = [(i, c) for i, c in enumerate(child.columns) if c.checked]
            if not checked:
                continue
            owners: list[int] | None = None
            offset = len(parent_gets) + 1
            for i, column in checked:
                values = rows.columns[offset + i]
                if _in_range(column, values):
                    continue
                if owners is None:
                    owners = self._child_rows(child, records, items_of, parent_gets, item_gets)[1]
                _out_of_range(column, values, owners, bad, prefix=f"{child.name}.")
        return bad


def _in_range(column: Column, values: list[Any]) -> bool:
    present = values if not column.type.startswith("Nullable") else [v for v in values if v is not None]
    if not present:
        return True
    lo, hi = RANGES[column.checked]
    return bool(lo <= min(present) and max(present) <= hi)


def _out_of_range(
    column: Column, values: list[Any], owners: list[int], bad: dict[int, str], prefix: str = "",
) -> None:
    if _in_range(column, values):
        return
    lo, hi = RANGES[column.checked]
    for value, owner in zip(values, owners):
        if value is not None and not lo <= value <= hi and owner not in bad:
            bad[owner] = f"{prefix}{column.name}={value} is outside ClickHouse's {column.type} range [{lo}, {hi}]"
