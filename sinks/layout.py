"""Table layouts derived from the Avro schemas: which ClickHouse table and column every
field of every record kind lands in.

Called by `sinks.ddl` (to write CREATE/ALTER statements) and by `sinks.convert` (to turn
decoded records into columns), so both read the same mapping and a new schema version
needs no hand edits. The rules, applied to one version of a kind's schema:

- one table per kind, named after it (`heartbeat`, `job`, ...);
- scalar fields become columns of the same name: string -> String, int -> Int32,
  long -> Int64, float -> Float32, double -> Float64, boolean -> Bool, bytes -> String,
  timestamp-millis -> DateTime64(3, 'UTC'), date -> Date32, a union with null ->
  Nullable(...); enums and the names in `VOCABULARY` are LowCardinality(String), since a
  new enum symbol in a later version then needs no migration;
- a nested record is flattened: `printer_size.x_mm` -> `printer_size_x_mm` (all Nullable
  when the record itself is optional);
- an array or map of scalars becomes Array(...) / Map(String, ...);
- an array of records gets its own child table `<kind>_<field>` (`job_parts`,
  `job_layers`, ...), one row per element with its position `idx`, the parent's envelope
  (record_id, site_id, device_id, event_time) and the parent's join keys (`job_id` for
  jobs, see `PARENT_KEYS`).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final

from schemas import SchemaVersion
from sinks.errors import SchemaMappingError

# Strings with a small set of values: stored dictionary-encoded.
VOCABULARY: Final = frozenset({
    "site_id", "device_id", "model_number", "firmware_release", "firmware_version",
    "material_type", "subsystem", "code", "rule_id", "part_number", "printhead_type",
    "source_application", "installed_version", "available_version", "cohort_id",
    "product_number",
})

# Fields of the parent record copied into every row of its child tables, to join on.
PARENT_KEYS: Final[Mapping[str, tuple[str, ...]]] = {
    "job": ("job_id",),
    "alert": ("alert_id",),
}

# Envelope columns every child row repeats, so child tables sort and partition like
# their parent and join on record_id.
CHILD_ENVELOPE: Final = ("record_id", "site_id", "device_id", "event_time")

# Where a main table's row came from: partition and offset make "exactly once" checkable
# with SQL (count() = uniqExact(kafka_partition, kafka_offset)).
KAFKA_COLUMNS: Final = (("kafka_partition", "Int32"), ("kafka_offset", "Int64"))

_SCALARS: Final[Mapping[str, str]] = {
    "string": "String", "bytes": "String", "int": "Int32", "long": "Int64",
    "float": "Float32", "double": "Float64", "boolean": "Bool",
}
_INT_CHECKS: Final[Mapping[str, str]] = {"int": "int32", "long": "int64"}
_LOGICAL: Final[Mapping[tuple[str, str], str]] = {
    ("long", "timestamp-millis"): "DateTime64(3, 'UTC')",
    ("int", "date"): "Date32",
}


@dataclass(frozen=True, slots=True)
class Column:
    """One ClickHouse column and where its value sits in a decoded record.

    `path` is the chain of keys from the record (or array element) to the value; a key
    whose value is None (an optional nested record) makes the column None.
    `checked` names a range check the converter applies ("datetime64", "date32", "int32",
    "int64": Avro ints and longs are varints, and a writer can put a wider value in one).
    """

    name: str
    type: str
    path: tuple[str, ...]
    doc: str = ""
    checked: str = ""


@dataclass(frozen=True, slots=True)
class ChildTable:
    """A table of the elements of an array of records, e.g. the parts of a job.

    `path` leads from the parent record to the array (through optional records).
    `parent_columns` are copied from the parent record, `columns` read from each element.
    """

    name: str
    path: tuple[str, ...]
    parent_columns: tuple[Column, ...]
    columns: tuple[Column, ...]
    doc: str = ""

    @property
    def all_columns(self) -> tuple[Column, ...]:
        return self.parent_columns + (Column("idx", "UInt32", ()),) + self.columns


@dataclass(frozen=True, slots=True)
class KindLayout:
    """Every table one version of a kind's schema writes to."""

    kind: str
    version: int
    table: str
    columns: tuple[Column, ...]
    children: tuple[ChildTable, ...]
    doc: str = ""

    @property
    def tables(self) -> tuple[str, ...]:
        return (self.table,) + tuple(child.name for child in self.children)

    def columns_of(self, table: str) -> tuple[Column, ...]:
        """All columns of `table` (a main table's include the Kafka columns)."""
        if table == self.table:
            return self.columns + tuple(Column(n, t, ()) for n, t in KAFKA_COLUMNS)
        for child in self.children:
            if child.name == table:
                return child.all_columns
        raise KeyError(table)


def layout(schema: SchemaVersion) -> KindLayout:
    """The tables of one schema version. Raises `SchemaMappingError` for a shape the
    rules above do not cover (an array of records inside an array element)."""
    named: dict[str, Any] = {}
    collect_named(schema.raw, named)
    _columns = functools.partial(_field_columns, named)
    columns: list[Column] = []
    arrays: list[tuple[tuple[str, ...], dict[str, Any], str]] = []
    for fld in schema.raw["fields"]:
        columns.extend(_columns(fld["name"], (fld["name"],), fld["type"], fld.get("doc", ""), False, arrays))
    by_name = {c.name: c for c in columns}
    keys = tuple(by_name[n] for n in CHILD_ENVELOPE + PARENT_KEYS.get(schema.kind, ()))
    children = []
    for path, item, doc in arrays:
        child_cols: list[Column] = []
        nested: list[tuple[tuple[str, ...], dict[str, Any], str]] = []
        for fld in item["fields"]:
            child_cols.extend(_columns(fld["name"], (fld["name"],), fld["type"], fld.get("doc", ""), False, nested))
        if nested:
            raise SchemaMappingError(f"{schema.resource}: arrays of records inside {'.'.join(path)} are not mapped")
        name = f"{schema.kind}_{path[-1]}"
        clash = {c.name for c in child_cols} & {c.name for c in keys} | ({"idx"} & {c.name for c in child_cols})
        if clash:
            raise SchemaMappingError(f"{schema.resource}: {name} columns {sorted(clash)} clash with the parent keys")
        children.append(ChildTable(name, path, keys, tuple(child_cols), doc))
    names = [schema.kind, *(c.name for c in children)]
    if len(set(names)) != len(names):
        raise SchemaMappingError(f"{schema.resource}: two child tables would be named alike: {names}")
    return KindLayout(schema.kind, schema.version, schema.kind, tuple(columns), tuple(children), schema.raw.get("doc", ""))


def collect_named(avro: Any, named: dict[str, Any]) -> None:
    """Every record and enum a schema defines, by short and full name, so that a field
    whose type is a name (`"BoundingBox"`) resolves to its definition."""
    if isinstance(avro, list):
        for branch in avro:
            collect_named(branch, named)
    elif isinstance(avro, Mapping):
        if avro.get("type") in ("record", "enum", "fixed") and "name" in avro:
            named[str(avro["name"]).rsplit(".", 1)[-1]] = avro
            named[str(avro["name"])] = avro
        for key in ("type", "items", "values"):
            if key in avro:
                collect_named(avro[key], named)
        for fld in avro.get("fields", ()):
            collect_named(fld["type"], named)


def _field_columns(
    named: Mapping[str, Any], name: str, path: tuple[str, ...], avro: Any, doc: str, nullable: bool,
    arrays: list[tuple[tuple[str, ...], dict[str, Any], str]],
) -> Iterator[Column]:
    """The columns of one field; arrays of records are appended to `arrays` instead."""
    if isinstance(avro, str) and avro in named:
        avro = named[avro]
    if isinstance(avro, list):
        branches = [b for b in avro if b != "null"]
        if len(branches) != 1:
            raise SchemaMappingError(f"field {'.'.join(path)}: only unions of null and one type are mapped")
        yield from _field_columns(named, name, path, branches[0], doc, True, arrays)
        return
    if isinstance(avro, dict) and avro.get("type") == "record":
        for fld in avro["fields"]:
            yield from _field_columns(
                named, f"{name}_{fld['name']}", path + (fld["name"],), fld["type"], fld.get("doc", ""), nullable, arrays
            )
        return
    if isinstance(avro, dict) and avro.get("type") == "array":
        items = named.get(avro["items"], avro["items"]) if isinstance(avro["items"], str) else avro["items"]
        if _is_record(items):
            arrays.append((path, items, doc))
            return
        avro = {**avro, "items": items}
    if isinstance(avro, dict) and avro.get("type") == "map" and isinstance(avro["values"], str):
        avro = {**avro, "values": named.get(avro["values"], avro["values"])}
    ch_type, checked = _scalar_type(path[-1], avro, path)
    if nullable:
        ch_type = f"LowCardinality(Nullable(String))" if ch_type == "LowCardinality(String)" else f"Nullable({ch_type})"
    yield Column(name, ch_type, path, doc, checked)


def _is_record(avro: Any) -> bool:
    return isinstance(avro, dict) and avro.get("type") == "record"


def _scalar_type(name: str, avro: Any, path: tuple[str, ...]) -> tuple[str, str]:
    """ClickHouse type and range check of a non-record, non-union Avro type."""
    if isinstance(avro, str):
        if avro == "string" and name in VOCABULARY:
            return "LowCardinality(String)", ""
        if avro in _SCALARS:
            return _SCALARS[avro], _INT_CHECKS.get(avro, "")
        raise SchemaMappingError(f"field {'.'.join(path)}: Avro type {avro!r} is not mapped")
    kind = avro.get("type")
    logical = avro.get("logicalType")
    if isinstance(kind, str) and logical is not None and (kind, logical) in _LOGICAL:
        ch = _LOGICAL[(kind, logical)]
        return ch, "datetime64" if ch.startswith("DateTime64") else "date32"
    if kind == "enum":
        return "LowCardinality(String)", ""
    if kind == "fixed":
        return f"FixedString({int(avro['size'])})", ""
    if kind == "array":
        inner, _ = _scalar_type(name, avro["items"], path)
        return f"Array({inner})", ""
    if kind == "map":
        inner, _ = _scalar_type(name, avro["values"], path)
        return f"Map(String, {inner})", ""
    if isinstance(kind, str) and kind in _SCALARS:
        return _SCALARS[kind], _INT_CHECKS.get(kind, "")
    if isinstance(kind, (dict, list)):
        return _scalar_type(name, kind, path)
    raise SchemaMappingError(f"field {'.'.join(path)}: Avro type {avro!r} is not mapped")
