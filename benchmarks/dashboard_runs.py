"""The runs of `printfleet bench dashboard`: their order, figures, medians and table.

Pure functions over what `benchmarks.dashboard` measured, so that unit tests reach the
verdict (the median of the runs, each run shown, no silent shortfall) without servers.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from statistics import median

MIB = 2**20
LABELS = {False: "fleet.state record produced -> page", True: "heartbeat produced -> stream worker -> page"}


def schedule(runs: int, variants: Sequence[bool]) -> list[tuple[int, bool]]:
    """(run number from 1, through_worker) in the order to measure them: with two
    variants, each round has both and the second of one round goes first in the next,
    so neither always has the fresher machine."""
    order: list[tuple[int, bool]] = []
    for number in range(1, runs + 1):
        round_ = variants if number % 2 else list(reversed(variants))
        order += [(number, through_worker) for through_worker in round_]
    return order


def percentile(values: Sequence[float], q: float) -> float:
    """The nearest-rank percentile `q` (0-100); NaN without values."""
    xs = sorted(values)
    return xs[min(len(xs) - 1, int(round(q / 100 * (len(xs) - 1))))] if xs else float("nan")


@dataclass
class Reads:
    """What one reader (a page, or the baseline consumer) read of the live part: each
    (printer, heartbeat) once, at its first read. The same record shown again (the
    dashboard re-sends a printer when an alert opens or an offline check runs; the worker
    re-emits its state with a new alert count) is not a heartbeat reaching the reader."""

    latencies: list[float] = field(default_factory=list)  # ms
    _seen: set[tuple[str, int]] = field(default_factory=set)

    def read(self, device: str, heard_ms: int, now_ms: int, since_ms: int) -> None:
        """A record of `device` whose heartbeat was at `heard_ms`, read at `now_ms`;
        `since_ms` is the start of the live part (0 before it: nothing counts)."""
        if since_ms and heard_ms >= since_ms and (device, heard_ms) not in self._seen:
            self._seen.add((device, heard_ms))
            self.latencies.append(now_ms - heard_ms)


@dataclass(frozen=True)
class Figures:
    """What one run (or the median of runs) shows: latencies in ms, memory in bytes, CPU
    in % of one core. `ratio` is the page p50 over the baseline p50 of the same run."""

    page_p50: float
    page_p99: float
    baseline_p50: float
    baseline_p99: float
    ratio: float
    rss_start: float
    rss_loaded: float
    rss_end: float
    rss_peak: float
    cpu_pct: float


@dataclass(frozen=True)
class Memory:
    """The dashboard process's RSS: at start (no printer), with the fleet loaded and no
    page, at the end of the live part, and its peak; bytes."""

    start: int
    loaded: int
    end: int
    peak: int


@dataclass(frozen=True)
class Run:
    number: int
    through_worker: bool
    sent: int  # records produced in the live part: each page and the baseline should read each once
    page_counts: tuple[int, ...]  # live events each page read
    baseline_count: int
    figures: Figures

    @property
    def expected(self) -> int:
        return self.sent * len(self.page_counts)

    @property
    def complete(self) -> bool:
        """Every page and the baseline read every record of the live part."""
        return min(self.page_counts, default=0) >= self.sent and self.baseline_count >= self.sent


def summarise(number: int, through_worker: bool, sent: int, pages: Sequence[Sequence[float]],
              baseline: Sequence[float], memory: Memory, cpu_pct: float) -> Run:
    """One run from its latencies (ms; one list per page, one for the baseline consumer)."""
    everything = [ms for page in pages for ms in page]
    page_p50, baseline_p50 = percentile(everything, 50), percentile(baseline, 50)
    figures = Figures(page_p50, percentile(everything, 99), baseline_p50, percentile(baseline, 99),
                      page_p50 / max(1.0, baseline_p50), memory.start, memory.loaded, memory.end, memory.peak,
                      cpu_pct)
    return Run(number, through_worker, sent, tuple(len(page) for page in pages), len(baseline), figures)


def median_figures(runs: Sequence[Run]) -> Figures:
    """Each figure's median over the runs (the ratio too: the median of each run's own
    ratio, as every run has its baseline beside it)."""
    return Figures(*(median(getattr(run.figures, f.name) for run in runs) for f in dataclasses.fields(Figures)))


def _row(name: str, received: str, baseline: str, f: Figures) -> str:
    return (f"| {name} | {received} | {baseline} | {f.page_p50:,.0f} ms | {f.page_p99:,.0f} ms | "
            f"{f.baseline_p50:,.0f} ms | {f.baseline_p99:,.0f} ms | {f.ratio:.2f} | {f.rss_start / MIB:.1f} | "
            f"{f.rss_loaded / MIB:.1f} | {f.rss_end / MIB:.1f} | {f.rss_peak / MIB:.1f} | {f.cpu_pct:.1f} % |")


def table(through_worker: bool, runs: Sequence[Run], first: dict[int, bool]) -> str:
    """A variant's runs, each shown, then their medians; `first` says, per run number,
    whether this variant went first in its round (only with two variants)."""
    ours = [run for run in runs if run.through_worker == through_worker]
    lines = [f"## {LABELS[through_worker]}", "",
             "| run | page events read / expected | baseline read / expected | page p50 | page p99 | baseline p50 | "
             "baseline p99 | page p50 / baseline p50 | RSS start MiB | RSS loaded MiB | RSS end MiB | "
             "peak RSS MiB | CPU (one core) |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for run in ours:
        name = f"{run.number}" + ("" if run.number not in first else " (first)" if first[run.number] else " (second)")
        short = "" if run.complete else " SHORT"
        lines.append(_row(name, f"{sum(run.page_counts):,} / {run.expected:,}{short}",
                          f"{run.baseline_count:,} / {run.sent:,}", run.figures))
    if ours:
        lines.append(_row(f"median of {len(ours)}", "", "", median_figures(ours)))
    return "\n".join(lines)


def verdict(runs: Sequence[Run]) -> str:
    """The closing line: whether every run read every record, and which did not."""
    short = [run for run in runs if not run.complete]
    if not short:
        return f"Complete: in each of the {len(runs)} runs every page and the baseline read every record."
    return "SHORT: " + "; ".join(
        f"run {run.number} ({LABELS[run.through_worker]}): the pages read {sum(run.page_counts):,} of "
        f"{run.expected:,} (fewest on one page {min(run.page_counts, default=0):,} of {run.sent:,}), "
        f"the baseline {run.baseline_count:,} of {run.sent:,}" for run in short)
