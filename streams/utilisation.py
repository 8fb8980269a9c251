"""Utilisation KPIs per printer in hourly and daily windows by event time.

The utilisation agent keeps one `UtilisationState` per device_id (every input topic
keyed by device_id, so one worker sees all of a printer's records) and calls

    apply(state, kind, record, settings)   # kind: heartbeat, job, usage_counters,
                                           #       agent_system, build_unit
    advance(state, now_ms, settings)       # timer, now_ms = the site's event-time watermark

Each returns `Applied(state, records, late)`: `utilisation` records to produce and the
input records that came too late (to dead-letter and count, never to drop silently).
`apply` changes the state it is given in place; `advance` returns a copy when anything
changed and the same state when nothing did.

Windows: hours [h, h+1) UTC; days are the sum of their 24 hours. A window is first
emitted when the printer's watermark (newest heartbeat event time: other kinds come on
their own topics and may run ahead while a backlog is read) passes its end, and
re-emitted whenever a late record within `allowed_lateness_s` changes it; once the
watermark passes end + lateness it is final, its raw samples are dropped, and any later
record for it is returned in `late`. Re-emissions carry new content, hence a new id
(uuid5 of the content); consumers keep the newest per (device, window).

Idempotence: samples are stored by event time (heartbeats, counters) or by job id (a job
counts once when COMPLETED, however often its snapshot repeats); every KPI is recomputed
from the sample set, so a redelivered record changes nothing and arrival order does not
matter. `recent` ids (the last 512) only tell a recent duplicate of a finalised window
from a genuinely late record; an older replay is reported late, which is harmless.
Heartbeats are remembered by their event time ("hb@<ms>") rather than a digest of their
id: a printer sends one per poll, two with one event time are one sample anyway (see
`_put`), and the digest was a tenth of a heartbeat's cost.

Counters count by the increase between readings, spread evenly over the time between
them, and handle resets; so a skipped record loses nothing. Material is the lifetime
`total_material_consumed_kg` of usage_counters; agent (`agent_consumed_cm3`, utilisation
v2) is the lifetime `agent_used_cm3` of agent_system, summed over agent types with each
type's resets handled on its own (usage_counters' `total_agent_consumed_cm3` is the same
sum; the unit tests check that the two agree). Layers go to the window of the heartbeat
that saw them done. The window clock starts at the first record a printer sends:
anything older than its hour is late.
"""

from __future__ import annotations

import functools
from bisect import bisect_left
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, NamedTuple

from streams.errors import InvalidRecordError
from streams.ids import RecentIds, content_digest, derived_id
from streams.plain import PlainState, copied
from streams.timeline import (
    CounterSample,
    HeartbeatSample,
    WindowTotals,
    bucket_of,
    counter_deltas,
    heartbeat_seconds,
    layer_deltas,
    multi_counter_deltas,
    spread_in,
)

HOUR_MS: Final = 3_600_000
DAY_MS: Final = 24 * HOUR_MS
KINDS: Final = ("heartbeat", "job", "usage_counters", "agent_system", "build_unit")


@dataclass(frozen=True)
class UtilisationSettings:
    allowed_lateness_s: float = 600.0  # records up to this much behind still count
    max_hold_s: float = 90.0  # = the fleet view's offline threshold (3 x 30 s)
    # Faster rises of a lifetime counter are not consumption (see timeline.counter_deltas);
    # well above what the largest of these printers can use.
    max_material_kg_per_h: float = 50.0
    max_agent_cm3_per_h: float = 20_000.0

    @functools.cached_property  # read for every record
    def lateness_ms(self) -> int:
        return round(self.allowed_lateness_s * 1000)


@dataclass(slots=True)
class UtilisationState(PlainState):
    site_id: str = ""
    device_id: str = ""
    watermark: int = 0
    open_from: int | None = None  # start of the oldest hour not final; None = nothing yet
    heartbeats: list[HeartbeatSample] = field(default_factory=list)
    materials: list[CounterSample] = field(default_factory=list)
    agents: list[tuple[int, tuple[tuple[str, float], ...]]] = field(default_factory=list)
    jobs: dict[str, tuple[int, float | None]] = field(default_factory=dict)  # id -> (completed_at, density)
    fills: list[tuple[int, str, float, float]] = field(default_factory=list)  # (t, fill, kg, %)
    days: dict[str, WindowTotals] = field(default_factory=dict)  # day start -> its final hours
    emitted: dict[str, str] = field(default_factory=dict)  # window key -> digest last emitted
    recent: RecentIds = field(default_factory=lambda: RecentIds(capacity=512))
    late_count: int = 0


class Applied(NamedTuple):
    state: UtilisationState
    records: list[dict[str, Any]]
    late: list[Mapping[str, Any]]


def apply(
    state: UtilisationState, kind: str, record: Mapping[str, Any], settings: UtilisationSettings = UtilisationSettings()
) -> Applied:
    """Fold one record of `kind` into `state`, in place (the returned state is `state`;
    see `streams.device`). Raises InvalidRecordError, with `state` unchanged, for an
    unknown kind or a record without record_id or event_time; another field it cannot
    read raises KeyError, TypeError or ValueError, also before `state` changes, which
    `device.apply` (the record boundary) turns into InvalidRecordError."""
    if kind not in KINDS:
        raise InvalidRecordError(f"utilisation does not take {kind!r} records")
    try:
        rid, event_time = str(record["record_id"]), int(record["event_time"])
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidRecordError(f"{kind} record without record_id/event_time: {exc}") from None
    at = _job_time(record) if kind == "job" else event_time
    if at is None:  # e.g. a job snapshot that is not COMPLETED: nothing to count
        return Applied(state, [], [])
    beat = f"hb@{at}" if kind == "heartbeat" else ""
    if state.open_from is not None and at < state.open_from:
        counted = state.recent.knows(beat) if beat else rid in state.recent
        if counted:  # a redelivery of a counted record, not a late one
            return Applied(state, [], [])
        state.late_count += 1
        return Applied(state, [], [record])
    site_id, device_id = str(record["site_id"]), str(record["device_id"])
    sample = _sample(kind, record, at)  # the record is read whole before the state changes
    s = state
    s.site_id, s.device_id = s.site_id or site_id, s.device_id or device_id
    if s.open_from is None:
        s.open_from = at - at % HOUR_MS
    changed_from = _insert(s, kind, at, sample)
    if beat:
        s.recent.remember(beat)
    else:
        s.recent.add(rid)
    passed = s.watermark
    if kind == "heartbeat":
        # Only heartbeats move the clock: other kinds arrive on their own topics and can
        # run hours ahead of the heartbeats while a backlog is read (see module doc).
        s.watermark = max(s.watermark, event_time)
    return Applied(s, _advance(s, settings, changed_from=changed_from, passed=passed), [])


def advance(state: UtilisationState, now_ms: int, settings: UtilisationSettings = UtilisationSettings()) -> Applied:
    """Move the watermark to `now_ms` (event time) so windows of a silent printer close;
    the silence counts as unreachable."""
    if state.open_from is None or now_ms <= state.watermark:
        return Applied(state, [], [])
    next_end = state.watermark - state.watermark % HOUR_MS + HOUR_MS
    if now_ms < min(next_end, state.open_from + HOUR_MS + settings.lateness_ms):
        # No window passes or becomes final: the state stays as it is (the timer calls
        # this for every printer every few seconds; a copy each time made every printer's
        # state "changed" and every checkpoint write them all).
        return Applied(state, [], [])
    s = _clone(state)
    passed, s.watermark = s.watermark, now_ms
    return Applied(s, _advance(s, settings, changed_from=now_ms, passed=passed), [])


def window_totals(state: UtilisationState, start: int, end: int, settings: UtilisationSettings) -> WindowTotals:
    """What the samples held now say about [start, end) (an hour that is not final)."""
    hold = round(settings.max_hold_s * 1000)
    beats = _around(state.heartbeats, start, end)
    totals = WindowTotals(seconds=heartbeat_seconds(beats, start, end, hold))
    totals.layers = sum(d for t, d in layer_deltas(beats) if start <= t < end)
    totals.material_kg = spread_in(counter_deltas(_around(state.materials, start, end), settings.max_material_kg_per_h), start, end)
    agents = _around(state.agents, start, end)
    totals.agent_cm3 = spread_in(multi_counter_deltas([(t, dict(used)) for t, used in agents], settings.max_agent_cm3_per_h), start, end)
    for completed_at, density in state.jobs.values():
        if start <= completed_at < end:
            totals.jobs_completed += 1
            if density is not None:
                totals.density_sum += density
                totals.density_n += 1
    totals.fills = {fill: (kg, pct) for t, fill, kg, pct in state.fills if start <= t < end}
    return totals


def to_record(site_id: str, device_id: str, start: int, end: int, totals: WindowTotals) -> dict[str, Any]:
    """A `utilisation` record; the id is uuid5 of the content, so equal content -> equal id."""
    sec = {b: round(v, 3) for b, v in totals.seconds.items()}
    density, recycled = totals.packing_density_pct, totals.recycled_pct
    body: dict[str, Any] = {
        "site_id": site_id,
        "device_id": device_id,
        "event_time": end,
        "window_start": start,
        "window_end": end,
        "printing_s": sec["printing"],
        "warming_s": sec["warming"],
        "cooling_s": sec["cooling"],
        "idle_s": sec["idle"],
        "error_s": sec["error"],
        "unreachable_s": sec["unreachable"],
        "utilisation_pct": round(100.0 * sec["printing"] * 1000 / (end - start), 4),
        "jobs_completed": totals.jobs_completed,
        "layers_printed": totals.layers,
        "material_consumed_kg": round(totals.material_kg, 6),
        "agent_consumed_cm3": round(totals.agent_cm3, 3),
        "packing_density_pct": None if density is None else round(density, 4),
        "material_recycled_pct": None if recycled is None else round(recycled, 4),
    }
    return {"record_id": derived_id("utilisation", device_id, start, end, content_digest(body)), **body}


# -- internals ----------------------------------------------------------------------------

def _job_time(record: Mapping[str, Any]) -> int | None:
    """When a job counts: at completion; None while it is not COMPLETED."""
    if record.get("completion_status") != "COMPLETED":
        return None
    return int(record.get("completed_at") or record["event_time"])


def _clone(state: UtilisationState) -> UtilisationState:
    # Copy every container we may change; samples are tuples, totals are replaced whole.
    return copied(
        state,
        heartbeats=list(state.heartbeats),
        materials=list(state.materials),
        agents=list(state.agents),
        jobs=dict(state.jobs),
        fills=list(state.fills),
        days=dict(state.days),
        emitted=dict(state.emitted),
        recent=RecentIds(state.recent.capacity, list(state.recent.ids)),
    )


def _around(samples: list[Any], start: int, end: int) -> list[Any]:
    """The samples in [start, end) plus one on each side: all a window's totals need
    (the state it began in, and the readings a counter increase is spread between)."""
    i = max(0, bisect_left(samples, (start,)) - 1)
    j = bisect_left(samples, (end,), lo=i) + 1
    return samples[i:j]


def _put(samples: list[Any], sample: tuple[Any, ...]) -> int:
    """Insert keeping time order; returns the time from which windows may have changed
    (the previous sample's: a heartbeat's state and a counter's increase run from it).
    Of two samples with one event time the larger tuple wins, so the result does not
    depend on which of them arrived first."""
    if not samples or sample[0] > samples[-1][0]:  # the usual case: newer than all
        samples.append(sample)
        return int(samples[-2][0]) if len(samples) > 1 else int(sample[0])
    i = bisect_left(samples, (sample[0],))
    if i < len(samples) and samples[i][0] == sample[0]:
        if sample > samples[i]:
            samples[i] = sample
    else:
        samples.insert(i, sample)
    return int(samples[i - 1][0]) if i > 0 else int(sample[0])


def _sample(kind: str, r: Mapping[str, Any], at: int) -> tuple[Any, ...] | None:
    """What `_insert` stores of the record: a time-ordered sample, a job's
    `(job_id, (at, density))`, or None (a record that says nothing of consumption or powder)."""
    if kind == "heartbeat":
        bucket = bucket_of(str(r.get("status") or ""), str(r.get("activity") or ""))
        return (at, bucket, str(r.get("current_job_id") or ""), int(r.get("layers_done") or 0))
    # usage_counters and agent_system v2 may lack a counter (null, an OPC UA machine):
    # such a record says nothing of consumption, and is no reset either.
    if kind == "usage_counters":
        material = r.get("total_material_consumed_kg")
        return None if material is None else (at, float(material))
    if kind == "agent_system":
        agents = [a for a in r.get("agents") or [] if a.get("agent_used_cm3") is not None]
        if r.get("agents") and not agents:
            return None
        return (at, tuple(sorted((str(a["agent_type"]), float(a["agent_used_cm3"])) for a in agents)))
    if kind == "job":
        density = r.get("packing_density_pct")
        return (str(r["job_id"]), (at, None if density is None else float(density)))
    unit = r.get("installed_build_unit")  # build_unit
    # Only a unit being printed into says what powder was used.
    if unit and unit.get("status") == "PRINTING" and unit.get("recycled_material_pct") is not None \
            and unit.get("serial_number") is not None:
        fill = f"{unit['serial_number']}#{unit['insertion_count']}"
        return (at, fill, float(unit.get("material_quantity_kg") or 0.0), float(unit["recycled_material_pct"]))
    return None


def _insert(s: UtilisationState, kind: str, at: int, sample: tuple[Any, ...] | None) -> int:
    """Add the record's sample; returns the time from which windows may have changed."""
    if sample is None:
        return at
    if kind == "heartbeat":
        return _put(s.heartbeats, sample)
    if kind == "usage_counters":
        return _put(s.materials, sample)
    if kind == "agent_system":
        return _put(s.agents, sample)
    if kind == "job":
        job_id, done = sample
        s.jobs[job_id] = done
    else:
        _put(s.fills, sample)
    return at  # a job or a fill counts in the window of its own time only


def _advance(s: UtilisationState, settings: UtilisationSettings, *, changed_from: int, passed: int) -> list[dict[str, Any]]:
    """Emit windows the watermark passed (if changed) and finalise those past lateness.

    Only windows that can have changed are recomputed: those ending after `changed_from`
    (the earliest time the new sample affects) or after `passed` (the watermark before
    this step: newly passed or newly final). The rest would give the same record, which
    `_emit` would not send again anyway; recomputing them made every record cost a
    scan of the whole open hour."""
    out: list[dict[str, Any]] = []
    lateness = settings.lateness_ms
    if s.open_from is None:
        return out
    passed_hour = s.watermark - s.watermark % HOUR_MS  # the end of the last hour passed
    if passed_hour <= changed_from and passed_hour <= passed and s.open_from + HOUR_MS + lateness > s.watermark:
        # Within an hour nothing below can happen (no window passed, changed or final):
        # the case of nearly every heartbeat, so it does not pay for the loops.
        return out
    hour = s.open_from
    finalised: set[str] = set()  # days that took a final hour in this step
    while hour + HOUR_MS <= s.watermark:
        end = hour + HOUR_MS
        final = end + lateness <= s.watermark
        if final or end > changed_from or end > passed:
            totals = window_totals(s, hour, end, settings)
            _emit(s, f"H{hour}", hour, end, totals, out)
            if final:  # finals come first, from open_from on
                key = str(hour - hour % DAY_MS)
                s.days[key] = s.days[key].merged(totals) if key in s.days else totals
                finalised.add(key)
                s.open_from = end
                _prune(s, end)
                s.emitted.pop(f"H{hour}", None)
        hour = end
    open_from = s.open_from
    days = set(s.days)  # days with a final hour, and those passed with none final yet
    day = open_from - open_from % DAY_MS
    while day + DAY_MS <= s.watermark:
        days.add(str(day))
        day += DAY_MS
    for key in sorted(days, key=int):
        day = int(key)
        end = day + DAY_MS
        if end > s.watermark or (end <= changed_from and end <= passed and key not in finalised):
            continue
        totals = s.days.get(key) or WindowTotals()
        h = max(open_from, day)
        while h < end:  # hours of the day that are not final yet
            totals = totals.merged(window_totals(s, h, h + HOUR_MS, settings))
            h += HOUR_MS
        # Hours before the printer was first seen have no window: unreachable too.
        missing = (end - day) / 1000.0 - sum(totals.seconds.values())
        if missing > 0.0005:
            totals = copied(totals, seconds={**totals.seconds, "unreachable": totals.seconds["unreachable"] + missing})
        _emit(s, f"D{day}", day, end, totals, out)
        if open_from >= end:  # every hour final: so is the day
            s.days.pop(key, None)
            s.emitted.pop(f"D{day}", None)
    return out


def _emit(s: UtilisationState, key: str, start: int, end: int, totals: WindowTotals, out: list[dict[str, Any]]) -> None:
    record = to_record(s.site_id, s.device_id, start, end, totals)
    if s.emitted.get(key) != record["record_id"]:
        s.emitted[key] = record["record_id"]
        out.append(record)


def _prune(s: UtilisationState, cut: int) -> None:
    """Drop samples of final hours, keeping the last one before `cut` (the new
    `open_from`) as the baseline of the next hour (its state and its counter readings)."""

    def keep(samples: list[Any]) -> list[Any]:
        i = next((k for k, smp in enumerate(samples) if smp[0] >= cut), len(samples))
        return samples[max(0, i - 1):]

    s.heartbeats, s.materials, s.agents = keep(s.heartbeats), keep(s.materials), keep(s.agents)
    s.fills = [f for f in s.fills if f[0] >= cut]
    s.jobs = {j: v for j, v in s.jobs.items() if v[0] >= cut}
