"""Security bench: `printfleet bench security`, the cost of SASL_SSL (TLS + SCRAM-SHA-512)
against PLAINTEXT, on the running stack's two listeners, in the same run.

- gateway: records/s it takes into Kafka (benchmarks/ingest/gateway.py's load: HTTPS
  clients in their own processes, 5,000-heartbeat batches);
- sink: rows/s from Kafka into ClickHouse (the sink in this process, as
  benchmarks/sink.py runs it), over one topic of heartbeats filled once.

Runs alternate PLAINTEXT, SASL_SSL, ... (`--repeat` each); the verdict is on the medians,
every run shown. Its own topic prefix and databases, removed at the end. Figures in
docs/platform.md.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Callable, Sequence
from statistics import median

from benchmarks import isolation
from benchmarks.ingest import gateway as gateway_part
from benchmarks.ingest.gateway import GatewayOptions
from benchmarks.sink import create_topic, drop, make_records, produce, sink_in_process
from common.kafka.settings import KafkaSettings
from common.kafka.topics import topic_for
from deploy.machine import describe
from deploy.settings import StackSettings
from schemas import SchemaRegistry
from sinks.clickhouse import SinkSettings
from sinks.connection import ClickHouseSettings

Progress = Callable[[str], None]
LISTENERS = ("PLAINTEXT", "SASL_SSL")


def _progress(line: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {line}", file=sys.stderr, flush=True)


async def gateway_runs(kafka: dict[str, KafkaSettings], repeat: int, seconds: float, headroom: float,
                       progress: Progress) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Listener -> records/s of each gateway run, alternating; and the gateway's CPU %
    (of one core) in each. The clients build batches for `headroom` records/s: a run
    that reaches it is capped by them, not by the gateway."""
    options = GatewayOptions(seconds=seconds, baseline_seconds=1.0, headroom_records_s=headroom)
    runs: dict[str, list[float]] = {name: [] for name in LISTENERS}
    cpu: dict[str, list[float]] = {name: [] for name in LISTENERS}
    for i in range(repeat):
        for name in LISTENERS:
            progress(f"gateway over {name}, run {i + 1} of {repeat}")
            result = await gateway_part.measure(kafka[name], options, progress)
            runs[name].append(result.gateway_records_s)
            cpu[name].append(result.gateway_cpu_pct)
    return runs, cpu


async def sink_runs(kafka: dict[str, KafkaSettings], stack: StackSettings, records: int, repeat: int,
                    run: str, progress: Progress) -> dict[str, list[float]]:
    """Listener -> rows/s of each sink run over the same topic, alternating; each run a
    database and group of its own."""
    registry = SchemaRegistry.load_default()
    plain = kafka["PLAINTEXT"]
    batch = make_records("heartbeat", records)
    await create_topic(plain, "heartbeat")
    progress(f"sink: producing {records:,} heartbeats")
    await produce(plain, plain.topic(topic_for("heartbeat")), registry.encode_many("heartbeat", batch),
                  [r["device_id"].encode() for r in batch])
    del batch
    runs: dict[str, list[float]] = {name: [] for name in LISTENERS}
    databases = []
    try:
        for i in range(repeat):
            for name in LISTENERS:
                database = f"bench_{run}_security_{name.lower()}_{i}"
                databases.append(database)
                progress(f"sink over {name}, run {i + 1} of {repeat}")
                settings = SinkSettings(kafka=kafka[name], clickhouse=ClickHouseSettings(stack.clickhouse_url,
                                        database=database), group_id=f"sink-{name}-{i}", kinds="heartbeat")
                seconds, _, _ = await sink_in_process(settings, registry, records)
                runs[name].append(records / seconds)
    finally:
        await drop(stack.clickhouse_url, databases)
    return runs


def table(title: str, unit: str, runs: dict[str, list[float]]) -> str:
    plain, secure = median(runs["PLAINTEXT"]), median(runs["SASL_SSL"])
    lines = [f"## {title}", "", f"| listener | {unit}, median | runs |", "|---|---:|---|"]
    for name in LISTENERS:
        lines.append(f"| {name} | {median(runs[name]):,.0f} | {', '.join(f'{r:,.0f}' for r in runs[name])} |")
    lines += ["", f"SASL_SSL / PLAINTEXT: {secure / plain:.2f}", ""]
    return "\n".join(lines)


def run(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="printfleet bench security", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3, help="runs per listener and part, alternating (default 3)")
    parser.add_argument("--seconds", type=float, default=10.0, help="seconds of each gateway run (default 10)")
    parser.add_argument("--headroom", type=float, default=200_000.0,
                        help="records/s the gateway clients prepare batches for (default 200,000)")
    parser.add_argument("--records", type=int, default=600_000, help="heartbeats of each sink run (default 600,000)")
    parser.add_argument("--part", choices=("gateway", "sink", "both"), default="both")
    args = parser.parse_args(argv)
    if args.repeat < 1 or args.seconds <= 0 or args.records < 1:
        parser.error("--repeat, --seconds and --records must be positive")
    stack = StackSettings.from_env()
    run_id = isolation.run_id()
    prefix = f"bench-{run_id}."
    kafka = {"PLAINTEXT": stack.kafka(topic_prefix=prefix), "SASL_SSL": stack.kafka_sasl_ssl(topic_prefix=prefix)}
    print("# printfleet bench security\n")
    print(f"Machine: {describe()}; Kafka at {kafka['PLAINTEXT'].bootstrap_servers} (PLAINTEXT) and "
          f"{kafka['SASL_SSL'].bootstrap_servers} (SASL_SSL, SCRAM-SHA-512, TLS 1.2+), topics {prefix}*.\n")
    started = time.monotonic()
    try:
        if args.part in ("gateway", "both"):
            runs, cpu = asyncio.run(gateway_runs(kafka, args.repeat, args.seconds, args.headroom, _progress))
            print(table("gateway: records/s into Kafka", "records/s", runs), flush=True)
            print(table("gateway: CPU, % of one core", "%", cpu), flush=True)
        if args.part in ("sink", "both"):
            runs = asyncio.run(sink_runs(kafka, stack, args.records, args.repeat, run_id, _progress))
            print(table("sink: heartbeat rows/s from Kafka into ClickHouse", "rows/s", runs), flush=True)
    finally:
        asyncio.run(isolation.drop_topics(kafka["PLAINTEXT"]))
    print(f"Total {time.monotonic() - started:.0f} s.")
    return 0
