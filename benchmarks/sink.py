"""Sink bench: `printfleet bench sink` (`run(argv)`).

Rows/s from Kafka into ClickHouse through the real sink (`ClickHouseSink`, in this
process, or `--processes N` sink processes in one consumer group), for heartbeats and for
jobs with their parts and layers, against a direct clickhouse-connect insert of exactly
the same rows (already converted, same batch size, same tables and rollup views) measured
in the same run. Stage rates (Kafka fetch alone, `decode_records`, conversion) on the same
messages explain where the sink's time goes. Figures and the machine: docs/sink-bench.md.

Needs the running stack (`printfleet stack up`; `StackSettings.from_env()`). Every run
uses topics, a consumer group and two databases of its own, dropped at the end. Tables
go to stdout as Markdown, progress lines to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from statistics import median
from typing import Any, Final

import clickhouse_connect

from benchmarks import isolation
from benchmarks.ingest.report import fmt_int, fmt_num, markdown_table, ratio
from common.kafka import admin, clients
from common.kafka.settings import KafkaSettings
from common.kafka.topics import DEAD_LETTER, PARTITIONS, pipeline_specs, topic_for
from deploy.machine import describe
from deploy.settings import StackSettings
from schemas import SchemaRegistry
from schemas.samples import sample_record
from sinks.batch import Batch
from sinks.clickhouse import ClickHouseSink, SinkSettings
from sinks.connection import ClickHouseSettings
from sinks.client import INSERT_SETTINGS
from sinks.convert import Converter, TableRows
from sinks.layout import layout
from sinks.native_block import eligible
from sinks.prepare import prepare

HEARTBEAT_TARGET_ROWS_S: Final = 200_000
SINK_TO_DIRECT_TARGET: Final = 0.5
DEVICES: Final = 240
# A backlog is cut by size; the age limit only decides when the tail of the run is cut.
BATCH_MAX_AGE_S: Final = 0.2
TEMPLATES: Final = 500  # distinct sample records cycled through (sample_record is slow)


@dataclass(frozen=True)
class Options:
    heartbeats: int = 360_000  # 60,000 a partition: three full batches each
    jobs: int = 4_800  # 800 a partition: two full batches of 400 jobs (about 20,000 rows) each
    batch_max_rows: int = 20_000  # a batch holds the records of about this many rows
    processes: int = 0  # 0: the sink in this process; N: N `printfleet sink` processes
    kinds: tuple[str, ...] = ("heartbeat", "job")
    repeat: int = 1  # the sink and the direct insert, each run this many times, alternating


@dataclass
class KindResult:
    kind: str
    records: int
    rows: int  # every table: a job's parts, layers, ... included
    mib: float  # Avro bytes in Kafka
    batch_records: int = 0  # the sink's batch size for this kind
    sink_s: float = 0.0
    sink_join_s: float = 0.0
    direct_s: float = 0.0
    fetch_s: float = 0.0
    decode_s: float = 0.0
    convert_s: float = 0.0
    sink_cpu_s: float = 0.0
    python_path_s: float = 0.0  # the sink with column decoding off
    notes: list[str] = field(default_factory=list)
    # With --repeat: every run's seconds; sink_s and direct_s are their medians.
    sink_runs: list[float] = field(default_factory=list)
    direct_runs: list[float] = field(default_factory=list)

    @property
    def sink_rows_s(self) -> float:
        return self.rows / self.sink_s if self.sink_s else 0.0

    @property
    def sink_records_s(self) -> float:
        return self.records / self.sink_s if self.sink_s else 0.0

    @property
    def direct_rows_s(self) -> float:
        return self.rows / self.direct_s if self.direct_s else 0.0


Progress = Callable[[str], None]


def _progress(line: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {line}", file=sys.stderr, flush=True)


# -- data -----------------------------------------------------------------------------


def make_records(kind: str, count: int) -> list[dict[str, Any]]:
    """`count` records of `kind` from `DEVICES` printers, a second apart, ending now (the
    raw tables' TTLs drop old rows at insert), each with its own record id."""
    now = int(time.time() * 1000)
    templates = [sample_record(kind, seed=i) for i in range(min(TEMPLATES, count))]
    out = []
    for i in range(count):
        record = dict(templates[i % len(templates)])
        record.update(
            site_id=f"site-{i % 7}", device_id=f"dev-{i % DEVICES:03d}", record_id=str(uuid.UUID(int=i + 1)),
            event_time=now - (count - i) * 10,
        )
        out.append(record)
    return out


async def produce(kafka: KafkaSettings, topic: str, encoded: Sequence[bytes], keys: Sequence[bytes]) -> None:
    """All messages into `topic` (`PARTITIONS` partitions, a device always in
    the same one, devices dealt round-robin so that partitions hold equal shares), in
    producer batches: fast, so producing is not what the bench waits on."""
    producer = clients.producer(kafka, max_batch_size=1 << 20, max_request_size=8 << 20)
    await producer.start()
    try:
        by_partition: dict[int, list[tuple[bytes, bytes]]] = {}
        partition_of: dict[bytes, int] = {}
        for key, value in zip(keys, encoded):
            partition = partition_of.setdefault(key, len(partition_of) % PARTITIONS)
            by_partition.setdefault(partition, []).append((key, value))
        pending = []
        for partition, items in by_partition.items():
            batch = producer.create_batch()
            for key, value in items:
                if batch.append(key=key, value=value, timestamp=None) is None:
                    pending.append(await producer.send_batch(batch, topic, partition=partition))
                    batch = producer.create_batch()
                    batch.append(key=key, value=value, timestamp=None)
            pending.append(await producer.send_batch(batch, topic, partition=partition))
        await asyncio.gather(*pending)
    finally:
        await producer.stop()


async def create_topic(kafka: KafkaSettings, kind: str) -> None:
    await admin.apply(kafka, pipeline_specs([topic_for(kind)]))


# -- measurements ---------------------------------------------------------------------


async def fetch_all(kafka: KafkaSettings, topic: str, total: int) -> tuple[list[Any], float]:
    """Every message of `topic` with the sink's fetch settings; seconds from the first
    poll to the last message (the Kafka side alone)."""
    consumer = clients.consumer(kafka, topic, auto_offset_reset="earliest",
                                max_partition_fetch_bytes=8 << 20, fetch_max_bytes=64 << 20)
    await consumer.start()
    out: list[Any] = []
    first = time.perf_counter()
    try:
        while len(out) < total:
            for messages in (await consumer.getmany(timeout_ms=500, max_records=50_000)).values():
                out.extend(messages)
        return out, time.perf_counter() - first
    finally:
        await consumer.stop()


def batches_of(messages: Sequence[Any], size: int) -> list[Batch]:
    """The batches the sink cuts: per partition, `size` messages each."""
    by_tp: dict[tuple[str, int], list[Any]] = {}
    for m in messages:
        by_tp.setdefault((m.topic, m.partition), []).append(m)
    out = []
    for (topic, partition), ms in by_tp.items():
        ms.sort(key=lambda m: m.offset)
        for i in range(0, len(ms), size):
            chunk = ms[i:i + size]
            out.append(Batch(topic, partition, chunk[0].offset, chunk[-1].offset + 1, tuple(chunk)))
    return out


def stage_times(kind: str, batches: Sequence[Batch], registry: SchemaRegistry) -> tuple[float, float, list[tuple[Batch, list[TableRows]]]]:
    """Seconds of `decode_records` and of conversion over every batch, and the rows."""
    converter = Converter(layout(registry.reader(kind)))
    decode_s = convert_s = 0.0
    out = []
    for b in batches:
        t0 = time.perf_counter()
        records = registry.decode_records(kind, [m.value for m in b.messages])
        t1 = time.perf_counter()
        converted = converter.convert(records, b.partition, [m.offset for m in b.messages])
        t2 = time.perf_counter()
        decode_s += t1 - t0
        convert_s += t2 - t1
        assert not converted.rejected
        out.append((b, [t for t in converted.tables if t.rows]))
    # What the sink runs per batch, as a check that the stages above are the same work.
    prepare(batches[0], kind, registry, converter)
    return decode_s, convert_s, out


async def direct_insert(url: str, database: str, prepared: Sequence[tuple[Batch, list[TableRows]]], in_flight: int) -> float:
    """Seconds to insert every batch's columns with clickhouse-connect alone (async client,
    `in_flight` inserts at once like the sink, the sink's insert settings and tokens)."""
    host_port = url.split("//", 1)[1]
    host, port = host_port.rsplit(":", 1)
    client = await clickhouse_connect.get_async_client(host=host, port=int(port), database=database, compress=False)
    gate = asyncio.Semaphore(in_flight)

    async def one(b: Batch, t: TableRows) -> None:
        async with gate:
            await client.insert(t.table, t.columns, column_names=list(t.names), column_type_names=list(t.types),
                                column_oriented=True, settings=dict(INSERT_SETTINGS, insert_deduplication_token=b.token))

    try:
        t0 = time.perf_counter()
        await asyncio.gather(*(one(b, t) for b, tables in prepared for t in tables))
        return time.perf_counter() - t0
    finally:
        await client.close()


async def sink_in_process(settings: SinkSettings, registry: SchemaRegistry, records: int) -> tuple[float, float, float]:
    """(seconds from the first message fetched to the last record stored, seconds to
    start and join the group, CPU seconds of this process meanwhile)."""
    t0 = time.perf_counter()
    sink = ClickHouseSink(settings, registry)
    await sink.start()
    try:
        while sink.counters.records_in == 0:
            await sink.step()
        first = time.perf_counter()
        cpu0 = time.process_time()
        while sink.counters.records_stored < records:
            await sink.step()
        return time.perf_counter() - first, first - t0, time.process_time() - cpu0
    finally:
        await sink.stop()


async def sink_processes(
    settings: SinkSettings, count: int, records: int, fill: Callable[[], Awaitable[None]], progress: Progress,
) -> tuple[float, float, float]:
    """`count` `printfleet sink` processes in one group, started on the empty topic. Once
    the group is stable with every process a member, the clock starts and `fill()`
    produces the records (its CPU competes with the sinks': the figure errs low); it stops
    when ClickHouse holds every row (polled every 20 ms). Returns (seconds, seconds until
    the group was ready, CPU seconds of the processes while the clock ran)."""
    env = dict(os.environ)
    for name in ("group_id", "kinds", "batch_max_records", "batch_max_age_s"):
        env[f"PRINTFLEET_SINK_{name.upper()}"] = str(getattr(settings, name))
    env["PRINTFLEET_CLICKHOUSE_URL"] = settings.clickhouse.url
    env["PRINTFLEET_CLICKHOUSE_DATABASE"] = settings.clickhouse.database
    env.update(isolation.environment(settings.kafka))
    exe = [sys.executable, "-m", "printfleet", "sink", "--status-every-s", "0", "--ops-port", "0"]
    t0 = time.perf_counter()
    procs = [subprocess.Popen(exe, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for _ in range(count)]
    host, port = settings.clickhouse.url.split("//", 1)[1].rsplit(":", 1)
    client = await clickhouse_connect.get_async_client(host=host, port=int(port), compress=False)
    groups = clients.admin_client(settings.kafka)
    await groups.start()
    table = f"`{settings.clickhouse.database}`.`{settings.kinds}`"

    async def stored() -> int:
        try:
            return int(str(await client.command(f"SELECT count() FROM {table}")))
        except Exception:  # noqa: BLE001 - the table appears with the first sink's migration
            return 0

    def check() -> None:
        if time.perf_counter() - t0 > 600 or any(p.poll() is not None for p in procs):
            raise RuntimeError(f"sink processes did not store {records} rows")

    try:
        while True:
            group = (await groups.describe_consumer_groups([settings.kafka.group(settings.group_id)]))[0].to_object()["groups"][0]
            if group["state"] == "Stable" and len(group["members"]) == count:
                break
            check()
            await asyncio.sleep(0.05)
        ready = time.perf_counter()
        cpu0 = sum(_cpu_s(p.pid) for p in procs)
        progress(f"group ready after {ready - t0:.1f} s with {count} members; producing")
        await fill()
        while (n := await stored()) < records:
            check()
            await asyncio.sleep(0.02)
        end = time.perf_counter()
        cpu = sum(_cpu_s(p.pid) for p in procs) - cpu0
        return end - ready, ready - t0, cpu
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(30)
        await groups.close()
        await client.close()


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def drop(url: str, databases: Sequence[str]) -> None:
    host, port = url.split("//", 1)[1].rsplit(":", 1)
    client = await clickhouse_connect.get_async_client(host=host, port=int(port), compress=False)
    try:
        for db in databases:
            await client.command(f"DROP DATABASE IF EXISTS `{db}`")
    finally:
        await client.close()


async def measure_kind(kind: str, count: int, stack: StackSettings, opts: Options, progress: Progress) -> KindResult:
    registry = SchemaRegistry.load_default()
    run_id = isolation.run_id()
    kafka = isolation.kafka(stack.kafka_bootstrap, run_id)
    topic = kafka.topic(topic_for(kind))
    sink_db, direct_db, python_db = f"bench_sink_{run_id}", f"bench_direct_{run_id}", f"bench_py_{run_id}"
    progress(f"{kind}: making and encoding {count:,} records")
    records = make_records(kind, count)
    encoded = registry.encode_many(kind, records)
    keys = [r["device_id"].encode() for r in records]
    # Batches are cut by size, as in a backlog, for jobs too: the same rows per insert as
    # heartbeats (a job is about 50), not 20,000 jobs, which a run this size never fills,
    # so that every batch would wait out the age limit.
    children = [c.path[0] for c in layout(registry.reader(kind)).children]
    rows_per_record = (count + sum(len(r[a]) for r in records for a in children)) / count
    batch_records = max(1, round(opts.batch_max_rows / rows_per_record))
    del records
    result = KindResult(kind, count, 0, sum(map(len, encoded)) / 2**20, batch_records=batch_records)
    settings = SinkSettings(
        kafka=kafka, clickhouse=ClickHouseSettings(stack.clickhouse_url, database=sink_db),
        group_id="sink", kinds=kind, batch_max_records=batch_records,
        batch_max_age_s=BATCH_MAX_AGE_S,
    )

    async def fill() -> None:
        await produce(kafka, topic, encoded, keys)

    created: list[str] = []  # databases of the runs after the first (--repeat)
    await create_topic(kafka, kind)
    try:
        if opts.processes:
            # The sinks join on the empty topic first: a process that joins late would
            # find the others done, and the figure would time one process.
            progress(f"{kind}: {opts.processes} sink processes, Kafka -> ClickHouse")
            try:
                result.sink_s, result.sink_join_s, result.sink_cpu_s = await sink_processes(
                    settings, opts.processes, count, fill, progress)
            except RuntimeError as exc:
                result.notes.append(f"not measured: {exc}")
        else:
            progress(f"{kind}: producing to {topic}")
            await fill()
        del encoded, keys
        progress(f"{kind}: Kafka fetch alone")
        messages, result.fetch_s = await fetch_all(kafka, topic, count)
        progress(f"{kind}: decode and convert alone")
        batches = batches_of(messages, batch_records)
        del messages
        result.decode_s, result.convert_s, prepared = stage_times(kind, batches, registry)
        del batches
        result.rows = sum(t.rows for _, tables in prepared for t in tables)
        sink_dbs = [sink_db if i == 0 else f"{sink_db}_{i}" for i in range(opts.repeat)]
        direct_dbs = [direct_db if i == 0 else f"{direct_db}_{i}" for i in range(opts.repeat)]
        created += sink_dbs[1:] + direct_dbs[1:]
        cpu_s = 0.0
        for i in range(opts.repeat):
            run = f" (run {i + 1} of {opts.repeat})" if opts.repeat > 1 else ""
            progress(f"{kind}: direct clickhouse-connect insert of {result.rows:,} rows{run}")
            probe = ClickHouseSink(_in(settings, direct_dbs[i]), registry)
            await probe.migrate()
            await probe.client.close()
            result.direct_runs.append(
                await direct_insert(stack.clickhouse_url, direct_dbs[i], prepared, settings.max_inserts_in_flight))
            if not opts.processes:
                progress(f"{kind}: the sink, Kafka -> ClickHouse{run}")
                once = replace(_in(settings, sink_dbs[i]), group_id=f"{settings.group_id}-{i}")
                sink_s, result.sink_join_s, cpu = await sink_in_process(once, registry, count)
                result.sink_runs.append(sink_s)
                cpu_s += cpu
        del prepared
        result.direct_s = median(result.direct_runs)
        if not opts.processes:
            result.sink_s = median(result.sink_runs)
            result.sink_cpu_s = cpu_s / sum(result.sink_runs) * result.sink_s  # the share over all runs
            if eligible(layout(registry.reader(kind)), registry.reader(kind)):
                progress(f"{kind}: the sink with column decoding off (record by record in Python)")
                python_path = replace(_in(settings, python_db), group_id=settings.group_id + "-py", column_decode=False)
                result.python_path_s = (await sink_in_process(python_path, registry, count))[0]
        for db in sink_dbs if not opts.processes else [sink_db]:
            stored = await _count(stack.clickhouse_url, db, kind)
            if stored != count and result.sink_s:
                result.notes.append(f"sink stored {stored} rows of {count} in {db}")
    finally:
        await drop(stack.clickhouse_url, [sink_db, direct_db, python_db, *created])
        await _delete_topic(kafka, topic)
    progress(f"{kind}: sink {result.sink_rows_s:,.0f} rows/s, direct {result.direct_rows_s:,.0f} rows/s")
    return result


def _in(settings: SinkSettings, database: str) -> SinkSettings:
    """`settings` with the sink writing to `database`."""
    return replace(settings, clickhouse=replace(settings.clickhouse, database=database))


async def _count(url: str, database: str, table: str) -> int:
    host, port = url.split("//", 1)[1].rsplit(":", 1)
    client = await clickhouse_connect.get_async_client(host=host, port=int(port), compress=False)
    try:
        return int(str(await client.command(f"SELECT count() FROM `{database}`.`{table}`")))
    finally:
        await client.close()


async def _delete_topic(kafka: KafkaSettings, topic: str) -> None:
    client = clients.admin_client(kafka)
    await client.start()
    try:
        await client.delete_topics([topic, kafka.topic(DEAD_LETTER)])
    except Exception:  # noqa: BLE001 - cleanup only
        pass
    finally:
        await client.close()


# -- report ---------------------------------------------------------------------------


def report(results: Sequence[KindResult], opts: Options) -> str:
    where = f"{opts.processes} `printfleet sink` processes" if opts.processes else "the sink in this process"
    rows = []
    for r in results:
        rows.append((f"{r.kind}: sink, Kafka -> ClickHouse ({where})", fmt_int(r.sink_rows_s), fmt_int(r.sink_records_s),
                     "1.00", f"{r.sink_s:.2f} s after joining in {r.sink_join_s:.1f} s; batches of {r.batch_records:,} "
                     f"records; sink CPU {r.sink_cpu_s / r.sink_s:.0%} of a core"
                     f"{_spread(r.rows, r.sink_runs)}" if r.sink_s else ""))
        if r.python_path_s:
            py = r.rows / r.python_path_s
            rows.append((f"{r.kind}: the same sink with column decoding off (decode_records in Python)", fmt_int(py),
                         fmt_int(r.records / r.python_path_s), fmt_num(ratio(r.sink_rows_s, py)), f"{r.python_path_s:.2f} s"))
        rows.append((f"{r.kind}: direct clickhouse-connect insert of the same rows", fmt_int(r.direct_rows_s),
                     fmt_int(r.records / r.direct_s if r.direct_s else 0), fmt_num(ratio(r.sink_rows_s, r.direct_rows_s)),
                     f"{r.direct_s:.2f} s, columns already built{_spread(r.rows, r.direct_runs)}"))
        for stage, secs in (("Kafka fetch alone", r.fetch_s), ("decode_records alone", r.decode_s),
                            ("conversion to columns alone", r.convert_s)):
            rows.append((f"{r.kind}: {stage}", fmt_int(r.rows / secs if secs else 0), fmt_int(r.records / secs if secs else 0),
                         fmt_num(ratio(r.sink_rows_s, r.rows / secs if secs else 0)), f"{secs:.2f} s"))
    table = markdown_table(["path", "rows/s (all tables)", "records/s", "sink / this", "how"], rows,
                           [False, True, True, True, False])
    lines = [table, ""]
    verdicts = []
    for r in results:
        if r.kind == "heartbeat":
            ok = r.sink_rows_s >= HEARTBEAT_TARGET_ROWS_S
            verdicts.append((f"heartbeats >= {HEARTBEAT_TARGET_ROWS_S:,} rows/s end to end", fmt_int(r.sink_rows_s),
                             "met" if ok else "MISSED"))
        share = ratio(r.sink_rows_s, r.direct_rows_s)
        verdicts.append((f"{r.kind}: sink >= {SINK_TO_DIRECT_TARGET:g} x direct insert", fmt_num(share),
                         "met" if share >= SINK_TO_DIRECT_TARGET else "MISSED"))
    lines.append(markdown_table(["target", "measured", "verdict"], verdicts, [False, True, False]))
    for r in results:
        lines += [f"\n{r.kind}: {n}" for n in r.notes]
    return "\n".join(lines)


def _spread(rows: int, runs: Sequence[float]) -> str:
    if len(runs) < 2:
        return ""
    return f"; median of {len(runs)} runs, {fmt_int(rows / max(runs))}-{fmt_int(rows / min(runs))} rows/s"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="printfleet bench sink",
        description="Rows/s from Kafka into ClickHouse through the sink, for heartbeats and for jobs with parts "
        "and layers, against a direct clickhouse-connect insert of the same rows in the same run, with the rates of "
        "each stage alone. Needs the running stack. Tables (Markdown) on stdout, progress on stderr.",
        epilog="About a minute with the defaults. See docs/sink-bench.md.",
    )
    p.add_argument("--heartbeats", type=int, help=f"heartbeat records (default {Options.heartbeats:,})")
    p.add_argument("--jobs", type=int, help=f"job records, each with parts, layers, sub-jobs (default {Options.jobs:,})")
    p.add_argument("--kinds", default="heartbeat,job", help="heartbeat, job or both (default)")
    p.add_argument("--batch-max-rows", type=int, help=f"the sink's batch size, in rows: a batch holds that many "
                   f"heartbeats, or the jobs with about that many rows (default {Options.batch_max_rows:,})")
    p.add_argument("--processes", type=int, default=0, help="run N `printfleet sink` processes in one group instead "
                   "of the sink in this process (default 0: in process)")
    p.add_argument("--repeat", type=int, default=1, help="run the sink and the direct insert N times each, "
                   "alternating, and report the medians (default 1; the machine's spread is often ±25 %%)")
    p.add_argument("--quick", action="store_true", help="a fifth of the records")
    p.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    return p


def run(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    kinds = tuple(k.strip() for k in args.kinds.split(",") if k.strip())
    if not kinds or set(kinds) - {"heartbeat", "job"}:
        parser.error("--kinds takes heartbeat, job or both")
    base = Options()
    opts = Options(
        heartbeats=args.heartbeats or (base.heartbeats // 5 if args.quick else base.heartbeats),
        jobs=args.jobs or (base.jobs // 5 if args.quick else base.jobs),
        batch_max_rows=args.batch_max_rows or base.batch_max_rows,
        processes=max(0, args.processes), kinds=kinds, repeat=args.repeat,
    )
    if opts.repeat < 1:
        parser.error("--repeat must be >= 1")
    if opts.repeat > 1 and opts.processes:
        parser.error("--repeat times the sink in this process; it does not go with --processes")
    if min(opts.heartbeats, opts.jobs, opts.batch_max_rows) <= 0:
        parser.error("counts must be > 0")
    stack = StackSettings.from_env()
    print("# printfleet bench sink\n")
    print(f"Machine: {describe()}; Kafka at {stack.kafka_bootstrap}, ClickHouse at {stack.clickhouse_url}; "
          f"batches of about {opts.batch_max_rows:,} rows per partition, {PARTITIONS} partitions.\n")
    started = time.monotonic()
    results = []
    for kind in opts.kinds:
        count = opts.heartbeats if kind == "heartbeat" else opts.jobs
        results.append(asyncio.run(measure_kind(kind, count, stack, opts, _progress)))
    print(report(results, opts))
    print(f"\nTotal {time.monotonic() - started:.0f} s.")
    missed = any(
        (r.kind == "heartbeat" and r.sink_rows_s < HEARTBEAT_TARGET_ROWS_S)
        or ratio(r.sink_rows_s, r.direct_rows_s) < SINK_TO_DIRECT_TARGET for r in results
    )
    return 1 if args.strict and missed else 0
