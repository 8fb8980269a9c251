"""The site and cohort states of a partition as they go to the changelog: one printer's
window per key, tombstones for what leaves, bounded cohorts, and a state read back from
the changelog equal to the one in memory (no Kafka: the changelog is a dict that a
tombstone deletes from, as compaction does)."""

from __future__ import annotations

import json
from typing import Any

from streams import anonymous_benchmark
from streams.anonymous_benchmark import BenchmarkSettings
from streams.rollups import Rollups
from streams.site_rollup import SiteWindows, apply_utilisation

HOUR, DAY = 3_600_000, anonymous_benchmark.DAY_MS


def _window(site: str, dev: str, start: int, length: int = HOUR, model: str = "M1") -> dict[str, Any]:
    return {"record_id": f"{dev}-{start}", "site_id": site, "device_id": dev, "event_time": start + length,
            "window_start": start, "window_end": start + length, "printing_s": 1800.0, "warming_s": 0.0,
            "cooling_s": 0.0, "idle_s": length / 1000 - 1800, "error_s": 0.0, "unreachable_s": 0.0,
            "jobs_completed": 1, "layers_printed": 10, "material_consumed_kg": 1.0, "agent_consumed_cm3": 2.0,
            "packing_density_pct": 12.5, "material_recycled_pct": 20.0, "model_number": model}


def _commit(changelog: dict[str, bytes], writes: dict[str, bytes | None]) -> None:
    for key, value in writes.items():
        if value is None:
            changelog.pop(key, None)
        else:
            changelog[key] = value


def _site_record(outputs: list[Any]) -> dict[str, Any]:
    [(_, _, (_, record))] = outputs
    return dict(record)


def test_a_large_site_writes_one_small_value_per_printer_window_and_tombstones_what_it_drops() -> None:
    # 150 printers (the size whose one value per site passed 1 MiB after 12 windows), 110
    # hourly windows: more than the 96 a site keeps.
    changelog: dict[str, bytes] = {}
    rollups = Rollups({}, BenchmarkSettings())
    printers = [f"dev-{n:03d}" for n in range(150)]
    largest, tombstones = 0, 0
    for hour in range(110):
        for dev in printers:
            rollups.site_window(_window("site-a", dev, hour * HOUR))
        writes = rollups.take_dirty()
        largest = max(largest, *(len(v) for v in writes.values() if v is not None))
        tombstones += sum(v is None for v in writes.values())
        _commit(changelog, writes)
    assert largest < 2_000  # one printer's window, whatever the site's size
    assert tombstones == (110 - 96) * 150  # each dropped window, printer by printer
    assert len(changelog) == 96 * 150
    assert rollups.take_dirty() == {}  # nothing written twice

    # The next owner of the partition reads the same state back: the next window's site
    # record is the same from either.
    successor = Rollups(changelog, BenchmarkSettings())
    late = _window("site-a", "dev-000", 109 * HOUR)
    assert _site_record(successor.site_window(late)[0]) == _site_record(rollups.site_window(late)[0])
    assert successor.take_dirty() == rollups.take_dirty()


def test_a_model_read_late_rewrites_only_that_printers_windows() -> None:
    rollups = Rollups({}, BenchmarkSettings())
    for start in (0, HOUR):
        rollups.site_window(_window("site-a", "dev/1", start, model=""))  # a device id may hold "/"
        rollups.site_window(_window("site-a", "dev-2", start))
    rollups.take_dirty()
    rollups.site_window({"site_id": "site-a", "device_id": "dev/1", "model_number": "M1"})
    writes = rollups.take_dirty()
    assert sorted(writes) == ["site/site-a/0:3600000/dev/1", "site/site-a/3600000:7200000/dev/1"]
    assert {json.loads(v or b"")["model_number"] for v in writes.values()} == {"M1"}
    # The next owner finds the printer under its own id, "/" and all.
    changelog: dict[str, bytes] = {}
    _commit(changelog, writes)
    successor = Rollups(changelog, BenchmarkSettings())
    successor.site_window({"site_id": "site-a", "device_id": "dev/1", "model_number": "M2"})
    assert sorted(successor.take_dirty()) == sorted(writes)


def test_a_site_written_whole_by_an_earlier_version_is_read_and_rewritten_key_by_key() -> None:
    old = SiteWindows(site_id="site-a")
    for dev in ("d1", "d2"):
        old = apply_utilisation(old, _window("site-a", dev, 0))
    changelog = {"site/site-a": old.to_json()}
    rollups = Rollups(changelog, BenchmarkSettings())
    outputs, _ = rollups.site_window(_window("site-a", "d3", 0))
    assert _site_record(outputs)["jobs_completed"] == 3  # d1 and d2 from the old value, and d3
    _commit(changelog, rollups.take_dirty())
    assert sorted(changelog) == [f"site/site-a/0:3600000/{d}" for d in ("d1", "d2", "d3")]


def _day(model: str, day: int, site: str) -> dict[str, Any]:
    start = day * DAY
    return {"cohort": f"{model}|{start}", "site": {
        "site_id": site, "window_start": start, "window_end": start + DAY, "device_count": 2,
        "seconds": {"printing": 3600.0, "warming": 0.0, "cooling": 0.0, "idle": 3600.0, "error": 0.0,
                    "unreachable": 0.0},
        "utilisation_pct": 50.0, "jobs_completed": 2, "layers_printed": 20, "material_consumed_kg": 2.0,
        "packing_density_pct": 12.5, "material_recycled_pct": 20.0, "agent_consumed_cm3": 4.0}}


def test_cohorts_are_kept_keep_days_then_tombstoned_and_a_later_message_for_them_is_not_taken() -> None:
    changelog: dict[str, bytes] = {}
    rollups = Rollups({}, BenchmarkSettings(keep_days=7))
    for day in range(10):
        for n in range(5):
            outputs = rollups.cohort_site(_day("M1", day, f"site-{n}"))
        assert [kind for _, _, (kind, _) in outputs] == ["benchmark"]  # five sites: published
        _commit(changelog, rollups.take_dirty())
    assert sorted(changelog) == [f"cohort/M1|{day * DAY}" for day in range(3, 10)]
    # A site's day older than the cohorts kept would make a benchmark of fewer sites.
    assert rollups.cohort_site(_day("M1", 2, "site-5")) == []
    # The horizon holds for the next owner too: it comes from the cohorts in the changelog.
    successor = Rollups(changelog, BenchmarkSettings(keep_days=7))
    assert successor.cohort_site(_day("M1", 2, "site-5")) == []
    assert successor.cohort_site(_day("M1", 3, "site-5")) != []
    assert sorted(successor.take_dirty()) == [f"cohort/M1|{3 * DAY}"]
