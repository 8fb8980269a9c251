"""Evolution rules: the checker on good and bad pairs (so it is proven able to fail), then
every kept version against the one before, then real messages across v1 and v2."""

from __future__ import annotations

import copy
from typing import Any

import fastavro
import pytest

from schemas.compat import OPTIONAL_SINCE, check, check_mutual
from schemas.errors import CorruptBodyError
from schemas.registry import SchemaRegistry
from schemas.samples import sample_record

REGISTRY = SchemaRegistry.load_default()


def _record(*fields: dict[str, Any], name: str = "R") -> dict[str, Any]:
    return {"type": "record", "name": name, "namespace": "io.test", "fields": list(fields)}


def _p(schema: Any) -> Any:
    return fastavro.parse_schema(copy.deepcopy(schema))


ID = {"name": "id", "type": "string"}
ENUM = {"type": "enum", "name": "E", "symbols": ["UNKNOWN", "A"], "default": "UNKNOWN"}
ENUM_NO_DEFAULT = {"type": "enum", "name": "E", "symbols": ["UNKNOWN", "A"]}
TS = {"type": "long", "logicalType": "timestamp-millis"}


def _item(*fields: dict[str, Any]) -> dict[str, Any]:
    return {"name": "items", "type": {"type": "array", "items": _record(*fields, name="Item")}, "default": []}


# (old, new): every one of these may follow the other in both directions.
MUTUAL_OK = {
    "same": (_record(ID), _record(ID)),
    "add field with default": (_record(ID), _record(ID, {"name": "n", "type": "int", "default": 0})),
    "add nullable field": (_record(ID), _record(ID, {"name": "n", "type": ["null", "int"], "default": None})),
    "remove field that had a default": (_record(ID, {"name": "n", "type": "int", "default": 0}), _record(ID)),
    "add enum symbol, both have default": (
        _record({"name": "e", "type": ENUM}),
        _record({"name": "e", "type": {**ENUM, "symbols": ["UNKNOWN", "A", "B"]}})),
    "string <-> bytes": (_record({"name": "s", "type": "string"}), _record({"name": "s", "type": "bytes"})),
    "nested record in array gains defaulted field": (
        _record(_item(ID)), _record(_item(ID, {"name": "n", "type": "long", "default": 0}))),
    "map values gain defaulted field": (
        _record({"name": "m", "type": {"type": "map", "values": _record(ID, name="V")}}),
        _record({"name": "m", "type": {"type": "map", "values": _record(
            ID, {"name": "x", "type": "double", "default": 0.0}, name="V")}})),
    "field renamed with alias and default": (
        _record({"name": "old", "type": "int", "default": 0}),
        _record({"name": "new", "type": "int", "default": 0, "aliases": ["old"]})),
    "docs change only": (_record({**ID, "doc": "a"}), _record({**ID, "doc": "b"})),
    "required field made optional, declared": (
        _record({"name": "s", "type": "string"}),
        _record({"name": "s", "type": ["null", "string"], "default": None, OPTIONAL_SINCE: 2})),
    "enum field gains a default symbol": (
        _record({"name": "e", "type": ENUM}), _record({"name": "e", "type": ENUM, "default": "UNKNOWN"})),
}

# (old, new, which direction must fail): "backward" = new cannot read old, "forward" =
# old cannot read new.
BAD = {
    "add field without default": (_record(ID), _record(ID, {"name": "n", "type": "int"}), "backward"),
    "remove field without default": (_record(ID, {"name": "n", "type": "int"}), _record(ID), "forward"),
    "type change string -> int": (_record({"name": "id", "type": "string"}), _record({"name": "id", "type": "int"}),
                                  "backward"),
    "narrowing long -> int": (_record({"name": "n", "type": "long"}), _record({"name": "n", "type": "int"}),
                              "backward"),
    "widening int -> long cannot be read by old": (
        _record({"name": "n", "type": "int"}), _record({"name": "n", "type": "long"}), "forward"),
    "add enum symbol without default": (
        _record({"name": "e", "type": ENUM_NO_DEFAULT}),
        _record({"name": "e", "type": {**ENUM_NO_DEFAULT, "symbols": ["UNKNOWN", "A", "B"]}}), "forward"),
    "remove enum symbol without default": (
        _record({"name": "e", "type": {**ENUM_NO_DEFAULT, "symbols": ["UNKNOWN", "A", "B"]}}),
        _record({"name": "e", "type": ENUM_NO_DEFAULT}), "backward"),
    "record renamed": (_record(ID, name="R"), _record(ID, name="S"), "backward"),
    "fixed size change": (_record({"name": "f", "type": {"type": "fixed", "name": "F", "size": 16}}),
                          _record({"name": "f", "type": {"type": "fixed", "name": "F", "size": 8}}), "backward"),
    "logical type change": (_record({"name": "t", "type": TS}),
                            _record({"name": "t", "type": {"type": "long", "logicalType": "timestamp-micros"}}),
                            "backward"),
    "nested array item gains field without default": (
        _record(_item(ID)), _record(_item(ID, {"name": "n", "type": "long"})), "backward"),
    "map value type change": (_record({"name": "m", "type": {"type": "map", "values": "string"}}),
                              _record({"name": "m", "type": {"type": "map", "values": "int"}}), "backward"),
    "union loses a branch": (_record({"name": "u", "type": ["null", "string", "int"], "default": None}),
                             _record({"name": "u", "type": ["null", "string"], "default": None}), "backward"),
    "union gains a branch": (_record({"name": "u", "type": ["null", "string"], "default": None}),
                             _record({"name": "u", "type": ["null", "string", "int"], "default": None}), "forward"),
    "field becomes nullable": (_record({"name": "s", "type": "string"}),
                               _record({"name": "s", "type": ["null", "string"], "default": None}), "forward"),
    "declared optional, but its type changed too": (
        _record({"name": "s", "type": "string"}),
        _record({"name": "s", "type": ["null", "int"], "default": None, OPTIONAL_SINCE: 2}), "backward"),
    "declared optional without the null default": (
        _record({"name": "s", "type": "string"}),
        _record({"name": "s", "type": ["string", "null"], "default": "", OPTIONAL_SINCE: 2}), "forward"),
}


@pytest.mark.parametrize("case", MUTUAL_OK)
def test_compatible_pairs_pass(case: str) -> None:
    old, new = MUTUAL_OK[case]
    assert check_mutual(_p(old), _p(new)) == []


@pytest.mark.parametrize("case", BAD)
def test_incompatible_pairs_fail_in_the_right_direction(case: str) -> None:
    old, new, direction = BAD[case]
    old_p, new_p = _p(old), _p(new)
    backward, forward = check(new_p, old_p), check(old_p, new_p)
    assert (backward if direction == "backward" else forward), f"{case}: not detected"
    assert check_mutual(old_p, new_p)
    assert all(str(p) for p in backward + forward)


def test_a_declared_optional_field_is_an_exception_of_our_rule_not_of_avro() -> None:
    old, new = MUTUAL_OK["required field made optional, declared"]
    [problem] = check(_p(old), _p(new))  # Avro itself: a null cannot be read as a string
    assert problem.path == "io.test.R.s<null>"
    assert check(_p(old), _p(new), declared_optional=True) == []


def test_widening_is_backward_compatible_only() -> None:
    old, new = _p(_record({"name": "n", "type": "int"})), _p(_record({"name": "n", "type": "long"}))
    assert check(new, old) == []
    assert check(old, new) != []


def test_problem_paths_point_at_the_field() -> None:
    old, new, _ = BAD["nested array item gains field without default"]
    [problem] = check(_p(new), _p(old))
    assert problem.path == "io.test.R.items[].n"


@pytest.mark.parametrize("kind", REGISTRY.kinds)
def test_every_kept_version_is_mutually_compatible_with_the_previous(kind: str) -> None:
    versions = REGISTRY.versions(kind)
    for old, new in zip(versions, versions[1:]):
        problems = check_mutual(fastavro.parse_schema(dict(old.raw)), fastavro.parse_schema(dict(new.raw)))
        assert problems == [], f"{kind} v{old.version} -> v{new.version}: {[str(p) for p in problems]}"


def _declared(schema: Any, found: list[dict[str, Any]]) -> list[dict[str, Any]]:
    if isinstance(schema, list):
        for branch in schema:
            _declared(branch, found)
    elif isinstance(schema, dict):
        for field in schema.get("fields", ()):
            if OPTIONAL_SINCE in field:
                found.append(field)
            _declared(field["type"], found)
        for key in ("items", "values"):
            _declared(schema.get(key), found)
    return found


@pytest.mark.parametrize("schema", REGISTRY.all_versions(), ids=lambda s: f"{s.kind}-v{s.version}")
def test_every_declared_optional_field_is_nullable_from_its_version(schema: Any) -> None:
    for field in _declared(dict(schema.raw), []):
        assert field["type"][0] == "null" and field["default"] is None, field["name"]
        assert 2 <= field[OPTIONAL_SINCE] <= schema.version, field["name"]


def test_checker_fails_on_a_broken_edit_of_a_real_schema() -> None:
    v1, v2 = REGISTRY.versions("heartbeat")
    broken = copy.deepcopy(dict(v2.raw))
    broken["fields"].append({"name": "oops", "type": "int", "doc": "no default"})
    problems = check_mutual(fastavro.parse_schema(dict(v1.raw)), fastavro.parse_schema(broken))
    assert [p.path for p in problems] == ["new reads old: io.printfleet.Heartbeat.oops"]


# -- real messages across the real v1 and v2 files -------------------------------------


def test_old_message_decodes_under_the_new_schema() -> None:
    record = {**sample_record("heartbeat"), "activity": "COOLING_DOWN"}
    data = REGISTRY.encode("heartbeat", record, version=1)
    decoded = REGISTRY.decode(data)  # reader: the latest, v2
    assert (decoded.writer.version, decoded.reader.version) == (1, 2)
    assert decoded.record["cooling_remaining_s"] == 0.0  # v2's default
    assert decoded.record["schema_version"] == 1
    assert decoded.record["activity"] == "COOLING_DOWN"


def test_new_message_decodes_under_the_old_schema() -> None:
    record = {**sample_record("heartbeat"), "activity": "UNLOADING_BUILD_UNIT", "cooling_remaining_s": 1800.0}
    data = REGISTRY.encode("heartbeat", record)
    old_reader = REGISTRY.with_readers({"heartbeat": 1})
    for decoded in (old_reader.decode(data), REGISTRY.decode(data, reader_version=1)):
        assert (decoded.writer.version, decoded.reader.version) == (2, 1)
        assert "cooling_remaining_s" not in decoded.record
        assert decoded.record["activity"] == "UNKNOWN"  # v1 lacks the symbol: its default
        assert decoded.record["layers_done"] == record["layers_done"]
    [typed] = old_reader.decode_records("heartbeat", [data])
    assert typed["activity"] == "UNKNOWN"


# -- the v2s of the device kinds that OPC UA machines fill only in part ------------------


def test_a_job_without_created_at_is_written_with_v2_and_read_by_v2_only() -> None:
    job = {**sample_record("job"), "created_at": None}
    job.pop("print_mode")
    data = REGISTRY.encode("job", job)
    decoded = REGISTRY.decode(data)
    assert (decoded.writer.version, decoded.reader.version, decoded.record["created_at"]) == (2, 2, None)
    assert decoded.record["print_mode"] == "UNKNOWN"
    with pytest.raises(CorruptBodyError, match="SchemaResolutionError"):  # v1 cannot hold the null
        REGISTRY.decode(data, reader_version=1)


@pytest.mark.parametrize("kind", ["job", "usage_counters", "device_identity", "build_unit", "agent_system"])
def test_device_kinds_cross_v1_and_v2_both_ways_when_values_are_present(kind: str) -> None:
    record = sample_record(kind)
    v1_data = REGISTRY.encode(kind, record, version=1)
    as_v2 = REGISTRY.decode(v1_data)
    assert (as_v2.writer.version, as_v2.reader.version) == (1, 2)
    assert as_v2.record == {**record, "schema_version": 1}
    v2_data = REGISTRY.encode(kind, record)
    as_v1 = REGISTRY.decode(v2_data, reader_version=1)
    assert (as_v1.writer.version, as_v1.reader.version) == (2, 1)
    assert as_v1.record == {**record, "schema_version": 2}


# -- the v2s of the stream processors' kinds: new fields default both ways -------------

# kind -> (fields v2 added, their defaults): what a v2 reader fills into a v1 message.
V2_ADDED: dict[str, dict[str, Any]] = {
    "fleet_state": {"firmware_release": ""},
    "utilisation": {"agent_consumed_cm3": 0.0},
    "alert": {"confidence": 1.0, "occurrences": 1},
}
V2_VALUES: dict[str, dict[str, Any]] = {
    "fleet_state": {"firmware_release": "5.3.0.22"},
    "utilisation": {"agent_consumed_cm3": 1234.5},
    "alert": {"confidence": 0.75, "occurrences": 1000},
}


@pytest.mark.parametrize("kind", V2_ADDED)
def test_v1_message_of_a_stream_kind_reads_as_v2_with_defaults(kind: str) -> None:
    v1 = {k: v for k, v in sample_record(kind).items() if k not in V2_ADDED[kind]}
    decoded = REGISTRY.decode(REGISTRY.encode(kind, v1, version=1))
    assert (decoded.writer.version, decoded.reader.version) == (1, 2)
    assert {k: decoded.record[k] for k in V2_ADDED[kind]} == V2_ADDED[kind]
    assert {k: v for k, v in decoded.record.items() if k not in V2_ADDED[kind]} == {**v1, "schema_version": 1}


@pytest.mark.parametrize("kind", V2_ADDED)
def test_v2_message_of_a_stream_kind_reads_as_v1_without_the_new_fields(kind: str) -> None:
    record = {**sample_record(kind), **V2_VALUES[kind]}
    data = REGISTRY.encode(kind, record)
    assert REGISTRY.decode(data).record == {**record, "schema_version": 2}
    old = REGISTRY.decode(data, reader_version=1)
    assert (old.writer.version, old.reader.version) == (2, 1)
    assert old.record == {**{k: v for k, v in record.items() if k not in V2_ADDED[kind]}, "schema_version": 2}


# Every kept version's fingerprint: data already written names these, so a kept file may
# change only where the canonical form does not look (docs), and a new
# version is added here on purpose.
KEPT_FINGERPRINTS = {
    ("agent_system", 1): "3c8a642df82b338e",
    ("agent_system", 2): "b43ad68c3a698d90",
    ("alert", 1): "a9f9bcbb7b2ff6b5",
    ("alert", 2): "7eddf43db82318d5",
    ("benchmark", 1): "c30a04f0a84c32c3",
    ("build_unit", 1): "ec3afddb7611fbe3",
    ("build_unit", 2): "d6424df86d308373",
    ("cleaning_roll", 1): "c654bf0fc4d0a0db",
    ("device_identity", 1): "9370e88ee5e45230",
    ("device_identity", 2): "fe4506ab4b829f37",
    ("device_log", 1): "7965bbea09f04353",
    ("fleet_state", 1): "6dbda873618ab117",
    ("fleet_state", 2): "8f4666121cd0da9c",
    ("heartbeat", 1): "9001a8e20d3e32d5",
    ("heartbeat", 2): "1e8a2aaad0d4aba2",
    ("job", 1): "c72b387bef61f564",
    ("job", 2): "6e3d24265ffa355c",
    ("printhead_system", 1): "b17676ab4ebcbe2d",
    ("system_event", 1): "afbda45186f65c13",
    ("update_advisory", 1): "1407a5088e729596",
    ("usage_counters", 1): "e87574ccad1282de",
    ("usage_counters", 2): "4ebefc5cc1e6132b",
    ("utilisation", 1): "29cd8a19dfb6e588",
    ("utilisation", 2): "e6df6f8a01ec9ba8",
}


def test_kept_versions_keep_their_fingerprints() -> None:
    found = {(s.kind, s.version): s.fingerprint_hex for s in REGISTRY.all_versions()}
    assert found == KEPT_FINGERPRINTS
