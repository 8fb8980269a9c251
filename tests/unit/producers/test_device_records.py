"""Records built from a simulated printer's real answers encode under the schemas, carry
pseudonyms instead of local ids, and hold none of the printer's private strings."""

from __future__ import annotations

from typing import Any

import pytest

from producers.collector.device_records import DEBUG_DETAIL_KEYS, MappingError, RecordBuilder, Site
from producers.simulator import Fleet, SimulatorSettings
from schemas import SchemaRegistry

START_MS = 1_741_996_800_000  # 2025-03-15


@pytest.fixture(scope="module")
def fleet() -> Fleet:
    fleet = Fleet(SimulatorSettings(printers=3, seed=11, start_ms=START_MS))
    fleet.advance_to(START_MS + 2 * 86_400_000)
    return fleet


@pytest.fixture(scope="module")
def registry() -> SchemaRegistry:
    return SchemaRegistry.load_default()


def _all_records(fleet: Fleet, builder: RecordBuilder) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for pid in fleet.printer_ids:
        identity = fleet.read(pid, "identity")
        device = identity["printer_uuid"]
        out.append(("device_identity", builder.build("device_identity", device, identity, ("identity", "1"))))
        out.append(("heartbeat", builder.build("heartbeat", device, fleet.read(pid, "status"), ("hb", "1"))))
        out.append(("usage_counters", builder.build("usage_counters", device, fleet.read(pid, "counters"), ("c", "1"))))
        consumables = fleet.read(pid, "consumables")
        for kind in ("cleaning_roll", "agent_system", "printhead_system", "build_unit"):
            out.append((kind, builder.build(kind, device, consumables[kind], ("x", "1"))))
        for endpoint, kind in (("events", "system_event"), ("jobs", "job"), ("logs", "device_log")):
            page = fleet.read(pid, endpoint, after=0, limit=5000 if endpoint != "jobs" else 50)
            for item in page[endpoint]:
                out.append((kind, builder.build(kind, device, item, (endpoint, str(item["seq"])))))
    return out


def test_every_record_encodes_and_no_private_string_survives(fleet: Fleet, registry: SchemaRegistry) -> None:
    builder = RecordBuilder(registry, Site("site-x", b"secret"))
    records = _all_records(fleet, builder)
    assert {kind for kind, _ in records} == set(registry.kinds) - {
        "alert", "utilisation", "fleet_state", "benchmark", "update_advisory"
    }
    blob = b"".join(registry.encode(kind, r) for kind, r in records)
    private = [s for p in fleet.truth()["printers"] for s in p["private_strings"]]
    assert len(private) > 100
    leaked = [s for s in private if s.encode() in blob]
    assert not leaked, f"private strings in records: {leaked[:5]}"
    # Local ids never leave either: every job id is a pseudonym.
    jobs = [r for kind, r in records if kind == "job"]
    assert jobs and all(not r["job_id"].startswith("J0") and len(r["job_id"]) == 16 for r in jobs)
    assert all(r["source_host_pseudonym"] for r in jobs)
    events = [r for kind, r in records if kind == "system_event"]
    assert all(set(r["debug_details"]) <= DEBUG_DETAIL_KEYS for r in events)


def test_same_observation_same_record_id_and_pseudonyms_per_secret(fleet: Fleet, registry: SchemaRegistry) -> None:
    job = fleet.read("p001", "jobs", after=0, limit=1)["jobs"][0]
    a = RecordBuilder(registry, Site("s", b"one")).build("job", "dev", job, ("jobs", "1"))
    again = RecordBuilder(registry, Site("s", b"one")).build("job", "dev", job, ("jobs", "1"))
    other = RecordBuilder(registry, Site("s", b"two")).build("job", "dev", job, ("jobs", "1"))
    assert a == again
    assert a["job_id"] != other["job_id"] and a["record_id"] != other["record_id"]


def test_missing_required_field_is_a_mapping_error(registry: SchemaRegistry) -> None:
    builder = RecordBuilder(registry, Site("s", b"k"))
    with pytest.raises(MappingError, match="system_event.code"):
        builder.build("system_event", "dev", {"event_time": 1, "event_id": "E1"}, ("e", "1"))
