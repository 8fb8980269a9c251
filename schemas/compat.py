"""Schema compatibility: can a reader schema read what a writer schema wrote?

Pure functions over fastavro-parsed schemas (`fastavro.parse_schema` output, whose names
are fully qualified). The rules are Avro's schema resolution rules, plus one stricter rule
of our own: a logical type may not change (a long holding milliseconds must not start
holding microseconds, although Avro would read it).

The unit tests run `check_mutual` over every pair of consecutive versions kept in
`schemas/avro/`, so an incompatible change fails before it is merged:
- backward: the new version reads old messages (`check(reader=new, writer=old)`);
- forward: the old version reads new messages (`check(reader=old, writer=new)`), with
  one exception a schema must declare: a field the old version required may become
  optional (`["null", T]`, default null) when the new version marks it
  `"printfleet.optional_since": N`. The old version still reads every new message that has
  a value there; one without (a source that has no such value, e.g. an OPC UA machine)
  is only ever read by the new version or later, because readers resolve to the newest
  version they know, and a component that does not know a writer's version refuses its
  messages by fingerprint (docs/records.md, "Changing a schema": upgrade the cloud first).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final, Iterator

PRIMITIVES: Final = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes", "string"})
# writer type -> reader types that can read it (Avro's promotions, and string <-> bytes).
PROMOTIONS: Final[dict[str, frozenset[str]]] = {
    "int": frozenset({"long", "float", "double"}),
    "long": frozenset({"float", "double"}),
    "float": frozenset({"double"}),
    "string": frozenset({"bytes"}),
    "bytes": frozenset({"string"}),
}
_NAMED: Final = frozenset({"record", "error", "enum", "fixed"})
# The field property that declares a required field made optional (see the module doc).
OPTIONAL_SINCE: Final = "printfleet.optional_since"

Names = dict[str, dict[str, Any]]


@dataclass(frozen=True, slots=True)
class Incompatibility:
    """One reason the reader cannot read the writer's data; `path` names where."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


def check(reader: Any, writer: Any, declared_optional: bool = False) -> list[Incompatibility]:
    """Every reason `reader` cannot read data written with `writer`; empty if it can.
    With `declared_optional`, a writer field marked OPTIONAL_SINCE is checked as if it
    were its non-null branch (the data that has a value there)."""
    r_names, w_names = _names(reader), _names(writer)
    context = _Context(r_names, w_names, declared_optional)
    return list(_check(reader, writer, _label(reader), context, set()))


def check_mutual(old: Any, new: Any) -> list[Incompatibility]:
    """Backward and forward problems between consecutive versions (our evolution rule)."""
    backward = [Incompatibility(f"new reads old: {p.path}", p.message) for p in check(new, old)]
    forward = [Incompatibility(f"old reads new: {p.path}", p.message) for p in check(old, new, declared_optional=True)]
    return backward + forward


@dataclass(frozen=True, slots=True)
class _Context:
    r_names: Names
    w_names: Names
    declared_optional: bool


def _check(reader: Any, writer: Any, path: str, ctx: _Context, seen: set[tuple[str, str]]) -> Iterator[Incompatibility]:
    reader, writer = _resolve(reader, ctx.r_names), _resolve(writer, ctx.w_names)
    r_type, w_type = _type(reader), _type(writer)

    if w_type == "union":
        # Every branch the writer may have chosen must be readable.
        for branch in writer:
            yield from _check(reader, branch, f"{path}<{_label(branch)}>", ctx, seen)
        return
    if r_type == "union":
        # Avro picks the first reader branch that matches the writer's type.
        for branch in reader:
            if _matches(_resolve(branch, ctx.r_names), writer):
                yield from _check(branch, writer, path, ctx, seen)
                return
        yield Incompatibility(path, f"no branch of the reader union reads {_label(writer)}")
        return
    if not _matches(reader, writer):
        yield Incompatibility(path, f"reader {_label(reader)} cannot read writer {_label(writer)}")
        return
    r_logical, w_logical = _logical(reader), _logical(writer)
    if r_logical != w_logical:
        yield Incompatibility(path, f"logical type changed from {w_logical} to {r_logical}")

    if w_type == "record":
        key = (reader["name"], writer["name"])
        if key in seen:  # a recursive type already under check along this path
            return
        seen = seen | {key}
        yield from _check_record(reader, writer, path, ctx, seen)
    elif w_type == "enum":
        missing = [s for s in writer["symbols"] if s not in reader["symbols"]]
        if missing and "default" not in reader:
            yield Incompatibility(
                path, f"reader enum lacks {missing} and has no default symbol to fall back to"
            )
    elif w_type == "fixed" and reader["size"] != writer["size"]:
        yield Incompatibility(path, f"fixed size changed from {writer['size']} to {reader['size']}")
    elif w_type == "array":
        yield from _check(reader["items"], writer["items"], f"{path}[]", ctx, seen)
    elif w_type == "map":
        yield from _check(reader["values"], writer["values"], f"{path}{{}}", ctx, seen)


def _check_record(
    reader: dict[str, Any], writer: dict[str, Any], path: str, ctx: _Context, seen: set[tuple[str, str]],
) -> Iterator[Incompatibility]:
    writer_fields = {f["name"]: f for f in writer["fields"]}
    for field in reader["fields"]:
        match = writer_fields.get(field["name"])
        if match is None:
            match = next((writer_fields[a] for a in field.get("aliases", ()) if a in writer_fields), None)
        where = f"{path}.{field['name']}"
        if match is not None:
            yield from _check(field["type"], _declared_value(match, ctx), where, ctx, seen)
        elif "default" not in field:
            yield Incompatibility(where, "reader field has no default and the writer lacks it")


def _declared_value(field: dict[str, Any], ctx: _Context) -> Any:
    """The field's type, or its non-null branch where the field declares OPTIONAL_SINCE
    and the check accepts declarations."""
    schema = field["type"]
    if ctx.declared_optional and OPTIONAL_SINCE in field and isinstance(schema, list) and len(schema) == 2 \
            and "null" in schema and field.get("default", "") is None:
        return next(branch for branch in schema if branch != "null")
    return schema


def _matches(reader: Any, writer: Any) -> bool:
    """Avro's top-level match: same primitive or a promotion, or same named type."""
    r_type, w_type = _type(reader), _type(writer)
    if w_type in PRIMITIVES:
        return r_type == w_type or r_type in PROMOTIONS.get(w_type, frozenset())
    if r_type != w_type:
        return False
    if w_type in _NAMED:
        return _short(reader["name"]) == _short(writer["name"]) or any(
            _short(a) == _short(writer["name"]) for a in reader.get("aliases", ())
        )
    return True  # array, map: their contents are checked by the caller


def _type(schema: Any) -> str:
    if isinstance(schema, list):
        return "union"
    if isinstance(schema, dict):
        inner = schema["type"]
        return inner if isinstance(inner, str) else _type(inner)
    return str(schema)


def _logical(schema: Any) -> str | None:
    return schema.get("logicalType") if isinstance(schema, dict) else None


def _resolve(schema: Any, names: Names) -> Any:
    # A named type is spelled out once; later uses are its name as a string.
    if isinstance(schema, str) and schema not in PRIMITIVES:
        return names.get(schema, schema)
    if isinstance(schema, dict) and isinstance(schema.get("type"), (dict, list)) and len(schema) == 1:
        return _resolve(schema["type"], names)
    return schema


def _names(schema: Any, found: Names | None = None) -> Names:
    found = {} if found is None else found
    if isinstance(schema, list):
        for branch in schema:
            _names(branch, found)
    elif isinstance(schema, dict):
        if schema.get("type") in _NAMED:
            found.setdefault(schema["name"], schema)
        for key in ("type", "items", "values"):
            if isinstance(schema.get(key), (dict, list)):
                _names(schema[key], found)
        for field in schema.get("fields", ()):
            _names(field["type"], found)
    return found


def _short(name: str) -> str:
    return name.rsplit(".", 1)[-1]


def _label(schema: Any) -> str:
    if isinstance(schema, dict):
        return str(schema.get("name") or schema.get("logicalType") or _type(schema))
    if isinstance(schema, list):
        return "union"
    return str(schema)
