"""The device agent's pure parts: one printer's step and tick, the partition book, the
site step."""

from __future__ import annotations

from typing import Any

from streams import device, partition_book, site_rollup
from streams.device import DeviceSettings, DeviceState
from streams.fleet_state import FleetSettings
from streams.partition_book import PartitionBook
from streams.site_rollup import SiteWindows

SETTINGS = DeviceSettings(fleet=FleetSettings(heartbeat_interval_s=10, missed_intervals=3))


def _hb(t: int, **kw: Any) -> dict[str, Any]:
    return {"record_id": f"hb{t}", "site_id": "s", "device_id": "d", "event_time": t, "status": "POWERED_ON",
            "activity": "PRINTING", "current_job_id": "J1", "layers_done": t // 10_000, "layers_total": 500,
            "recent_layer_duration_s": 9.5, "pending_job_count": 1, "cooling_remaining_s": 0.0, **kw}


def test_a_heartbeat_feeds_fleet_state_and_a_repeat_changes_nothing() -> None:
    first = device.apply(DeviceState(), "heartbeat", _hb(10_000), SETTINGS)
    assert [k for k, _ in first.outputs] == ["fleet_state"]
    again = device.apply(first.state, "heartbeat", _hb(10_000), SETTINGS)
    assert again.outputs == [] and again.state.to_dict() == first.state.to_dict()
    assert DeviceState.from_dict(first.state.to_dict()) == first.state


def test_silence_raises_offline_by_tick_and_a_heartbeat_clears_it() -> None:
    s = device.apply(DeviceState(), "heartbeat", _hb(10_000), SETTINGS).state
    assert device.tick(s, 35_000, SETTINGS).outputs == []  # 25 s: not yet
    quiet = device.tick(s, 50_000, SETTINGS)
    alerts = [r for k, r in quiet.outputs if k == "alert"]
    assert [(a["rule_id"], a["lifecycle"], a["raised_at"]) for a in alerts] == [("printer-offline", "RAISED", 40_000)]
    assert device.tick(quiet.state, 60_000, SETTINGS).outputs == []  # one alert, not one per tick
    back = device.apply(quiet.state, "heartbeat", _hb(70_000), SETTINGS)
    assert [(r["rule_id"], r["lifecycle"]) for k, r in back.outputs if k == "alert"] == [("printer-offline", "CLEARED")]


def test_partition_book_tells_next_repeat_and_gap() -> None:
    book = PartitionBook()
    assert partition_book.position(book, "t", 40).verdict == "next"  # nothing known yet
    partition_book.applied(book, "t", 40)
    assert partition_book.position(book, "t", 41) == ("next", 41)
    assert partition_book.position(book, "t", 12) == ("repeat", 41)
    assert partition_book.position(book, "t", 45) == ("gap", 41)
    partition_book.saw(book, "d", "s", None, 1_000)  # not a heartbeat: the clock stays
    assert book.devices == {"d": "s"} and book.watermarks == {}
    partition_book.saw(book, "d", "s", 5_000, 1_000)
    partition_book.saw(book, "d", "s", 4_000, 2_000)  # older: the clock does not go back
    assert book.watermarks == {"s": (5_000, 1_000)}
    assert PartitionBook.from_dict(book.to_dict()) == book


def _window(dev: str, model: str, printing: float) -> dict[str, Any]:
    return {"record_id": dev, "site_id": "s", "device_id": dev, "event_time": 86_400_000, "window_start": 0,
            "window_end": 86_400_000, "printing_s": printing, "warming_s": 0.0, "cooling_s": 0.0,
            "idle_s": 86_400 - printing, "error_s": 0.0, "unreachable_s": 0.0, "jobs_completed": 1,
            "layers_printed": 10, "material_consumed_kg": 1.0, "agent_consumed_cm3": 2.0,
            "packing_density_pct": None, "material_recycled_pct": None, "model_number": model}


def test_site_step_sums_printers_and_splits_models() -> None:
    window = _window
    state, _, _ = site_rollup.step(SiteWindows(), window("a", "M1", 3600.0))
    state, record, models = site_rollup.step(state, window("b", "M2", 7200.0))
    again, same, _ = site_rollup.step(state, window("b", "M2", 7200.0))  # a repeat replaces, not adds
    assert record == same and record["device_id"] == "" and record["printing_s"] == 10_800.0
    assert record["jobs_completed"] == 2 and record["agent_consumed_cm3"] == 4.0
    assert [(m, u.seconds["printing"]) for m, u in models] == [("M1", 3600.0), ("M2", 7200.0)]


def test_a_model_read_after_the_windows_moves_them_into_the_cohort() -> None:
    state, _, models = site_rollup.step(SiteWindows(), _window("a", "", 3600.0))  # identity not read yet
    state, _, models = site_rollup.step(state, _window("b", "M1", 7200.0))
    assert [(m, u.device_count) for m, u in models] == [("M1", 1)]
    state, changed = site_rollup.set_model(state, "a", "M1")
    assert changed == [(0, 86_400_000)]
    assert [(m, u.device_count, u.seconds["printing"]) for m, u in site_rollup.by_model(state, 0, 86_400_000)] == [("M1", 2, 10_800.0)]
    assert site_rollup.set_model(state, "a", "M1")[1] == []  # told again: nothing changes


def test_a_tick_that_changes_nothing_returns_the_same_state() -> None:
    """The timer passes every printer every few seconds: an unchanged state must stay the
    same object, or every checkpoint would write every printer again."""
    s = device.apply(DeviceState(), "heartbeat", _hb(10_000), SETTINGS).state
    quiet = device.tick(s, 20_000, SETTINGS)
    assert quiet.state is s and quiet.outputs == []
    # passing an hour's end closes the window: a real change
    later = device.apply(s, "heartbeat", _hb(3_590_000), SETTINGS).state
    closed = device.tick(later, 3_605_000, SETTINGS)
    assert closed.state is not later and [k for k, _ in closed.outputs] == ["utilisation"]
