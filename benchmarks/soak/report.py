"""The soak's Markdown report: the verdict, a table over time (a row per minute), the
processes' CPU and memory, the lag per stage, the data check and the latencies."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from benchmarks.soak.checks import DataCheck
from benchmarks.soak.options import SoakOptions
from benchmarks.soak.sampler import SINK, SPOOL, WORKER, Sample, p50_p99
from benchmarks.soak.verdict import Verdict

EARLY_RSS_S = 300.0  # memory "after 5 minutes", against the end of the run


@dataclass(frozen=True)
class SoakResult:
    options: SoakOptions
    machine: str
    samples: tuple[Sample, ...]
    warmup_s: float  # the samples before this are the warm-up
    verdict: Verdict
    data: DataCheck | None  # None: the run failed before the check
    alert_latencies: tuple[float, ...]
    alerts_injected: int
    heartbeat_latency_s: tuple[float, float] | None  # p50, p99 of the last half's rows
    seconds: float

    @property
    def ok(self) -> bool:
        return self.verdict.bounded and self.data is not None and self.data.ok


def _fmt_pair(pair: tuple[float, float] | None) -> str:
    return f"{pair[0]:.1f} / {pair[1]:.1f}" if pair else "-"


def minutes(samples: Sequence[Sample]) -> list[tuple[int, list[Sample]]]:
    """The samples grouped by the minute they fall in (minute 1: 0-60 s)."""
    groups: dict[int, list[Sample]] = {}
    for s in samples:
        groups.setdefault(int(s.t // 60) + 1, []).append(s)
    return sorted(groups.items())


def _rss_at(samples: Sequence[Sample], t: float) -> dict[str, float]:
    best = min(samples, key=lambda s: abs(s.t - t))
    return best.rss_mib


def over_time(samples: Sequence[Sample], warmup_s: float) -> list[str]:
    lines = ["| minute (w: warm-up) | polled/s | into Kafka/s | stored/s | spool lag | worker lag | sink lag | "
             "heartbeat -> row p50 / p99 s | alert p50 / p99 s | busiest process (CPU % of a core) | machine busy |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|"]
    for minute, group in minutes(samples):
        def mean(f: str) -> float:
            return statistics.fmean([getattr(s, f) for s in group])

        def lag(stage: str) -> float:
            return max(s.lag.get(stage, 0.0) for s in group)

        hb = [s.heartbeat_latency_s for s in group if s.heartbeat_latency_s]
        al = [s.alert_latency_s for s in group if s.alert_latency_s]
        cpu = {n: statistics.fmean([s.cpu_pct.get(n, 0.0) for s in group]) for n in group[-1].cpu_pct}
        busiest = max(cpu.items(), key=lambda kv: kv[1]) if cpu else ("-", 0.0)
        label = f"w{minute}" if group[-1].t <= warmup_s else f"{minute}"
        lines.append(
            f"| {label} | {mean('polled_per_s'):,.0f} | {mean('in_per_s'):,.0f} | {mean('stored_per_s'):,.0f} | "
            f"{lag(SPOOL):,.0f} | {lag(WORKER):,.0f} | {lag(SINK):,.0f} | "
            f"{_fmt_pair((max(h[0] for h in hb), max(h[1] for h in hb)) if hb else None)} | "
            f"{_fmt_pair((max(a[0] for a in al), max(a[1] for a in al)) if al else None)} | "
            f"{busiest[0]} ({busiest[1]:.0f}) | {mean('machine_busy'):.0%} |")
    return lines


def processes(samples: Sequence[Sample], verdict: Verdict, warmup_s: float) -> list[str]:
    """CPU over the last half; RSS 5 minutes into the measured time (half-way in a run
    shorter than 10 minutes) against the end."""
    end = samples[-1]
    measured = end.t - warmup_s
    early_t = warmup_s + (EARLY_RSS_S if measured >= 2 * EARLY_RSS_S else measured / 2)
    early = _rss_at(samples, early_t)
    peak = {n: max(s.rss_mib.get(n, 0.0) for s in samples) for n in end.rss_mib}
    lines = [f"| process | CPU % of a core (mean, last half) | RSS MiB at {(early_t - warmup_s) / 60:.1f} min | "
             f"RSS MiB at the end ({measured / 60:.1f} min) | growth | peak RSS MiB |",
             "|---|---:|---:|---:|---:|---:|"]
    for name in sorted(end.rss_mib, key=lambda n: -verdict.cpu_pct.get(n, 0.0)):
        a, b = early.get(name), end.rss_mib[name]
        growth = f"{(b - a) / a:+.0%}" if a else "-"
        lines.append(f"| {name} | {verdict.cpu_pct.get(name, 0.0):.0f} | {a or 0:.0f} | {b:.0f} | {growth} | "
                     f"{peak[name]:.0f} |")
    return lines


def format_report(r: SoakResult) -> str:
    o, v = r.options, r.verdict
    lines = [
        f"## soak: {o.printers:,} printers ({o.sites} sites x {o.printers_per_site:,}), {o.minutes:g} min",
        "",
        f"Machine: {r.machine}. Default cadence (a heartbeat every 10 s per printer), "
        f"{o.simulators} simulator process(es), {o.errors_per_min:g} printhead errors injected per minute; "
        f"a sample every {o.sample_every_s:g} s; warm-up {r.warmup_s:.0f} s (until the heartbeats came at the "
        f"cadence with small lags; minutes count from its end); {r.seconds / 60:.1f} min in all with the start, the drain and the checks.",
        "",
        f"**Verdict: {v.limit}.** Heartbeats polled: {v.polled_share:.0%} of the cadence's; "
        f"{'exactly once: yes' if r.data and r.data.exactly_once else 'exactly once: NO'}.",
        "",
        "### Over time (a row per minute: rates are means, lags and latencies the minute's largest sample)",
        "",
        *over_time(r.samples, r.warmup_s),
        "",
        "### Processes",
        "",
        *processes(r.samples, v, r.warmup_s),
        "",
        "CPU by role (% of a core, last half): " + ", ".join(
            f"{role} {pct:.0f}" for role, pct in sorted(v.by_role.items(), key=lambda kv: -kv[1])) + ".",
        "",
        "### Lag over the last half",
        "",
        "| stage | growth, records/s | share of the input rate | max lag, records | max lag, s of input | bounded |",
        "|---|---:|---:|---:|---:|---|",
        *(f"| {st.stage} | {st.growth_per_s:+,.1f} | {st.growth_share:+.2%} | {st.max_lag:,.0f} | "
          f"{st.max_lag_s:.1f} | {'yes' if st.bounded(o.bounds) else 'NO'} |" for st in v.stages),
        "",
        f"Bounded means: growth below {o.bounds.max_growth:.0%} of the input rate, lag never above "
        f"{o.bounds.max_lag_s:g} s of input, and at least {o.bounds.min_polled:.0%} of the heartbeats polled.",
        "",
        "### Latency",
        "",
        "| path | samples | p50 | p99 | max |",
        "|---|---:|---:|---:|---:|",
    ]
    al = p50_p99(r.alert_latencies)
    if al:
        lines.append(f"| printhead error at the printer -> alert on `alerts` | {len(r.alert_latencies)} of "
                     f"{r.alerts_injected} | {al[0]:.1f} s | {al[1]:.1f} s | {max(r.alert_latencies):.1f} s |")
    else:
        lines.append(f"| printhead error at the printer -> alert on `alerts` | 0 of {r.alerts_injected} | - | - | - |")
    if r.heartbeat_latency_s:
        lines.append(f"| heartbeat at the printer -> row in ClickHouse (last half, +-0.5 s) | all | "
                     f"{r.heartbeat_latency_s[0]:.1f} s | {r.heartbeat_latency_s[1]:.1f} s | |")
    if r.data is not None:
        d = r.data
        lines += ["", "### Data", "",
                  "| kind | Kafka messages | Kafka ids | ClickHouse rows | ClickHouse ids | exactly once |",
                  "|---|---:|---:|---:|---:|---|"]
        for kind, (m, ids) in d.kafka.items():
            c, u = d.clickhouse.get(kind, (0, 0))
            lines.append(f"| {kind} | {m:,} | {ids:,} | {c:,} | {u:,} | {'yes' if len({m, ids, c, u}) == 1 else 'NO'} |")
        lines += ["", f"Printers in the worker's fleet state: {d.printers_with_state:,} of {d.printers:,}; "
                      "records dead-lettered: " + ", ".join(f"{k} {v}" for k, v in d.dead_lettered.items())
                  + f"; of them missing from ClickHouse: {d.lost}."]
    lines += ["", f"Result: {'PASS' if r.ok else 'FAIL'}"]
    return "\n".join(lines)


def format_steps(results: Sequence[SoakResult]) -> str:
    lines = ["## soak step search", "",
             "| printers | minutes | into Kafka/s | stored/s | heartbeats polled | worst lag (s of input) | "
             "busiest process | machine busy | exactly once | verdict |",
             "|---:|---:|---:|---:|---:|---:|---|---:|---|---|"]
    for r in results:
        v = r.verdict
        half = [s for s in r.samples if s.t >= r.samples[-1].t / 2] if r.samples else []
        rate_in = statistics.fmean([s.in_per_s for s in half]) if half else 0.0
        rate_out = statistics.fmean([s.stored_per_s for s in half]) if half else 0.0
        worst = max((st.max_lag_s for st in v.stages), default=0.0)
        name, pct = v.busiest
        lines.append(f"| {r.options.printers:,} | {r.options.minutes:g} | {rate_in:,.0f} | {rate_out:,.0f} | "
                     f"{v.polled_share:.0%} | {worst:.1f} | {name} ({pct:.0f} %) | {v.machine_busy:.0%} | "
                     f"{'yes' if r.data and r.data.exactly_once else 'NO'} | "
                     f"{'bounded' if v.bounded else 'NOT bounded'} |")
    bounded = [r.options.printers for r in results if r.verdict.bounded]
    lines += ["", f"Largest fleet with bounded lag: {max(bounded):,} printers." if bounded
              else "No fleet size stayed bounded."]
    return "\n".join(lines)
