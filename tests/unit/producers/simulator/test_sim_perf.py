"""A simulated day of 100 printers costs little CPU (event-driven, nothing stepped)."""

from __future__ import annotations

import time

from sim_helpers import DAY_MS, START_MS, fleet


def test_a_day_for_100_printers_takes_well_under_a_few_seconds() -> None:
    cpu = time.process_time()
    f = fleet(100, seed=21)
    built = time.process_time() - cpu
    transitions = f.advance_to(START_MS + DAY_MS)
    day = time.process_time() - cpu - built
    print(f"100 printers: build {built:.2f} s, one simulated day {day:.2f} s CPU, {transitions} transitions")
    assert day < 3.0 and built < 2.0
    assert sum(p["jobs_completed"] for p in f.truth()["printers"]) > 200
