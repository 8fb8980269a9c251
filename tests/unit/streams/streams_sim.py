"""Records from the real simulator for the stream-logic tests (no HTTP, no Kafka).

`run(...)` is `producers.simulator.replay` of a fresh fleet (records a collector would
make, in event-time order), cached: tests must not mutate the runs.
"""

from __future__ import annotations

import functools
from typing import Any

from producers.simulator import Fleet, SimulatorSettings
from producers.simulator.replay import Replay, replay
from schemas import SchemaRegistry

DAY_MS = 86_400_000
HOUR_MS = 3_600_000
START_MS = 1_741_910_400_000  # 2025-03-14T00:00:00Z, a day boundary
REGISTRY = SchemaRegistry.load_default()

Record = dict[str, Any]


SimRun = Replay


@functools.cache
def run(
    printers: int = 3, seed: int = 11, start_ms: int = START_MS, duration_ms: int = DAY_MS,
    heartbeat_s: int = 30, consumables_s: int = 300, site_id: str = "site-A", truth_every_ms: int = HOUR_MS,
) -> SimRun:
    fleet = Fleet(SimulatorSettings(printers=printers, seed=seed, start_ms=start_ms))
    return replay(fleet, REGISTRY, duration_ms=duration_ms, site_id=site_id, heartbeat_s=heartbeat_s,
                  consumables_s=consumables_s, truth_every_ms=truth_every_ms)


def encode_all(kind: str, records: list[Record]) -> None:
    """Every record must encode with its kind's latest schema (raises otherwise)."""
    for record in records:
        REGISTRY.encode(kind, record)
