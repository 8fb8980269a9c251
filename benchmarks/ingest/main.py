"""Ingest bench: `printfleet bench ingest` (`run(argv)`), three parts, each with a baseline
measured in the same process run and its targets (docs/ingest-bench.md):

- wire: bytes per printer-hour, collector -> gateway, at the default cadence, against
  one JSON payload per HTTPS connection (benchmarks/ingest/wire.py);
- gateway: records/s the gateway takes into Kafka, against a bare aiokafka producer and
  the gateway's own Publisher without HTTP (benchmarks/ingest/gateway.py);
- collector: CPU and RSS of the collector process for 100 printers, against 10
  (benchmarks/ingest/collector.py).

Needs the running Kafka (`printfleet stack up`; StackSettings.from_env()). Tables go to
stdout as Markdown, progress lines to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import sys
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, TypeVar

from deploy.machine import describe

from benchmarks import isolation

from benchmarks.ingest import collector as collector_part
from benchmarks.ingest import gateway as gateway_part
from benchmarks.ingest import wire as wire_part
from benchmarks.ingest.collector import CollectorOptions, CollectorRun
from benchmarks.ingest.gateway import GatewayOptions, GatewayResult
from benchmarks.ingest.report import (
    GATEWAY_TARGET_RECORDS_S,
    MISSED,
    PRINTER_TARGET_KBIT_S,
    SITE_BUDGET_KBIT_S,
    fmt_bytes,
    fmt_int,
    fmt_num,
    markdown_table,
    parse_parts,
    per_printer_kbit_s,
    ratio,
    verdict,
)
from benchmarks.ingest.site import BenchError
from benchmarks.ingest.wire import WireOptions, WireResult

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

_T = TypeVar("_T", bound="DataclassInstance")
QUICK_WIRE = WireOptions(printers=20, hours=0.5, acceleration=180.0)
QUICK_GATEWAY = GatewayOptions(seconds=5.0, baseline_seconds=3.0)
QUICK_COLLECTOR = CollectorOptions(seconds=20.0, baseline_seconds=10.0, warmup_s=5.0)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="printfleet bench ingest",
        description="Ingest bench, three parts each against a baseline measured in the same run: "
        "wire bytes per printer-hour (collector -> gateway), gateway records/s into Kafka, collector CPU "
        "and memory. Needs the running Kafka. Tables (Markdown) on stdout, progress on stderr.",
        epilog="About 3 minutes with the defaults, about 1 with --quick. See docs/ingest-bench.md.",
    )
    p.add_argument("--part", default="all", metavar="P[,P...]", help="wire, gateway, collector or all (default)")
    p.add_argument("--quick", action="store_true", help="shorter runs of every part (defaults below change)")
    p.add_argument("--bootstrap", help="Kafka bootstrap, one broker (default: the local stack's); "
                                       "the run uses topics of its own (bench-<run>.)")
    w = p.add_argument_group("wire")
    w.add_argument("--printers", type=int, help="simulated printers (default 20)")
    w.add_argument("--hours", type=float, help="simulated hours measured (default 2, --quick 0.5)")
    w.add_argument("--acceleration", type=float, help="simulated seconds per real second, cadence divided alike (default 180)")
    g = p.add_argument_group("gateway")
    g.add_argument("--seconds", type=float, help="seconds of POSTing (default 15, --quick 5)")
    g.add_argument("--baseline-seconds", type=float, help="seconds of each Kafka baseline (default 6, --quick 3)")
    g.add_argument("--clients", type=int, help="load-generator processes (default 2)")
    g.add_argument("--concurrency", type=int, help="POSTs in flight per client process (default 3)")
    g.add_argument("--batch-records", type=int, help="records per batch (default 5000)")
    g.add_argument("--plain-http", action="store_true", help="gateway without TLS (default: TLS)")
    g.add_argument("--profile", action="store_true", help="cProfile the gateway process during the run; print the top 25")
    p.add_argument("--strict", action="store_true", help="exit 1 when a target is missed (default: only when a part fails)")
    c = p.add_argument_group("collector")
    c.add_argument("--collector-printers", type=int, help="printers of the main run (default 100)")
    c.add_argument("--collector-baseline-printers", type=int, help="printers of the baseline run (default 10)")
    c.add_argument("--collector-seconds", type=float, help="measured seconds of the main run (default 40, --quick 20)")
    c.add_argument("--collector-acceleration", type=float, help="simulator acceleration (default 1: real time)")
    return p


def _replace(base: _T, **flags: object) -> _T:
    """`base` with the flags that were given (not None)."""
    return dataclasses.replace(base, **{k: v for k, v in flags.items() if v is not None})


def run(argv: Sequence[str] | None = None) -> int:
    """CLI entry point: parse `argv`, run the chosen parts, print their tables. Returns 0;
    1 when a part could not run, or with --strict a target was missed; bad flags make
    argparse exit 2."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        parts = parse_parts(args.part)
    except ValueError as exc:
        parser.error(str(exc))
    positive = ("printers", "hours", "acceleration", "seconds", "baseline_seconds", "clients", "concurrency",
                "batch_records", "collector_printers", "collector_baseline_printers", "collector_seconds",
                "collector_acceleration")
    bad = [f"--{name.replace('_', '-')}" for name in positive if (v := getattr(args, name)) is not None and v <= 0]
    if bad:
        parser.error(f"{', '.join(bad)} must be > 0")
    kafka = isolation.kafka(args.bootstrap)
    quick = args.quick
    wire = _replace(QUICK_WIRE if quick else WireOptions(), printers=args.printers, hours=args.hours,
                    acceleration=args.acceleration)
    gateway = _replace(QUICK_GATEWAY if quick else GatewayOptions(), seconds=args.seconds,
                       baseline_seconds=args.baseline_seconds, clients=args.clients, concurrency=args.concurrency,
                       batch_records=args.batch_records, plain_http=args.plain_http or None,
                       profile=args.profile or None)
    collector = _replace(QUICK_COLLECTOR if quick else CollectorOptions(), printers=args.collector_printers,
                         baseline_printers=args.collector_baseline_printers, seconds=args.collector_seconds,
                         acceleration=args.collector_acceleration)
    if collector.baseline_printers >= collector.printers:
        parser.error("--collector-baseline-printers must be fewer than --collector-printers")
    print(f"# printfleet bench ingest ({', '.join(parts)}{', quick' if quick else ''})\n")
    print(f"Machine: {describe()}; Kafka at {kafka.bootstrap_servers}, topics {kafka.topic_prefix}* (deleted at the end).\n")
    started, verdicts, failed = time.monotonic(), [], False
    for part in parts:
        try:
            if part == "wire":
                verdicts += _print_wire(asyncio.run(wire_part.measure(kafka, wire, _progress)))
            elif part == "gateway":
                verdicts += _print_gateway(asyncio.run(gateway_part.measure(kafka, gateway, _progress)))
            else:
                verdicts += _print_collector(*asyncio.run(collector_part.measure(kafka, collector, _progress)))
        except BenchError as exc:
            print(f"## {part}: could not run\n\n{exc}\n")
            failed = True
        sys.stdout.flush()
    asyncio.run(isolation.drop_topics(kafka))
    print(f"Total {time.monotonic() - started:.0f} s.")
    return 1 if failed or (args.strict and MISSED in verdicts) else 0


def _progress(line: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {line}", file=sys.stderr, flush=True)


def _targets(rows: list[tuple[str, str, str]]) -> str:
    return markdown_table(["target", "measured", "verdict"], rows, [False, True, False])


def _print_wire(r: WireResult) -> list[str]:
    p, o = r.options.printers, r.probe
    assert o is not None

    def kbit(n: float) -> float:
        return per_printer_kbit_s(n, p, r.printer_hours / p)

    model, baseline = kbit(r.model_up_bytes_normalised), kbit(r.baseline_up_bytes_normalised)
    rows = [
        (f"body bytes as uploaded in the accelerated run ({fmt_int(r.batches)} batches, "
         f"{fmt_int(r.records / max(1, r.batches))} records each)", kbit(r.body_bytes), "uploader counter"),
        ("on the wire in the accelerated run, collector -> gateway", kbit(r.up),
         f"socket relay: TLS records, HTTP, bodies ({(r.up - r.body_bytes) / max(1, r.batches):.0f} B per batch "
         f"above the body); gateway -> collector {fmt_num(kbit(r.down))}"),
        (f"real time: one upload per 1 s round ({fmt_int(r.round_count)} rounds), as polled",
         kbit(r.model_up_bytes), f"gzip bodies + {o.kept_overhead_up:.0f} B/request (kept-alive HTTPS, measured)"),
        ("real time, normalised to the full default cadence", model,
         f"cadence fidelity {r.fidelity:.0%} ({fmt_num(r.heartbeats_per_printer_hour)} of "
         f"{fmt_int(r.expected_heartbeats_per_hour)} heartbeats per printer-hour)"),
        ("baseline: one JSON payload per HTTPS connection, normalised", baseline,
         f"JSON + {o.json_fresh_overhead_up:.0f} B/connection ({o.tls_version} handshake + HTTP, measured); "
         f"gateway -> collector {o.json_fresh_overhead_down:.0f} B/connection"),
    ]
    print(f"## wire: collector -> gateway at the default cadence\n\n{p} printers, "
          f"{r.printer_hours / p:.2f} simulated hours after {r.options.warmup_min:g} min warm-up, "
          f"acceleration {r.options.acceleration:g} (cadence / {r.options.acceleration:g}), "
          f"{fmt_int(r.records)} records.\n")
    print(markdown_table(["figure", "kbit/s per printer", f"kbit/s per site of {p}", "how"],
                         [(f, fmt_num(v), fmt_num(v * p), how) for f, v, how in rows], [False, True, True, False]))
    print()
    shares = r.kind_shares()
    print(markdown_table(
        ["kind", "records per printer-hour (counted)", "mean Avro B", "max Avro B", "Avro kbit/s per printer",
         "share of Avro bytes", "JSON-per-connection kbit/s per printer"],
        [(k, fmt_num(n), fmt_int(mean), fmt_int(mx), fmt_num(avro), f"{share:.1%}", fmt_num(base))
         for k, n, mean, mx, avro, share, base in shares]))
    print()
    results = [
        (f"<= {PRINTER_TARGET_KBIT_S:g} kbit/s per printer", f"{fmt_num(model)} kbit/s",
         verdict(model, PRINTER_TARGET_KBIT_S, at_most=True)),
        (f"< {SITE_BUDGET_KBIT_S:g} kbit/s per site (0.5 % of 5 Mbit/s), {p} printers", f"{fmt_num(model * p)} kbit/s",
         verdict(model * p, SITE_BUDGET_KBIT_S, at_most=True)),
        ("baseline within the site budget (for comparison)", f"{fmt_num(baseline * p)} kbit/s",
         verdict(baseline * p, SITE_BUDGET_KBIT_S, at_most=True)),
    ]
    print(_targets(results))
    print(f"\nBaseline / batched: {fmt_num(ratio(baseline, model))}x; printers per site within the budget: "
          f"{fmt_int(SITE_BUDGET_KBIT_S / model)} batched, {fmt_int(SITE_BUDGET_KBIT_S / baseline)} baseline.\n")
    return [results[0][2], results[1][2]]


def _print_gateway(r: GatewayResult) -> list[str]:
    o = r.options
    scheme = "plain HTTP" if o.plain_http else "HTTPS (TLS)"
    statuses = ", ".join(f"{k}: {v}" for k, v in sorted(r.report.statuses.items()))
    rows = [
        (f"gateway, {scheme}, gzip batches of {fmt_int(o.batch_records)} heartbeats, "
         f"{o.clients} client processes x {o.concurrency} in flight", r.gateway_records_s,
         f"{o.seconds:g} s; answers {statuses}; mean body {fmt_bytes(r.mean_body_bytes)}; gateway process CPU "
         f"{r.gateway_cpu_pct:.0f} % of a core; machine {r.machine_busy_pct:.0f} % of {os.cpu_count()} cores"),
        ("baseline: bare aiokafka producer, send() per record (acks=all, idempotent)", r.raw_send_records_s,
         f"{o.baseline_seconds:g} s, same records, {o.clients * o.concurrency} tasks"),
        ("baseline: the gateway's Publisher.commit, no HTTP, no decoding", r.publisher_records_s,
         f"{o.baseline_seconds:g} s, same records, {o.clients * o.concurrency} tasks"),
    ]
    print("## gateway: records/s into Kafka\n")
    print(markdown_table(["path", "records/s", "gateway / this", "how"],
                         [(f, fmt_int(v), fmt_num(ratio(r.gateway_records_s, v)), how) for f, v, how in rows],
                         [False, True, True, False]))
    print()
    result = verdict(r.gateway_records_s, GATEWAY_TARGET_RECORDS_S, at_most=False)
    print(_targets([(f">= {fmt_int(GATEWAY_TARGET_RECORDS_S)} records/s", fmt_int(r.gateway_records_s), result)]))
    if r.report.ran_out:
        print("\nThe clients ran out of prepared batches: the gateway is faster than the figure says.")
    if r.profile:
        print(f"\ncProfile of the gateway process during the run (top by own time):\n\n```\n{r.profile.strip()}\n```")
    print()
    return [result]


def _print_collector(main: CollectorRun, base: CollectorRun) -> list[str]:
    print("## collector: CPU and memory at the default cadence\n")
    rows = [
        (f"{run.printers} printers{' (baseline)' if run is base else ''}", f"{run.seconds:.0f}",
         f"{run.cpu_pct:.2f}", f"{run.rss_mib:.0f}", f"{run.peak_rss_mib:.0f}", fmt_num(run.records_per_s),
         fmt_num(run.uploaded_per_s), fmt_int(run.poll_failures),
         f"{run.warmup_s:.0f}{'' if run.steady else ' (not steady)'}", f"{run.startup_cpu_s:.1f}")
        for run in (main, base)
    ]
    rows.append((f"ratio {main.printers} / {base.printers}", "", fmt_num(ratio(main.cpu_pct, base.cpu_pct)),
                 fmt_num(ratio(main.rss_mib, base.rss_mib)), fmt_num(ratio(main.peak_rss_mib, base.peak_rss_mib)),
                 fmt_num(ratio(main.records_per_s, base.records_per_s)), "", "", "",
                 fmt_num(ratio(main.startup_cpu_s, base.startup_cpu_s))))
    print(markdown_table(["collector process", "measured s", "CPU % of one core", "RSS MiB", "peak RSS MiB",
                          "records polled/s", "uploaded/s", "poll failures", "warm-up s", "start-up CPU s"], rows))
    print(f"\nSteady state after the printers' backlog was read (warm-up). No target is set for this part; "
          f"CPU per printer {main.cpu_pct / main.printers:.3f} % of a core, RSS per printer beyond the baseline "
          f"{(main.rss_mib - base.rss_mib) / max(1, main.printers - base.printers):.2f} MiB.\n")
    return []
