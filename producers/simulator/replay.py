"""Records a collector would make from a simulated fleet, without HTTP: for stream tests,
benches and demos that need realistic telemetry fast.

`replay(settings, ...)` advances a `Fleet` and reads it like the collector does (status
every heartbeat, counters and consumables at their cadence, jobs and events by cursor),
turning every answer into records with the collector's own `RecordBuilder` (envelope,
pseudonyms, stable record ids, privacy by construction), in event-time order. The
simulator's ground truth is sampled alongside for tests that compare against it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from producers.collector.device_records import RecordBuilder, Site
from producers.simulator.fleet import Fleet
from producers.simulator.settings import SimulatorSettings
from schemas import SchemaRegistry

Record = dict[str, Any]
CONSUMABLE_KINDS = ("cleaning_roll", "agent_system", "printhead_system", "build_unit")


@dataclass
class Replay:
    records: list[tuple[str, Record]]  # (kind, record), event-time order
    device_ids: dict[str, str]  # printer id -> device id
    truth: dict[int, dict[str, dict[str, Any]]] = field(default_factory=dict)  # t -> printer id -> truth
    counters: dict[int, dict[str, Record]] = field(default_factory=dict)  # t -> printer id -> counters

    def of(self, kind: str, device_id: str | None = None) -> list[Record]:
        return [r for k, r in self.records if k == kind and (device_id is None or r["device_id"] == device_id)]


def replay(
    fleet: Fleet, registry: SchemaRegistry, *, duration_ms: int, site_id: str = "site-A", heartbeat_s: int = 30,
    consumables_s: int = 300, truth_every_ms: int = 3_600_000, kinds: frozenset[str] | None = None,
) -> Replay:
    """Read `fleet` from its current time for `duration_ms`. `kinds` limits what is read
    (None: everything)."""
    builder = RecordBuilder(registry, Site(site_id, f"secret-{site_id}".encode()))
    start_ms = fleet.now_ms
    want = (lambda kind: True) if kinds is None else kinds.__contains__
    ids = {pid: fleet.read(pid, "identity")["printer_uuid"] for pid in fleet.printer_ids}
    out: list[tuple[str, Record]] = []
    seqs = {(pid, name): 0 for pid in fleet.printer_ids for name in ("jobs", "events")}
    # History before the start is not read: the pipeline starts "now".
    for pid in fleet.printer_ids:
        for name in ("jobs", "events"):
            seqs[(pid, name)] = fleet.read(pid, name, after=0, limit=1)["last_seq"]
        if want("device_identity"):
            out.append(("device_identity", builder.build("device_identity", ids[pid], fleet.read(pid, "identity"), ("identity", str(start_ms)))))
    result = Replay(out, ids)
    for t in range(start_ms, start_ms + duration_ms + 1, heartbeat_s * 1000):
        fleet.advance_to(t)
        for pid in fleet.printer_ids:
            dev = ids[pid]
            if want("heartbeat"):
                out.append(("heartbeat", builder.build("heartbeat", dev, fleet.read(pid, "status"), ("status", str(t)))))
            if (t - start_ms) % (consumables_s * 1000) == 0:
                if want("usage_counters"):
                    out.append(("usage_counters", builder.build("usage_counters", dev, fleet.read(pid, "counters"), ("counters", str(t)))))
                cons = fleet.read(pid, "consumables")
                out += [(kind, builder.build(kind, dev, cons[kind], (kind, str(t)))) for kind in CONSUMABLE_KINDS if want(kind)]
            for name, kind in (("jobs", "job"), ("events", "system_event")):
                while want(kind):
                    page = fleet.read(pid, name, after=seqs[(pid, name)], limit=50)
                    for entry in page[name]:
                        out.append((kind, builder.build(kind, dev, entry, (name, str(entry["seq"])))))
                        seqs[(pid, name)] = entry["seq"]
                    if not page["more"]:
                        break
        if truth_every_ms and (t - start_ms) % truth_every_ms == 0:
            result.truth[t] = {p["printer_id"]: p for p in fleet.truth()["printers"]}
            result.counters[t] = {pid: fleet.read(pid, "counters") for pid in fleet.printer_ids}
    out.sort(key=lambda kr: int(kr[1]["event_time"]))
    return result


def new_fleet(printers: int, seed: int, start_ms: int) -> Fleet:
    return Fleet(SimulatorSettings(printers=printers, seed=seed, start_ms=start_ms))
