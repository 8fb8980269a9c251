"""Every printer endpoint carries every field of its schema, under the schema's name and
in a form the codec accepts, so the collector can map it by whitelisting schema fields;
private data sits only in keys a collector can recognise (and in debug details)."""

from __future__ import annotations

import functools
from typing import Any, Iterator

import pytest

from producers.simulator import Fleet
from schemas.privacy import is_forbidden_key
from sim_helpers import REGISTRY, all_pages, day_fleet, missing_fields, project

SNAPSHOT_KINDS = {
    "identity": ("device_identity", None),
    "status": ("heartbeat", None),
    "counters": ("usage_counters", None),
    "consumables:cleaning_roll": ("cleaning_roll", "cleaning_roll"),
    "consumables:agent_system": ("agent_system", "agent_system"),
    "consumables:printhead_system": ("printhead_system", "printhead_system"),
    "consumables:build_unit": ("build_unit", "build_unit"),
}
PRIVATE_KEYS = ("job_name", "user_name", "computer_name", "file_name", "file_path", "part_name")
# docs/printer-api.md lists both; a collector's allow-list is the first
SAFE_DEBUG_KEYS = {
    "activity", "uptime_s", "layer", "slot", "warning_id", "job_id", "old_serial", "roll_serial",
    "level_pct", "usage_pct", "lamp_temp_c", "bed_temp_c", "recoater_current_a",
    "powder_level_pct", "nozzles_out", "head_temp_c", "sensor", "value", "used_pct", "fw_module",
}
PRIVATE_DEBUG_KEYS = {"job_name", "spool_path", "submitted_by", "workstation", "part_name", "part_file"}


def _snapshot_docs(f: Fleet) -> list[tuple[str, dict[str, Any]]]:
    docs = []
    for pid in f.printer_ids:
        for name, (kind, sub) in SNAPSHOT_KINDS.items():
            doc = f.read(pid, name.split(":")[0])
            docs.append((kind, doc[sub] if sub else doc))
    return docs


@functools.cache
def _day_paged() -> list[tuple[str, dict[str, Any]]]:
    return _paged_docs(day_fleet())


def _paged_docs(f: Fleet) -> list[tuple[str, dict[str, Any]]]:
    docs = []
    for pid in f.printer_ids:
        docs += [("system_event", e) for e in all_pages(f, pid, "events")]
        docs += [("job", j) for j in all_pages(f, pid, "jobs")]
        docs += [("device_log", log) for log in all_pages(f, pid, "logs")]
    return docs


def test_snapshot_endpoints_have_every_schema_field() -> None:
    f = day_fleet()
    problems = [(kind, m) for kind, doc in _snapshot_docs(f) for m in missing_fields(kind, doc)]
    assert problems == []
    # the nested build-unit record was really checked, not skipped as null
    assert any(doc["installed_build_unit"] for kind, doc in _snapshot_docs(f) if kind == "build_unit")


def test_paged_endpoints_have_every_schema_field() -> None:
    docs = _day_paged()
    assert {kind for kind, _ in docs} == {"system_event", "job", "device_log"}
    assert [(k, m) for k, doc in docs for m in missing_fields(k, doc)] == []
    jobs = [doc for kind, doc in docs if kind == "job"]
    # the completed snapshot carries parts, all layers, sub-jobs and warnings
    completed = [j for j in jobs if j["completion_status"] == "COMPLETED"]
    assert completed and all(len(j["layers"]) == j["layer_count"] and j["parts"] for j in completed)
    assert all(len(j["sub_jobs"]) == 3 for j in jobs)
    assert any(j["warnings"] for j in completed)


@pytest.mark.parametrize("source", ["snapshot", "paged"])
def test_whitelisted_projection_encodes_with_the_latest_schema(source: str) -> None:
    f = day_fleet()
    docs = _snapshot_docs(f) if source == "snapshot" else _day_paged()
    for kind, doc in docs[:: 7 if source == "paged" else 1]:
        REGISTRY.encode(kind, project(kind, doc))  # raises RecordEncodeError on a bad type or enum


def test_private_keys_are_recognised_by_the_privacy_rules() -> None:
    for key in PRIVATE_KEYS:
        assert is_forbidden_key(key), key
    job = next(j for _, j in _day_paged() if "job_name" in j)
    assert not [k for k in project("job", job) if is_forbidden_key(k)]


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def test_private_strings_appear_only_in_private_keys_and_private_debug_keys() -> None:
    f = day_fleet()
    secrets = {s for p in f.truth()["printers"] for s in p["private_strings"]}
    assert len(secrets) > 1000
    docs = _snapshot_docs(f) + _day_paged()
    # the short private strings that could hide inside longer text
    embeddable = {j[key] for kind, j in docs if kind == "job" for key in ("job_name", "user_name", "computer_name")}
    kept: set[str] = set()
    for kind, doc in docs:
        projected = project(kind, doc)
        if "debug_details" in projected:  # the collector keeps allow-listed keys only
            projected["debug_details"] = {k: v for k, v in projected["debug_details"].items() if k in SAFE_DEBUG_KEYS}
        kept.update(_strings(projected))
    assert kept & secrets == set()
    text = "\n".join(kept)
    assert [s for s in embeddable if s in text] == []


def test_debug_details_sometimes_carry_private_data() -> None:
    f = day_fleet()
    keys: set[str] = set()
    for pid in f.printer_ids:
        for e in all_pages(f, pid, "events"):
            keys |= set(e["debug_details"])
    assert PRIVATE_DEBUG_KEYS <= keys <= SAFE_DEBUG_KEYS | PRIVATE_DEBUG_KEYS
