"""Records from the real simulator for the stream-logic tests (no HTTP, no Kafka).

`run(...)` advances a `Fleet` and reads it like a collector would, turning every answer
into real records with `producers.device_records.RecordBuilder` (envelope, pseudonyms,
stable record ids), in event-time order. Runs are cached: tests must not mutate them.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

from producers.device_records import RecordBuilder, Site
from producers.simulator import Fleet, SimulatorSettings
from schemas import SchemaRegistry

DAY_MS = 86_400_000
HOUR_MS = 3_600_000
START_MS = 1_741_910_400_000  # 2025-03-14T00:00:00Z, a day boundary
REGISTRY = SchemaRegistry.load_default()

Record = dict[str, Any]


@dataclass
class SimRun:
    records: list[tuple[str, Record]]  # (kind, record), event-time order
    device_ids: dict[str, str]  # printer id -> device id (printer uuid)
    truth: dict[int, dict[str, dict[str, Any]]] = field(default_factory=dict)  # t -> printer id -> truth
    counters: dict[int, dict[str, Record]] = field(default_factory=dict)  # t -> printer id -> counters

    def of(self, kind: str, device_id: str | None = None) -> list[Record]:
        return [r for k, r in self.records if k == kind and (device_id is None or r["device_id"] == device_id)]


@functools.cache
def run(
    printers: int = 3, seed: int = 11, start_ms: int = START_MS, duration_ms: int = DAY_MS,
    heartbeat_s: int = 30, consumables_s: int = 300, site_id: str = "site-A", truth_every_ms: int = HOUR_MS,
) -> SimRun:
    fleet = Fleet(SimulatorSettings(printers=printers, seed=seed, start_ms=start_ms))
    builder = RecordBuilder(REGISTRY, Site(site_id, f"secret-{site_id}".encode()))
    ids = {pid: fleet.read(pid, "identity")["printer_uuid"] for pid in fleet.printer_ids}
    out: list[tuple[str, Record]] = []
    seqs = {(pid, name): 0 for pid in fleet.printer_ids for name in ("jobs", "events")}
    # Paged history before the start is not read: the pipeline starts "now".
    for pid in fleet.printer_ids:
        for name in ("jobs", "events"):
            seqs[(pid, name)] = fleet.read(pid, name, after=0, limit=1)["last_seq"]
        out.append(("device_identity", builder.build("device_identity", ids[pid], fleet.read(pid, "identity"), ("identity", str(start_ms)))))
    result = SimRun(out, ids)
    step = heartbeat_s * 1000
    for t in range(start_ms, start_ms + duration_ms + 1, step):
        fleet.advance_to(t)
        for pid in fleet.printer_ids:
            dev = ids[pid]
            out.append(("heartbeat", builder.build("heartbeat", dev, fleet.read(pid, "status"), ("status", str(t)))))
            if (t - start_ms) % (consumables_s * 1000) == 0:
                counters = fleet.read(pid, "counters")
                out.append(("usage_counters", builder.build("usage_counters", dev, counters, ("counters", str(t)))))
                cons = fleet.read(pid, "consumables")
                for kind in ("cleaning_roll", "agent_system", "printhead_system", "build_unit"):
                    out.append((kind, builder.build(kind, dev, cons[kind], (kind, str(t)))))
            for name, kind in (("jobs", "job"), ("events", "system_event")):
                while True:
                    page = fleet.read(pid, name, after=seqs[(pid, name)], limit=50)
                    for entry in page[name]:
                        out.append((kind, builder.build(kind, dev, entry, (name, str(entry["seq"])))))
                        seqs[(pid, name)] = entry["seq"]
                    if not page["more"]:
                        break
        if (t - start_ms) % truth_every_ms == 0:
            result.truth[t] = {p["printer_id"]: p for p in fleet.truth()["printers"]}
            result.counters[t] = {pid: fleet.read(pid, "counters") for pid in fleet.printer_ids}
    out.sort(key=lambda kr: int(kr[1]["event_time"]))
    return result


def encode_all(kind: str, records: list[Record]) -> None:
    """Every record must encode with its kind's latest schema (raises otherwise)."""
    for record in records:
        REGISTRY.encode(kind, record)
