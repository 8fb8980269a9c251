"""`printfleet bench opcua` (`run(argv)`): the collector's CPU, memory and LAN bytes per
OPC UA machine against per printer-API printer, the same simulated printers, alternating
runs in one process run (docs/opcua-bench.md). Needs no Kafka: nothing is uploaded.
Tables go to stdout as Markdown, progress lines to stderr."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import os
import sys
import time
from collections.abc import Sequence

from deploy.machine import describe

from benchmarks.ingest.site import BenchError
from benchmarks.opcua import report
from benchmarks.opcua.report import COMPARED, OPCUA, PRINTER_API, Figures, Sample
from benchmarks.opcua.runner import OpcUaBenchOptions, bench_site, one_run
from producers.collector.config import Cadence

QUICK = OpcUaBenchOptions(printers=10, runs=1, seconds=20.0, warmup_s=10.0, max_warmup_s=90.0)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="printfleet bench opcua",
        description="The collector's CPU and memory per OPC UA machine against per printer-API printer, and the "
                    "LAN bytes per device-hour both ways: one simulator serves the same printers by both protocols "
                    "(real time, default cadence); collector processes for each protocol run alternately. "
                    "Needs no Kafka. Tables (Markdown) on stdout, progress on stderr.",
        epilog="About 40 minutes with the defaults (6 runs of 5-6 minutes), 2 with --quick. "
               "Exit 1 when a run collected nothing. See docs/opcua-bench.md.",
    )
    p.add_argument("--quick", action="store_true", help="10 devices, one 20 s run of each (no verdict)")
    p.add_argument("--printers", type=int, help="devices of each protocol (default 100)")
    p.add_argument("--runs", type=int, help="runs of each protocol, alternating (default 3)")
    p.add_argument("--seconds", type=float, help="measured seconds of each run (default 300: one period of the 300 s cadences)")
    p.add_argument("--warmup", type=float, help="least seconds of warm-up before a window (default 30)")
    p.add_argument("--profile", action="store_true",
                   help="cProfile the collector in each window and print its top functions (slows it: the figures "
                        "of such a run are for looking, not comparing)")
    p.add_argument("--opcua-port", type=int, help="port of the simulator's OPC UA server (default 24840)")
    return p


def run(argv: Sequence[str] | None = None) -> int:
    """CLI entry point. Returns 0; 1 when the bench could not run or a run collected
    nothing; bad flags make argparse exit 2."""
    parser = _parser()
    args = parser.parse_args(argv)
    bad = [f"--{n}" for n in ("printers", "runs", "seconds", "opcua_port")
           if (v := getattr(args, n)) is not None and v <= 0]
    if args.warmup is not None and args.warmup < 0:
        bad.append("--warmup")
    if bad:
        parser.error(f"{', '.join(b.replace('_', '-') for b in bad)} must be > 0")
    flags = dict(printers=args.printers, runs=args.runs, seconds=args.seconds, warmup_s=args.warmup,
                 opcua_port=args.opcua_port, profile=args.profile or None)
    options = dataclasses.replace(QUICK if args.quick else OpcUaBenchOptions(),
                                  **{k: v for k, v in flags.items() if v is not None})
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s %(message)s")
    for name in ("asyncua", "producers.collector.drivers.opcua"):
        logging.getLogger(name).setLevel(logging.ERROR)
    print(f"# printfleet bench opcua{' (quick)' if args.quick else ''}\n")
    print(f"Machine: {describe()}; load average at start {_load()}.\n")
    print(f"{options.printers} printer-API printers against the same {options.printers} printers as OPC UA machines, "
          f"real time, default cadence (heartbeat {Cadence().heartbeat_s:g} s); {options.runs} run(s) of each, "
          f"alternating, each {options.seconds:g} s measured after at least {options.warmup_s:g} s warm-up.\n")
    started = time.monotonic()
    try:
        samples = asyncio.run(_measure(options))
    except BenchError as exc:
        print(f"could not run: {exc}")
        return 1
    return _print(samples, started)


async def _measure(options: OpcUaBenchOptions) -> list[Sample]:
    samples: list[Sample] = []
    async with bench_site(options, _progress) as site:
        for n in range(options.runs):
            for protocol in (PRINTER_API, OPCUA):
                samples.append(await one_run(site, protocol, len(samples) + 1, options, _progress))
                _progress(f"run {len(samples)} {protocol} done; load average {_load()}")
    return samples


def _print(samples: list[Sample], started: float) -> int:
    runs: list[Figures] = [report.figures(s) for s in samples]
    print("## Every run, in the order they ran\n")
    print(report.runs_table(runs, samples))
    print("\nBytes are what crossed the relays both ways (TLS records or OPC UA secure-channel messages), "
          "per device-hour of the window. RSS is the whole collector process (the interpreter included), "
          "per device it is that divided by the devices.\n")
    print("## Medians and ratios\n")
    print(report.medians_table(runs))
    print()
    for name, heading in COMPARED[:2] + COMPARED[5:6]:
        print(f"- {report.verdict(runs, name, heading)}")
    print("\n## Did every run collect?\n")
    failed = False
    for n, s in enumerate(samples, 1):
        problems = report.collection_problems(s, Cadence().heartbeat_s)
        kinds = ", ".join(f"{k} {v:,}" for k, v in sorted(s.spooled.items()))
        state = "collected" if not problems else "DID NOT COLLECT: " + "; ".join(problems)
        print(f"- run {n} {s.protocol}: {state} ({s.devices_spooling} of {s.devices} devices spooled; {kinds}; "
              f"{s.kept_aside:,} kept aside as unmappable)")
        failed = failed or bool(problems)
    for n, s in enumerate(samples, 1):
        if s.profile:
            print(f"\n## cProfile of run {n} ({s.protocol}), the window only, by own time\n\n```\n{s.profile.strip()}\n```")
    print(f"\nLoad average at the end {_load()}. Total {time.monotonic() - started:.0f} s.")
    return 1 if failed else 0


def _load() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg()) + f" ({os.cpu_count()} cores)"


def _progress(line: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {line}", file=sys.stderr, flush=True)
