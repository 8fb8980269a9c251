"""Is the lag bounded, and what limits: pure functions of the samples.

Judged over the last half of the measured minutes (after the warm-up, in which the
collectors read every printer's history; the first half may still hold its tail):

- each stage's lag (records in the collectors' spools, the worker's and the sink's
  consumer lag) grows by less than `Bounds.max_growth` of the input rate: the slope of a
  least-squares line through its floor (the smallest sample of each minute), in
  records/s, over the gateway's records/s. The floor, because the cadence polls
  counters, consumables and logs of every printer at once every 5 minutes: a burst that
  drains within the minute lifts a minute's peak, not its floor, and a short run that
  ends on one would otherwise read as growth; lag that creeps lifts the floor too;
- no stage ever holds more than `Bounds.max_lag_s` seconds of input;
- the collectors poll at least `Bounds.min_polled` of the heartbeats the cadence asks
  for (a collector or simulator that cannot keep up reads less, and no lag shows it).

The process that limits: of the stages that fail, the one whose lag grows fastest (or a
polling shortfall), then the busiest process of that stage (by CPU). When all is
bounded, the busiest process is where the next larger fleet will meet its limit.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from benchmarks.soak.options import Bounds
from benchmarks.soak.sampler import SINK, SPOOL, WORKER, Sample
from producers.collector.config import Cadence

POLLING = "collector polling"
# The processes that work for each stage: when it falls behind, the busiest is the limit.
STAGE_PROCESSES = {
    SPOOL: ("collector-", "gateway", "kafka"),
    WORKER: ("worker", "kafka"),
    SINK: ("sink", "clickhouse"),
    POLLING: ("collector-", "simulator-"),
}


@dataclass(frozen=True)
class StageVerdict:
    stage: str
    growth_per_s: float  # least-squares slope of the lag's floor per minute, last half, records/s
    max_lag: float  # records, last half
    input_per_s: float

    @property
    def growth_share(self) -> float:
        return self.growth_per_s / self.input_per_s if self.input_per_s > 0 else float("inf")

    @property
    def max_lag_s(self) -> float:
        return self.max_lag / self.input_per_s if self.input_per_s > 0 else float("inf")

    def bounded(self, bounds: Bounds) -> bool:
        return self.growth_share < bounds.max_growth and self.max_lag_s <= bounds.max_lag_s


@dataclass(frozen=True)
class Verdict:
    bounded: bool
    stages: tuple[StageVerdict, ...]
    polled_share: float  # heartbeats polled / heartbeats the cadence asks for, last half
    cpu_pct: dict[str, float]  # process -> mean % of one core, last half
    machine_busy: float  # mean share of all cores busy, last half
    limit: str  # the process that limits, and why, in a sentence

    @property
    def by_role(self) -> dict[str, float]:
        """CPU per role: the collectors together, the simulators together, the rest each."""
        return role_totals(self.cpu_pct)

    @property
    def busiest(self) -> tuple[str, float]:
        return max(self.cpu_pct.items(), key=lambda kv: kv[1]) if self.cpu_pct else ("?", 0.0)


def role_totals(cpu: dict[str, float]) -> dict[str, float]:
    out: dict[str, float] = {}
    for name, pct in cpu.items():
        role = "collectors" if name.startswith("collector-") else "simulators" if name.startswith("simulator-") else name
        out[role] = out.get(role, 0.0) + pct
    return out


def slope(ts: Sequence[float], ys: Sequence[float]) -> float:
    """Least-squares slope of ys over ts (0 for fewer than two points)."""
    if len(ts) < 2:
        return 0.0
    mt, my = statistics.fmean(ts), statistics.fmean(ys)
    var = sum((t - mt) ** 2 for t in ts)
    return sum((t - mt) * (y - my) for t, y in zip(ts, ys)) / var if var else 0.0


def floor_per_minute(samples: Sequence[Sample], stage: str) -> tuple[list[float], list[float]]:
    """(times, lags): each minute's smallest lag at that minute's mean time, minutes
    counted back from the last sample, a first minute that spans under 30 s left out
    (its floor would be one or two samples); every sample when fewer than two minutes
    are left."""
    if not samples:
        return [], []
    last = samples[-1].t
    minutes: dict[int, list[Sample]] = {}
    for s in samples:
        minutes.setdefault(int((last - s.t) // 60), []).append(s)
    groups = [g for _, g in sorted(minutes.items(), reverse=True) if g[-1].t - g[0].t >= 30.0]
    if len(groups) < 2:
        return [s.t for s in samples], [s.lag.get(stage, 0.0) for s in samples]
    return ([statistics.fmean([s.t for s in g]) for g in groups],
            [min(s.lag.get(stage, 0.0) for s in g) for g in groups])


def last_half(samples: Sequence[Sample], since: float = 0.0) -> list[Sample]:
    """The samples of the last half of the time from `since` (the warm-up's end) on."""
    if not samples:
        return []
    middle = since + (samples[-1].t - since) / 2
    return [s for s in samples if s.t >= middle]


def warmed_up(sample: Sample, printers: int, bounds: Bounds, cadence: Cadence = Cadence()) -> bool:
    """The heartbeats come at the cadence and no stage holds more than the bound's
    seconds of input: the printers' history is read and stored."""
    wanted = printers / cadence.heartbeat_s
    return (sample.heartbeats_polled_per_s >= bounds.min_polled * wanted and sample.in_per_s > 0
            and all(lag <= bounds.max_lag_s * sample.in_per_s for lag in sample.lag.values()))


def mean_cpu(samples: Sequence[Sample]) -> dict[str, float]:
    names = {n for s in samples for n in s.cpu_pct}
    return {n: statistics.fmean([s.cpu_pct[n] for s in samples if n in s.cpu_pct]) for n in sorted(names)}


def judge(samples: Sequence[Sample], printers: int, bounds: Bounds, cadence: Cadence = Cadence(),
          since: float = 0.0) -> Verdict:
    half = last_half(samples, since)
    input_per_s = statistics.fmean([s.in_per_s for s in half]) if half else 0.0
    stages = tuple(
        StageVerdict(stage, slope(*floor_per_minute(half, stage)),
                     max((s.lag.get(stage, 0.0) for s in half), default=0.0), input_per_s)
        for stage in (SPOOL, WORKER, SINK))
    wanted = printers / cadence.heartbeat_s
    polled = statistics.fmean([s.heartbeats_polled_per_s for s in half]) / wanted if half else 0.0
    cpu = mean_cpu(half)
    busy = statistics.fmean([s.machine_busy for s in half]) if half else 0.0
    failing = [st for st in stages if not st.bounded(bounds)]
    short = polled < bounds.min_polled
    bounded = bool(half) and input_per_s > 0 and not failing and not short
    return Verdict(bounded, stages, polled, cpu, busy, _limit(bounded, failing, short, polled, cpu, busy, bounds))


def _busiest(cpu: dict[str, float], prefixes: Sequence[str]) -> tuple[str, float]:
    mine = {n: c for n, c in cpu.items() if any(n.startswith(p) for p in prefixes)}
    return max(mine.items(), key=lambda kv: kv[1]) if mine else ("?", 0.0)


SATURATED = 0.9  # the machine's cores this busy (every process on it): the CPU is the limit
FULL_CORE = 80.0  # % of a core: a process this busy is the limit on its own


def _limit(bounded: bool, failing: Sequence[StageVerdict], short: bool, polled: float, cpu: dict[str, float],
           busy: float, bounds: Bounds) -> str:
    machine = f"; the machine's cores were {busy:.0%} busy" if cpu else ""
    if cpu and busy >= SATURATED and max(cpu.values()) < FULL_CORE:
        role, pct = max(role_totals(cpu).items(), key=lambda kv: kv[1])
        machine += (f" and no process was near a full core: the machine's CPU is the limit; the largest share "
                    f"is {role}, {pct:.0f} % of a core in all")
    if bounded:
        name, pct = _busiest(cpu, ("",))
        return f"bounded; the busiest process is {name} at {pct:.0f} % of a core{machine}"
    if failing:
        worst = max(failing, key=lambda st: (st.growth_share, st.max_lag_s))
        name, pct = _busiest(cpu, STAGE_PROCESSES[worst.stage])
        why = (f"{worst.stage} lag grows by {worst.growth_share:.1%} of the input rate"
               if worst.growth_share >= bounds.max_growth else
               f"{worst.stage} lag reaches {worst.max_lag_s:.0f} s of input")
        return f"NOT bounded: {why}; its busiest process is {name} at {pct:.0f} % of a core{machine}"
    if short:
        name, pct = _busiest(cpu, STAGE_PROCESSES[POLLING])
        return (f"NOT bounded: the collectors poll {polled:.0%} of the heartbeats the cadence asks for; "
                f"the busiest of collectors and simulators is {name} at {pct:.0f} % of a core{machine}")
    return "NOT bounded: nothing reached Kafka in the last half"
