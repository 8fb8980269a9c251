"""The dashboard's fleet in memory: newest state per printer, offline by status or by
silence, open alerts per site, and what pages are told."""

from __future__ import annotations

from typing import Any

from common.alert_view import AlertFilter
from dashboard.fleet import Fleet, is_offline

MIN = 60_000


def state(device: str, t: int, *, site: str = "s1", status: str = "POWERED_ON", heard: int | None = None,
          name: str = "") -> dict[str, Any]:
    return {"record_id": f"{device}-{t}", "schema_version": 2, "site_id": site, "device_id": device, "event_time": t,
            "printer_name": name or device, "model_number": "5200", "status": status, "activity": "IDLE",
            "current_job_id": None, "layers_done": None, "layers_total": None, "estimated_completion_at": None,
            "estimated_remaining_s": None, "pending_job_count": 0, "last_heartbeat_at": t if heard is None else heard,
            "open_alert_count": 0, "firmware_release": ""}


def alert(alert_id: str, device: str, t: int, lifecycle: str = "RAISED", *, site: str = "s1",
          severity: str = "WARNING", rule: str = "system-event", raised: int | None = None) -> dict[str, Any]:
    return {"record_id": f"{alert_id}-{t}-{lifecycle}", "site_id": site, "device_id": device, "event_time": t,
            "alert_id": alert_id, "dedup_key": f"{rule}:{device}", "lifecycle": lifecycle, "severity": severity,
            "rule_id": rule, "raised_at": t if raised is None else raised, "cleared_at": None}


def test_offline_when_unreachable_or_silent_longer_than_the_setting() -> None:
    assert is_offline(state("p", 0, status="UNREACHABLE"), now_ms=0, offline_after_ms=6 * MIN)
    assert not is_offline(state("p", 0), now_ms=6 * MIN, offline_after_ms=6 * MIN)
    assert is_offline(state("p", 0), now_ms=6 * MIN + 1, offline_after_ms=6 * MIN)


def test_a_printer_shows_its_newest_record_with_offline_last_seen_and_open_alerts() -> None:
    fleet = Fleet(6 * MIN)
    printer = fleet.apply_state(state("p1", 1000), now_ms=2000)
    assert printer is not None
    assert printer["offline"] is False and printer["last_seen"] == 1000 and printer["open_alerts"] == 0
    assert printer["status"] == "POWERED_ON" and printer["model_number"] == "5200"
    assert fleet.apply_state(state("p1", 500), now_ms=2000) is None  # an older record (a replay) changes nothing
    assert fleet.printers("s1", 2000)[0]["event_time"] == 1000


def test_printers_are_listed_per_site_by_name() -> None:
    fleet = Fleet(6 * MIN)
    for device, name, site in (("d1", "B", "s1"), ("d2", "A", "s1"), ("d3", "C", "s2")):
        fleet.apply_state(state(device, 1, site=site, name=name), now_ms=1)
    assert [p["device_id"] for p in fleet.printers("s1", 1)] == ["d2", "d1"]
    assert [p["device_id"] for p in fleet.printers("s2", 1)] == ["d3"]
    assert fleet.printers("s3", 1) == [] and fleet.sites == ["s1", "s2"]
    assert fleet.printer("s2", "d1", 1) is None  # another site's printer is not found through this site


def test_the_clock_alone_turns_a_silent_printer_offline_once_and_back_with_a_new_record() -> None:
    fleet = Fleet(6 * MIN)
    fleet.apply_state(state("p1", 0), now_ms=0)
    fleet.apply_state(state("p2", 5 * MIN), now_ms=5 * MIN)
    assert fleet.recheck_offline(6 * MIN) == []
    changed = fleet.recheck_offline(6 * MIN + 1)
    assert [(p["device_id"], p["offline"]) for p in changed] == [("p1", True)]
    assert fleet.recheck_offline(7 * MIN) == []  # told once
    back = fleet.apply_state(state("p1", 7 * MIN), now_ms=7 * MIN)
    assert back is not None and back["offline"] is False
    assert fleet.recheck_offline(7 * MIN) == []


def test_an_unreachable_record_is_offline_at_once() -> None:
    fleet = Fleet(6 * MIN)
    printer = fleet.apply_state(state("p1", 1000, status="UNREACHABLE", heard=0), now_ms=1000)
    assert printer is not None and printer["offline"] is True and printer["last_seen"] == 0
    assert fleet.recheck_offline(1000) == []


def test_alerts_are_open_until_cleared_and_counted_on_their_printer() -> None:
    fleet = Fleet(6 * MIN)
    fleet.apply_state(state("p1", 0), now_ms=0)
    told, printer = fleet.apply_alert(alert("a1", "p1", 10), now_ms=10)
    assert told is not None and printer is not None and printer["open_alerts"] == 1
    told, printer = fleet.apply_alert(alert("a1", "p1", 20, "UPDATED"), now_ms=20)
    assert told is not None and printer is None  # still one open
    assert [a["lifecycle"] for a in fleet.open_alerts("s1")] == ["UPDATED"]
    told, printer = fleet.apply_alert(alert("a1", "p1", 30, "CLEARED"), now_ms=30)
    assert told is not None and printer is not None and printer["open_alerts"] == 0
    assert fleet.open_alerts("s1") == []


def test_an_older_lifecycle_record_does_not_overwrite_a_newer_one() -> None:
    fleet = Fleet(6 * MIN)
    fleet.apply_alert(alert("a1", "p1", 20, "UPDATED", severity="ERROR"), now_ms=20)
    told, _ = fleet.apply_alert(alert("a1", "p1", 10, "RAISED"), now_ms=20)
    assert told is None
    assert fleet.open_alerts("s1")[0]["severity"] == "ERROR"


def test_open_alerts_filter_by_severity_rule_and_printer_most_serious_first() -> None:
    fleet = Fleet(6 * MIN)
    fleet.apply_alert(alert("a1", "p1", 1, severity="WARNING"), now_ms=1)
    fleet.apply_alert(alert("a2", "p2", 2, severity="CRITICAL", rule="printer-offline"), now_ms=2)
    fleet.apply_alert(alert("a3", "p1", 3, severity="INFO"), now_ms=3)
    fleet.apply_alert(alert("a4", "p1", 4, site="s2", severity="CRITICAL"), now_ms=4)
    assert [a["alert_id"] for a in fleet.open_alerts("s1")] == ["a2", "a1", "a3"]
    assert [a["alert_id"] for a in fleet.open_alerts("s1", AlertFilter(min_severity="WARNING"))] == ["a2", "a1"]
    assert [a["alert_id"] for a in fleet.open_alerts("s1", AlertFilter(rule="printer-offline"))] == ["a2"]
    assert [a["alert_id"] for a in fleet.open_alerts("s1", AlertFilter(printer="p1"))] == ["a1", "a3"]
    assert [a["alert_id"] for a in fleet.open_alerts("s2")] == ["a4"]
