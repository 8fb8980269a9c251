"""The soak's options: `printfleet bench soak --help`."""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

MIN_SITES = 10  # each its own collector: a fleet is many sites, not one big one


@dataclass(frozen=True)
class Bounds:
    """When lag counts as bounded, judged over the last half of a run (docs/soak.md):
    each stage's lag grows by less than `max_growth` of the input rate (a least-squares
    slope), never holds more than `max_lag_s` seconds of input, and the collectors poll
    at least `min_polled` of the heartbeats the cadence asks for."""

    max_growth: float = 0.02
    max_lag_s: float = 30.0
    min_polled: float = 0.9


@dataclass(frozen=True)
class SoakOptions:
    sites: int = 10
    printers_per_site: int = 1000
    minutes: float = 30.0
    sample_every_s: float = 10.0
    errors_per_min: float = 6.0  # printhead errors injected at random printers
    # 0: one simulator process per 500 printers, at most one per site.
    simulator_processes: int = 0
    # Before the measured minutes: until the printers' history (hours of events, job
    # snapshots and logs each holds when a collector first polls it) is read and stored
    # and the heartbeats come at the cadence, at most this long.
    warmup_max_s: float = 300.0
    history: bool = False  # collectors read every printer's history first, as a new site
    seed: int = 1
    drain_timeout_s: float = 600.0
    ready_timeout_s: float = 300.0
    bounds: Bounds = Bounds()

    @property
    def printers(self) -> int:
        return self.sites * self.printers_per_site

    @property
    def simulators(self) -> int:
        wanted = self.simulator_processes or math.ceil(self.printers / 500)
        return max(1, min(self.sites, wanted))

    def __post_init__(self) -> None:
        if self.sites < 1 or self.printers_per_site < 1:
            raise ValueError("sites and printers per site must be at least 1")
        if self.printers_per_site > 2000:
            raise ValueError("at most 2,000 printers per site (one simulator's limit)")
        if not self.minutes > 0 or not self.sample_every_s > 0:
            raise ValueError("minutes and the sample period must be > 0")


@dataclass(frozen=True)
class Command:
    options: SoakOptions
    steps: tuple[int, ...]  # fleet sizes of a step search; empty: one run
    step_minutes: float
    out: Path


def fleet_split(printers: int, sites: int) -> int:
    """Printers per site for a fleet of about `printers` over `sites` sites (rounded up)."""
    return max(1, math.ceil(printers / sites))


def parse(argv: Sequence[str], description: str) -> Command:
    parser = argparse.ArgumentParser(prog="printfleet bench soak", description=description,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sites", type=int, default=10, help=f"sites, each with its own collector (default 10, "
                                                              f"at least {MIN_SITES})")
    parser.add_argument("--printers-per-site", type=int, default=1000, help="default 1,000 (at most 2,000)")
    parser.add_argument("--minutes", type=float, default=30.0, help="length of the run (default 30)")
    parser.add_argument("--step", default="", metavar="N,N,...",
                        help="instead of one run: fleet sizes to step through, smallest first, each for "
                             "--step-minutes, to find the largest fleet with bounded lag (stops at the first "
                             "that is not)")
    parser.add_argument("--step-minutes", type=float, default=4.0, help="minutes per step (default 4)")
    parser.add_argument("--errors-per-min", type=float, default=6.0,
                        help="printhead errors injected at random printers per minute (default 6)")
    parser.add_argument("--simulator-processes", type=int, default=0,
                        help="simulator processes (default: one per 500 printers, at most one per site)")
    parser.add_argument("--history", action="store_true",
                        help="the collectors start by reading every printer's history (hours of events, job "
                             "snapshots and logs), as at a new site; default: from now on, as at a running site")
    parser.add_argument("--warmup-max-s", type=float, default=300.0,
                        help="longest warm-up before the measured minutes (the printers' history read, "
                             "the heartbeats at the cadence); default 300")
    parser.add_argument("--sample-every-s", type=float, default=10.0, help="default 10")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("soak-out"),
                        help="folder for the table (.md) and the plot (.png) (default ./soak-out)")
    args = parser.parse_args(argv)
    if args.sites < MIN_SITES:
        parser.error(f"--sites must be at least {MIN_SITES}")
    try:
        steps = tuple(sorted(int(s) for s in args.step.split(",") if s.strip()))
    except ValueError:
        parser.error(f"--step wants fleet sizes like 1000,2000,4000, not {args.step!r}")
    if any(s < args.sites for s in steps):
        parser.error("every --step fleet needs at least one printer per site")
    try:
        options = SoakOptions(sites=args.sites, printers_per_site=args.printers_per_site, minutes=args.minutes,
                              sample_every_s=args.sample_every_s, errors_per_min=args.errors_per_min,
                              simulator_processes=args.simulator_processes, seed=args.seed,
                              warmup_max_s=args.warmup_max_s, history=args.history)
        for size in steps:
            SoakOptions(sites=args.sites, printers_per_site=fleet_split(size, args.sites))
    except ValueError as exc:
        parser.error(str(exc))
    return Command(options, steps, args.step_minutes, args.out)
