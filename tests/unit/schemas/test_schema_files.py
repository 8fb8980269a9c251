"""The kept .avsc files follow the conventions every consumer relies on, the loader
refuses broken ones, and docs/data-catalogue-mapping.md names only real fields."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Iterator

import pytest

from schemas.errors import SchemaLoadError
from schemas.kinds import ANONYMOUS, ENVELOPE_FIELDS, KINDS
from schemas.loader import SchemaVersion
from schemas.registry import SchemaRegistry

REGISTRY = SchemaRegistry.load_default()
ALL = REGISTRY.all_versions()
LATEST = [REGISTRY.schema(kind) for kind in REGISTRY.kinds]
ROOT = Path(__file__).resolve().parents[3]
UNIT_SUFFIXES = ("_s", "_ms", "_pct", "_mm", "_mm2", "_cm2", "_cm3", "_um", "_kg", "_g", "_bytes", "_per_day")
TIME_SUFFIXES = ("_at", "_time", "_date", "_start", "_end")
# Scores that have no unit; their docs must say their range. Nothing else leaves it out.
UNITLESS = {"alert.confidence": "from 0 to 1"}


def _ids(schema: SchemaVersion) -> str:
    return f"{schema.kind}-v{schema.version}"


def _walk(schema: Any, path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every (path, type dict) in a JSON schema, including field dicts as ('path', field)."""
    if isinstance(schema, list):
        for branch in schema:
            yield from _walk(branch, path)
    elif isinstance(schema, dict):
        yield path, schema
        for field in schema.get("fields", ()):
            yield f"{path}.{field['name']}", field
            yield from _walk(field["type"], f"{path}.{field['name']}")
        for key in ("items", "values"):
            if key in schema:
                yield from _walk(schema[key], f"{path}[]")
        if isinstance(schema.get("type"), (dict, list)):
            yield from _walk(schema["type"], path)


def _fields(schema: SchemaVersion) -> Iterator[tuple[str, dict[str, Any]]]:
    return ((p, d) for p, d in _walk(dict(schema.raw), schema.kind) if "name" in d and "type" in d
            and not (isinstance(d["type"], str) and d["type"] in ("record", "enum", "fixed")))


def _primitive(type_: Any) -> set[str]:
    """The primitive types a field may hold (union branches flattened, logical types kept)."""
    if isinstance(type_, list):
        return set().union(*(_primitive(t) for t in type_))
    if isinstance(type_, dict):
        if "logicalType" in type_:
            return {type_["logicalType"]}
        return _primitive(type_["type"]) if isinstance(type_["type"], (dict, list)) else {type_["type"]}
    return {type_}


@pytest.mark.parametrize("schema", ALL, ids=_ids)
def test_raw_is_the_file_as_written(schema: SchemaVersion) -> None:
    # Parsing must not have touched it: docs, defaults and logical types stay for readers.
    path = ROOT / "schemas" / "avro" / schema.resource
    assert json.loads(json.dumps(dict(schema.raw))) == json.loads(path.read_text())


def test_kinds_constant_matches_the_folders() -> None:
    assert sorted(REGISTRY.kinds) == sorted(KINDS)
    assert len(set(KINDS)) == len(KINDS) == 15


@pytest.mark.parametrize("schema", ALL, ids=_ids)
def test_envelope(schema: SchemaVersion) -> None:
    fields = schema.raw["fields"][: len(ENVELOPE_FIELDS)]
    assert tuple(f["name"] for f in fields) == ENVELOPE_FIELDS
    record_id, version, site, device, event_time = fields
    assert record_id["type"] == "string"
    assert version["type"] == "int" and version["default"] == schema.version
    assert event_time["type"] == {"type": "long", "logicalType": "timestamp-millis"}
    if schema.kind == "benchmark":
        assert site["type"]["symbols"] == [ANONYMOUS] and device["type"] == "AnonymousIdentity"
    else:
        assert site["type"] == device["type"] == "string"


@pytest.mark.parametrize("schema", ALL, ids=_ids)
def test_every_field_and_named_type_has_a_doc(schema: SchemaVersion) -> None:
    for path, node in _walk(dict(schema.raw), schema.kind):
        if "name" in node:
            assert str(node.get("doc", "")).strip(), f"{path} has no doc"


@pytest.mark.parametrize("schema", ALL, ids=_ids)
def test_enums_have_a_default_so_they_can_grow(schema: SchemaVersion) -> None:
    for name, enum in schema.enums.items():
        assert enum.default in enum.symbols, f"{name} has no default symbol"


@pytest.mark.parametrize("schema", ALL, ids=_ids)
def test_units_are_in_names(schema: SchemaVersion) -> None:
    for path, field in _fields(schema):
        kinds = _primitive(field["type"]) - {"null"}
        if kinds & {"float", "double"} and path in UNITLESS:
            assert UNITLESS[path] in field["doc"], f"{path}: a unitless score must say its range"
        elif kinds & {"float", "double"}:
            assert path.endswith(UNIT_SUFFIXES), f"{path}: a measurement without a unit in its name"
        if kinds & {"timestamp-millis", "date"}:
            assert path.endswith(TIME_SUFFIXES), f"{path}: a time without _at/_time/_date"


def test_only_logical_types_the_codec_represents_as_ints() -> None:
    # The codec strips logical types and exchanges ints; that is only right for these.
    found = {node["logicalType"] for s in ALL for _, node in _walk(dict(s.raw), s.kind) if "logicalType" in node}
    assert found == {"timestamp-millis", "date"}


def test_heartbeat_stays_free_of_unions() -> None:
    # It is the hottest record; a nullable field costs about 1 µs per record to encode.
    for schema in REGISTRY.versions("heartbeat"):
        assert not [p for p, f in _fields(schema) if isinstance(f["type"], list)]


def test_types_with_one_name_are_one_type_everywhere() -> None:
    seen: dict[str, tuple[str, Any]] = {}
    for schema in LATEST:
        for path, node in _walk(dict(schema.raw), schema.kind):
            if node.get("type") in ("enum", "record"):
                shape = json.dumps({k: node[k] for k in ("symbols", "fields") if k in node}, sort_keys=True)
                first = seen.setdefault(node["name"], (path, shape))
                assert first[1] == shape, f"{node['name']} differs between {first[0]} and {path}"


def test_benchmark_carries_no_identity() -> None:
    names = {p.rsplit(".", 1)[-1] for p, _ in _fields(REGISTRY.schema("benchmark"))}
    assert not names & {"printer_name", "serial_number", "printer_uuid", "site", "device", "customer_id"}
    assert REGISTRY.enum_symbols("benchmark", "AnonymousIdentity") == (ANONYMOUS,)


def test_pre_stop_hook_pattern_finds_nothing() -> None:
    pattern = re.compile(
        r'"name"\s*:\s*"(job_?name|part_?name|user_?name|username|computer_?name|geometry|file_?name)"', re.I)
    files = sorted((ROOT / "schemas").rglob("*.avsc"))
    assert len(files) == len(ALL)
    assert [f for f in files if pattern.search(f.read_text())] == []


# -- the catalogue mapping -------------------------------------------------------------

MAPPING = ROOT / "docs" / "data-catalogue-mapping.md"
# A field path starts with a kind; other backticked names (files) are not paths.
_PATH = re.compile(r"`((?:%s)(?:\.[a-z_0-9]+(?:\[\])?)+)(?: = ([A-Z_]+))?`" % "|".join(KINDS))


def _resolve(schema: SchemaVersion, dotted: str) -> dict[str, Any]:
    names: dict[str, Any] = {str(node["name"]): node for _, node in _walk(dict(schema.raw), schema.kind)
                             if node.get("type") in ("record", "enum")}
    node: Any = dict(schema.raw)
    for part in dotted.split(".")[1:]:
        record = _record_of(node, names)
        field = next((f for f in record["fields"] if f["name"] == part.removesuffix("[]")), None)
        assert field is not None, f"{dotted}: no field {part}"
        node = field["type"]
        if part.endswith("[]"):
            node = _record_of(node, names)  # the array
            node = node["items"]
    return _record_of(node, names) if not isinstance(node, str) or node in names else {"type": node}


def _record_of(node: Any, names: dict[str, Any]) -> dict[str, Any]:
    if isinstance(node, list):
        node = next(b for b in node if b != "null")
    if isinstance(node, str):
        node = names.get(node, {"type": node})
    if isinstance(node.get("type"), (dict, list)):
        return _record_of(node["type"], names)
    return dict(node)


def test_catalogue_mapping_names_only_real_fields() -> None:
    rows = [line for line in MAPPING.read_text().splitlines() if re.match(r"\| (C?\d+) \|", line)]
    device_items = [r for r in rows if re.match(r"\| \d+ \|", r)]
    assert [int(r.split("|")[1]) for r in device_items] == list(range(1, 127))
    checked = 0
    for match in _PATH.finditer(MAPPING.read_text()):
        dotted, symbol = match.groups()
        kind = dotted.split(".")[0]
        assert kind in KINDS, dotted
        node = _resolve(REGISTRY.schema(kind), dotted)
        if symbol:
            assert symbol in node["symbols"], f"{dotted} has no symbol {symbol}"
        checked += 1
    assert checked > 140
    for row in rows:
        assert _PATH.search(row), f"catalogue item without a field: {row}"


# -- the loader refuses broken files ---------------------------------------------------


def _write(root: Path, kind: str, name: str, schema: Any) -> None:
    (root / kind).mkdir(parents=True, exist_ok=True)
    (root / kind / name).write_text(schema if isinstance(schema, str) else json.dumps(schema))


def _tiny(version: int, name: str = "Tiny", extra: tuple[dict[str, Any], ...] = ()) -> dict[str, Any]:
    return {"type": "record", "name": name, "namespace": "io.printfleet", "fields": [
        {"name": "schema_version", "type": "int", "default": version}, *extra]}


def test_loader_reads_a_directory(tmp_path: Path) -> None:
    _write(tmp_path, "tiny", "v1.avsc", _tiny(1))
    _write(tmp_path, "tiny", "v2.avsc", _tiny(2, extra=({"name": "x", "type": "int", "default": 0},)))
    (tmp_path / "tiny" / "README.txt").write_text("ignored")
    registry = SchemaRegistry.from_directory(tmp_path)
    assert [s.version for s in registry.versions("tiny")] == [1, 2]
    assert registry.decode(registry.encode("tiny", {"x": 3})).record == {"schema_version": 2, "x": 3}


@pytest.mark.parametrize(("files", "message"), [
    ({"v1.avsc": "{not json"}, "unreadable"),
    ({"version1.avsc": _tiny(1)}, "v<N>.avsc"),
    ({"v1.avsc": _tiny(1, name="Other")}, "expected 'io.printfleet.Tiny'"),
    ({"v1.avsc": _tiny(2)}, "must default to 1"),
    ({"v1.avsc": _tiny(1), "v3.avsc": _tiny(3)}, "without gaps"),
    ({"v1.avsc": {"type": "record", "name": "Tiny", "namespace": "io.printfleet", "fields": [
        {"name": "schema_version", "type": "int", "default": 1},
        {"name": "e", "type": {"type": "enum", "name": "E", "symbols": ["A"], "default": "B"}}]}}, "not a valid"),
    ({"v1.avsc": ["null", "int"]}, "top level"),
])
def test_loader_refuses_broken_files(tmp_path: Path, files: dict[str, Any], message: str) -> None:
    for name, schema in files.items():
        _write(tmp_path, "tiny", name, schema)
    with pytest.raises(SchemaLoadError, match=re.escape(message)):
        SchemaRegistry.from_directory(tmp_path)


def test_two_versions_with_one_fingerprint_are_refused(tmp_path: Path) -> None:
    # v2 differs from v1 only in a default, which the canonical form drops.
    v2 = _tiny(2)
    _write(tmp_path, "tiny", "v1.avsc", _tiny(1))
    _write(tmp_path, "tiny", "v2.avsc", v2)
    with pytest.raises(SchemaLoadError, match="same fingerprint"):
        SchemaRegistry.from_directory(tmp_path)
