"""The same seed gives the same fleet, however and however often it is read."""

from __future__ import annotations

import random
from typing import Any

from producers.simulator import Fleet
from sim_helpers import DAY_MS, START_MS, all_pages, fleet

ENDPOINTS = ("identity", "status", "counters", "consumables")


def _everything(f: Fleet) -> dict[str, Any]:
    out: dict[str, Any] = {"truth": f.truth()}
    for pid in f.printer_ids:
        for endpoint in ("events", "jobs", "logs"):
            out[f"{pid}/{endpoint}"] = all_pages(f, pid, endpoint)
        for endpoint in ENDPOINTS:
            out[f"{pid}/{endpoint}"] = f.read(pid, endpoint)
    return out


def test_same_seed_same_streams_whatever_the_poll_pattern() -> None:
    end = START_MS + DAY_MS
    at_once = fleet(5, seed=11)
    at_once.advance_to(end)

    polled = fleet(5, seed=11)
    rng = random.Random(3)
    seen = {pid: {"events": 0, "jobs": 0, "logs": 0} for pid in polled.printer_ids}
    t = START_MS
    while t < end:
        t = min(end, t + rng.randint(1_000, 45 * 60_000))  # irregular polling, 1 s to 45 min
        polled.advance_to(t)
        for pid in rng.sample(polled.printer_ids, 3):
            for endpoint in ENDPOINTS:
                polled.read(pid, endpoint)
            for endpoint, after in seen[pid].items():
                page = polled.read(pid, endpoint, after=after, limit=7)
                if page[endpoint]:
                    seen[pid][endpoint] = page[endpoint][-1]["seq"]
    assert _everything(polled) == _everything(at_once)


def test_a_printer_does_not_depend_on_the_fleet_size() -> None:
    small, large = fleet(2, seed=5), fleet(6, seed=5)
    for f in (small, large):
        f.advance_to(START_MS + DAY_MS // 2)
    for endpoint in ("events", "jobs", "logs"):
        assert all_pages(small, "p002", endpoint) == all_pages(large, "p002", endpoint)
    assert small.truth()["printers"] == large.truth()["printers"][:2]


def test_another_seed_gives_another_fleet() -> None:
    a, b = fleet(2, seed=1), fleet(2, seed=2)
    assert a.read("p001", "identity")["printer_uuid"] != b.read("p001", "identity")["printer_uuid"]
    assert a.truth()["printers"][0]["private_strings"] != b.truth()["printers"][0]["private_strings"]


def test_reads_never_move_time_backwards() -> None:
    f = fleet(1)
    f.advance_to(START_MS + 3_600_000)
    before = f.read("p001", "counters")
    assert f.advance_to(START_MS) == 0
    assert f.read("p001", "counters") == before
    assert f.now_ms == START_MS + 3_600_000
