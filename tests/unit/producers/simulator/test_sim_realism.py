"""A simulated day looks like a day of a powder-bed printer fleet: jobs of hundreds to
thousands of layers, 8-15 s per layer, hours of cooling, consumables that wear, failures
that put a printer into ERROR and back, and only valid enum values."""

from __future__ import annotations

from collections import Counter
from typing import Any

from producers.simulator import Fleet
from sim_helpers import DAY_MS, HOUR_MS, START_MS, all_pages, day_fleet, enum_symbols, fleet


def _jobs(f: Fleet) -> list[dict[str, Any]]:
    return [j for pid in f.printer_ids for j in all_pages(f, pid, "jobs")]


def test_a_day_completes_jobs_with_realistic_layers_and_cooling() -> None:
    f = day_fleet()
    completed = [j for j in _jobs(f) if j["completion_status"] == "COMPLETED"]
    assert len(completed) >= 40  # 20 printers, a job every 6-8 h each
    for job in completed:
        assert 150 <= job["layer_count"] <= 4750 and len(job["layers"]) == job["layer_count"]
        durations = [layer["duration_s"] for layer in job["layers"]]
        assert 8.0 <= sum(durations) / len(durations) <= 15.0
        assert min(durations) >= 6.5 and max(durations) <= 20.0
        assert job["layers"][0]["started_at"] == job["started_at"]
        cooling_h = (job["completed_at"] - job["layers"][-1]["ended_at"]) / HOUR_MS
        assert 3.0 <= cooling_h <= 5.0
        assert 10 <= len(job["parts"]) <= 300
        assert all(p["completion_status"] == "COMPLETED" for p in job["parts"])
        assert job["created_at"] <= job["started_at"] <= job["completed_at"]
    assert max(j["layer_count"] for j in completed) >= 1000


def test_jobs_go_through_their_states_in_order() -> None:
    order = ["QUEUED", "PREPARING", "PRINTING", "COOLING", "COMPLETED"]
    f = day_fleet()
    for pid in f.printer_ids:
        history: dict[str, list[str]] = {}
        for snap in all_pages(f, pid, "jobs"):
            history.setdefault(snap["job_id"], []).append(snap["completion_status"])
        for states in history.values():
            end = states[-1]
            if end in ("FAILED", "CANCELLED"):
                states = states[:-1]
            assert states == order[: len(states)], states


def test_queue_activity_and_cooling_show_in_the_status() -> None:
    f = fleet(20)
    activities: Counter[str] = Counter()
    cooling_seen = pending_seen = 0.0
    for step in range(1, 49):
        f.advance_to(START_MS + step * DAY_MS // 48)
        for pid in f.printer_ids:
            s = f.read(pid, "status")
            activities[s["activity"]] += 1
            cooling_seen = max(cooling_seen, s["cooling_remaining_s"])
            pending_seen = max(pending_seen, s["pending_job_count"])
            if s["activity"] == "PRINTING":
                assert 0 <= s["layers_done"] <= s["layers_total"] and s["current_job_id"] and s["job_name"]
                assert s["layers_done"] == 0 or 6.0 <= s["recent_layer_duration_s"] <= 20.0
    assert {"PRINTING", "WARMING_UP", "COOLING_DOWN", "IDLE", "UNLOADING_BUILD_UNIT"} <= set(activities)
    assert activities["PRINTING"] > sum(activities.values()) / 3
    assert cooling_seen > 2 * 3600 and pending_seen >= 2


def test_failures_put_the_printer_into_error_and_back() -> None:
    f = fleet(30, seed=3)
    f.advance_to(START_MS + 2 * DAY_MS)
    truth = f.truth()["printers"]
    failed = [p for p in truth if p["jobs_failed"]]
    assert failed
    for p in failed:
        events = all_pages(f, p["printer_id"], "events")
        codes = [(e["severity"], e["description"]) for e in events]
        errors = [i for i, e in enumerate(events) if e["severity"] in ("ERROR", "CRITICAL") and "aborted" in e["description"]]
        assert errors, codes
        later = [e["description"] for e in events[errors[0]:]]
        if f.now_ms - events[errors[0]]["event_time"] > 3 * HOUR_MS:
            assert "Error cleared by the operator" in later
        jobs = [j for j in all_pages(f, p["printer_id"], "jobs") if j["completion_status"] == "FAILED"]
        assert jobs and all(any(part["completion_status"] == "FAILED" for part in j["parts"]) for j in jobs)
        assert all(part["completion_error_code"] for j in jobs for part in j["parts"] if part["completion_status"] == "FAILED")


def test_counters_and_consumables_wear_monotonically() -> None:
    f = fleet(20, seed=9)
    last: dict[tuple[str, ...], float] = {}

    def rises(key: tuple[str, ...], value: float) -> None:
        assert value >= last.get(key, value), key
        last[key] = value

    for step in range(1, 49):
        f.advance_to(START_MS + step * DAY_MS // 48)
        for pid in f.printer_ids:
            counters = f.read(pid, "counters")
            for name, value in counters.items():
                if isinstance(value, (int, float)):
                    rises((pid, name), value)
            c = f.read(pid, "consumables")
            roll = c["cleaning_roll"]
            rises((pid, "roll", roll["serial_number"]), roll["usage_pct"])
            for head in c["printhead_system"]["printheads"]:
                rises((pid, "head-usage", head["printhead_uuid"]), head["usage_time_s"])
                rises((pid, "head-agent", head["printhead_uuid"]), head["agent_consumed_cm3"])
            for agent in c["agent_system"]["agents"]:
                rises((pid, "agent", agent["agent_type"]), agent["agent_used_cm3"])
                key = (pid, "level", agent["agent_type"], str(agent["cartridge_installed_at"]))
                rises(key, -agent["consumable_level_pct"])  # a cartridge only empties
            rises((pid, "insertions"), c["build_unit"]["total_build_unit_insertions"])
            unit = c["build_unit"]["installed_build_unit"]
            if unit:
                rises((pid, "unit-usage", unit["serial_number"]), unit["usage_time_s"])
                rises((pid, "unit-insertions", unit["serial_number"]), unit["insertion_count"])
    # replacements happened, so the per-serial keys above were really exercised
    cartridges = {k for k in last if k[1] == "level"}
    rolls = {k for k in last if k[1] == "roll"}
    assert len(cartridges) > 2 * len(f.printer_ids) and len(rolls) > len(f.printer_ids)


def test_events_and_logs_use_valid_values_in_order() -> None:
    f = day_fleet()
    severities = enum_symbols("system_event", "Severity")
    log_types = enum_symbols("device_log", "LogType")
    kinds: Counter[str] = Counter()
    for pid in f.printer_ids:
        events = all_pages(f, pid, "events")
        assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
        assert all(a["event_time"] <= b["event_time"] for a, b in zip(events, events[1:]))
        for e in events:
            assert e["severity"] in severities and e["code"] and e["subsystem"] and e["description"]
            assert all(isinstance(v, str) for v in e["debug_details"].values())
            kinds[e["severity"]] += 1
        logs = all_pages(f, pid, "logs")
        assert [log["seq"] for log in logs] == list(range(1, len(logs) + 1))
        for log in logs:
            assert log["log_type"] in log_types and log["started_at"] <= log["ended_at"] <= f.now_ms
            assert log["size_bytes"] > 0 and len(log["content_sha256"]) == 64
    assert {"INFO", "WARNING", "ERROR"} <= set(kinds)
    statuses, activities = enum_symbols("heartbeat", "PrinterStatus"), enum_symbols("heartbeat", "PrinterActivity")
    for pid in f.printer_ids:
        s = f.read(pid, "status")
        assert s["status"] in statuses and s["activity"] in activities


def test_log_content_quotes_private_data_and_matches_its_metadata() -> None:
    import hashlib

    f = day_fleet()
    logs = all_pages(f, "p001", "logs")
    session = next(log for log in logs if log["log_type"] == "PRINTER_SESSION")
    text = f.log_content("p001", session["log_id"]).encode()
    assert len(text) == session["size_bytes"] and hashlib.sha256(text).hexdigest() == session["content_sha256"]
    secrets = f.truth()["printers"][0]["private_strings"]
    assert any(s.encode() in text for s in secrets)
