"""Pure arithmetic of utilisation windows: which KPI bucket a printer state counts as,
how much time each bucket got in a window, and counter deltas.

Called by `streams.utilisation` (and by tests computing ground truth the long way).
Everything works on **sorted** samples and is a function of the sample *set*, so
arrival order, redeliveries and late records cannot change a result.

Time attribution: a heartbeat's state holds from its event time until the next
heartbeat, but for at most `max_hold_ms` (the offline threshold); time beyond that, and
window time before the first heartbeat ever seen, counts as `unreachable`.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

from streams.plain import PlainState

BUCKETS: Final = ("printing", "warming", "cooling", "idle", "error", "unreachable")
_ACTIVITY_BUCKET: Final = {"PRINTING": "printing", "WARMING_UP": "warming", "COOLING_DOWN": "cooling"}

# (event_time, bucket, current_job_id, layers_done)
HeartbeatSample = tuple[int, str, str, int]
# (event_time, counter reading)
CounterSample = tuple[int, float]


def bucket_of(status: str, activity: str) -> str:
    """The utilisation bucket of a heartbeat. Maintenance, calibration, unloading, sleep
    and service mode count as idle: the schema has no bucket for them, and none of them
    is productive printing time."""
    if status == "UNREACHABLE":
        return "unreachable"
    if status == "ERROR" or activity == "PAUSED":
        return "error"
    return _ACTIVITY_BUCKET.get(activity, "idle")


@dataclass(slots=True)
class WindowTotals(PlainState):
    """What one printer (or a sum of windows) did in a window."""

    seconds: dict[str, float] = field(default_factory=lambda: dict.fromkeys(BUCKETS, 0.0))
    jobs_completed: int = 0
    layers: int = 0
    material_kg: float = 0.0
    agent_cm3: float = 0.0  # agents of all types; utilisation v2 agent_consumed_cm3
    density_sum: float = 0.0
    density_n: int = 0
    fills: dict[str, tuple[float, float]] = field(default_factory=dict)  # fill -> (kg, recycled %)

    def merged(self, other: WindowTotals) -> WindowTotals:
        """The sum of two windows (a new object). A build-unit fill seen in both counts once."""
        return WindowTotals(
            seconds={b: self.seconds.get(b, 0.0) + other.seconds.get(b, 0.0) for b in BUCKETS},
            jobs_completed=self.jobs_completed + other.jobs_completed,
            layers=self.layers + other.layers,
            material_kg=self.material_kg + other.material_kg,
            agent_cm3=self.agent_cm3 + other.agent_cm3,
            density_sum=self.density_sum + other.density_sum,
            density_n=self.density_n + other.density_n,
            fills={**self.fills, **other.fills},
        )

    @property
    def packing_density_pct(self) -> float | None:
        return self.density_sum / self.density_n if self.density_n else None

    @property
    def recycled_pct(self) -> float | None:
        """Recycled share of the powder printed with, weighted by each fill's quantity."""
        weight = sum(kg for kg, _ in self.fills.values())
        if weight <= 0:
            return None
        return sum(kg * pct for kg, pct in self.fills.values()) / weight


def heartbeat_seconds(samples: Sequence[HeartbeatSample], start: int, end: int, max_hold_ms: int) -> dict[str, float]:
    """Seconds per bucket in [start, end) from heartbeat samples sorted by time; the last
    sample before `start` (if given) says what the window began with."""
    out = dict.fromkeys(BUCKETS, 0.0)
    i = bisect_left(samples, (start,))
    if i > 0:
        i -= 1  # the anchor: the state the window starts in
    first = samples[i][0] if i < len(samples) else end
    if first > start:
        out["unreachable"] += (min(first, end) - start) / 1000.0
    for j in range(i, len(samples)):
        t, bucket = samples[j][0], samples[j][1]
        if t >= end:
            break
        nxt = samples[j + 1][0] if j + 1 < len(samples) else end
        seg_start, seg_end = max(t, start), min(nxt, end)
        if seg_end <= seg_start:
            continue
        held_end = min(seg_end, max(seg_start, t + max_hold_ms))
        out[bucket] += (held_end - seg_start) / 1000.0
        out["unreachable"] += (seg_end - held_end) / 1000.0
    return out


def layer_deltas(samples: Sequence[HeartbeatSample]) -> list[tuple[int, int]]:
    """(event_time, layers printed since the previous sample) for each sample after the
    first. A new job id counts its layers from 0; the very first sample has no baseline."""
    out = []
    for prev, cur in zip(samples, samples[1:]):
        if not cur[2]:
            continue
        base = prev[3] if prev[2] == cur[2] else 0
        if cur[3] > base:
            out.append((cur[0], cur[3] - base))
    return out


def counter_deltas(points: Sequence[tuple[int, float]], max_per_h: float | None = None) -> list[tuple[int, int, float]]:
    """(from, to, increase) of a lifetime counter between consecutive sorted readings. A
    reading below the previous one is a counter reset (service, replaced board): the
    counter restarted from 0, so the increase is the new reading itself. An increase
    faster than `max_per_h` cannot be consumption (a board swapped for one with another
    history, a printer re-enrolled under the same id): it counts as 0, not as a year of
    material in one window."""
    out = []
    for (t0, v0), (t1, v1) in zip(points, points[1:]):
        d = v1 - v0 if v1 >= v0 else v1
        out.append((t0, t1, _plausible(d, t0, t1, max_per_h)))
    return out


def _plausible(increase: float, t0: int, t1: int, max_per_h: float | None) -> float:
    if max_per_h is None or increase <= max_per_h * max(t1 - t0, 60_000) / 3_600_000:
        return increase
    return 0.0


def multi_counter_deltas(points: Sequence[tuple[int, Mapping[str, float]]], max_per_h: float | None = None) -> list[tuple[int, int, float]]:
    """`counter_deltas` per key (e.g. agent type), summed per step; a key that appears or
    disappears between readings contributes nothing for that step."""
    out = []
    for (t0, before), (t1, now) in zip(points, points[1:]):
        total = 0.0
        for key, value in now.items():
            if key in before:
                prev = before[key]
                total += _plausible(value - prev if value >= prev else value, t0, t1, max_per_h)
        out.append((t0, t1, total))
    return out


def spread_in(deltas: Sequence[tuple[int, int, float]], start: int, end: int) -> float:
    """The part of each increase that falls in [start, end), assuming the counter rose
    evenly between its readings; so windows split an increase instead of giving it all
    to the window of the later reading, and readings at window bounds make it exact."""
    total = 0.0
    for t0, t1, d in deltas:
        overlap = min(t1, end) - max(t0, start)
        if overlap > 0 and t1 > t0:
            total += d * overlap / (t1 - t0)
    return total
