"""Chaos run: `printfleet bench chaos --minutes N --seed S`, on the running stack.

The pipeline as separate processes (`printfleet collector`, `gateway`, `worker`, `sink`;
the simulated printers in this process) under seeded random faults: SIGKILL of the
collector, the gateway (also right after a commit, before its answer), the worker and the
sink; the collector's spool cut at a random byte; Kafka and ClickHouse stopped and started
again; on a cluster (`printfleet stack up --brokers 3`), SIGKILL of the broker that leads
the heartbeat topic's partitions, timed until a write is acknowledged again. A supervisor restarts any component that ends on its own, as systemd or Kubernetes
would. Then everything drains, and truth, Kafka and ClickHouse are compared record by
record:

- truth: every paged record (events, jobs, logs) the printers hold up to where the
  collector read them, with the ids the collector gives them;
- Kafka: every telemetry and output record, read committed; duplicates are ids seen twice;
- ClickHouse: every kind's table, `count()` against `uniqExact(record_id)`, and the ids
  against Kafka's.

A record of the truth missing from Kafka must be one the collector counted as lost in a
spool cut. The table goes to stdout; figures in docs/chaos.md. Its own topic prefix and
database (benchmarks/isolation.py), both removed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import os
import random
import re
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from aiokafka import TopicPartition
from aiokafka.errors import KafkaError

from benchmarks import isolation
from common.kafka import admin, clients
from common.kafka.settings import KafkaSettings
from common.kafka.topics import PARTITIONS, SITE_UTILISATION, TopicSpec, topic_for
from deploy.settings import StackSettings
from producers.collector.config import Cadence, CollectorSettings, render
from producers.collector.pseudonym import record_id
from producers.gateway.sites import SiteDirectory
from producers.simulator import SimulatorServer, SimulatorSettings
from producers.spool.spool import Spool
from schemas import SchemaRegistry
from schemas.kinds import CLOUD_KINDS, DEVICE_KINDS
from sinks.client import ClickHouseClient
from sinks.connection import ClickHouseSettings

Progress = Callable[[str], None]
CADENCE = Cadence(heartbeat_s=1, events_s=1, jobs_s=2, logs_s=5, counters_s=5, consumables_s=5, identity_s=60)
PAGED = (("events", "system_event"), ("jobs", "job"), ("logs", "device_log"))
FAULTS = ("kill collector", "kill gateway", "kill gateway after commit", "kill worker", "kill sink",
          "cut spool", "restart kafka", "restart clickhouse")
KILL_LEADER = "kill kafka leader"  # on a cluster of three or more brokers only
PROBE_TOPIC = "leader-probe"
_LOST = re.compile(r"event=spool_records_lost records=(\d+) by_kind=(\S+)")


@dataclass(frozen=True)
class ChaosOptions:
    minutes: float = 10.0
    seed: int = 1
    printers: int = 8
    acceleration: float = 60.0
    fault_every_s: float = 15.0
    drain_timeout_s: float = 300.0
    faults: tuple[str, ...] = FAULTS  # each comes once per round, in a random order


@dataclass
class Component:
    """One `printfleet <command>` child process that can be killed and started again."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log: Path
    proc: asyncio.subprocess.Process | None = None
    down: bool = False  # a fault keeps it down on purpose
    starts: int = 0

    async def start(self, **extra_env: str) -> None:
        with self.log.open("ab") as out:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "printfleet", *self.argv, env={**self.env, **extra_env},
                stdout=out, stderr=asyncio.subprocess.STDOUT)
        self.starts += 1
        self.down = False

    def alive(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    async def kill(self) -> None:
        if self.alive():
            assert self.proc is not None
            self.proc.send_signal(signal.SIGKILL)
            await self.proc.wait()

    async def stop(self, timeout_s: float = 60.0) -> int | None:
        """SIGTERM, SIGKILL after the timeout; the exit code."""
        if not self.alive():
            return self.proc.returncode if self.proc else None
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return await asyncio.wait_for(self.proc.wait(), timeout_s)
        except asyncio.TimeoutError:
            await self.kill()
            return self.proc.returncode


@dataclass
class ChaosReport:
    options: ChaosOptions
    faults: Counter[str] = field(default_factory=Counter)
    restarts: dict[str, int] = field(default_factory=dict)
    truth: Counter[str] = field(default_factory=Counter)  # paged kinds: records the printers hold
    kafka: dict[str, tuple[int, int]] = field(default_factory=dict)  # kind -> (messages, distinct ids)
    clickhouse: dict[str, tuple[int, int]] = field(default_factory=dict)  # kind -> (count, uniqExact)
    missing: Counter[str] = field(default_factory=Counter)  # truth ids not in Kafka
    spool_lost: Counter[str] = field(default_factory=Counter)  # what the collector counted lost
    mismatched: dict[str, int] = field(default_factory=dict)  # kind -> ids in Kafka xor ClickHouse
    site_rollups: tuple[int, int] = (0, 0)  # aggregates.utilisation.site: messages, distinct ids
    printers_with_state: int = 0  # distinct printers in ClickHouse's fleet_state
    # Per leader kill: seconds from the SIGKILL to the first write acknowledged (acks=all).
    leader_recovery_s: list[float] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def duplicated(self) -> int:
        return sum(m - d for m, d in self.kafka.values()) + sum(c - u for c, u in self.clickhouse.values()) + (
            self.site_rollups[0] - self.site_rollups[1])

    @property
    def unexplained(self) -> int:
        """Truth records missing from Kafka beyond what the spool counted as lost."""
        return sum(max(0, n - self.spool_lost.get(kind, 0)) for kind, n in self.missing.items())

    @property
    def ok(self) -> bool:
        return self.duplicated == 0 and self.unexplained == 0 and not any(self.mismatched.values())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def run_chaos(stack: StackSettings, options: ChaosOptions, progress: Progress,
                    kafka: KafkaSettings | None = None) -> ChaosReport:
    """Faults on the pipeline over `kafka` (default: the stack's PLAINTEXT listener; e.g.
    `stack.kafka_sasl_ssl()` to run every component over SASL_SSL)."""
    report = ChaosReport(options)
    started = time.monotonic()
    run = isolation.run_id()
    kafka = dataclasses.replace(kafka or stack.kafka(), topic_prefix=f"bench-{run}.")
    database = f"bench_{run}_chaos"
    home = Path(tempfile.mkdtemp(prefix=f"chaos-{run}-"))
    rng = random.Random(options.seed)
    registry = SchemaRegistry.load_default()
    sim_settings = SimulatorSettings(printers=options.printers, seed=options.seed, acceleration=options.acceleration,
                                     port=0, ca_dir=home / "site-ca")
    try:
        async with SimulatorServer(sim_settings) as sim:
            parts = _components(stack, kafka, database, home, sim, options)
            await _run(parts, stack, kafka, options, rng, report, progress, home)
            secret = "chaos-secret"
            devices = {p["printer_id"]: p["printer_uuid"] for p in sim.fleet.truth()["printers"]}
            truth = _truth(sim, devices, home / "collector" / "cursors.json", secret)
        await _compare(kafka, stack, database, registry, truth, report, home)
    finally:
        with contextlib.suppress(Exception):
            await isolation.drop_topics(kafka)
        with contextlib.suppress(Exception):
            client = ClickHouseClient(ClickHouseSettings(stack.clickhouse_url, database=database))
            await client.start()
            await client.command(f"DROP DATABASE IF EXISTS `{database}`")
            await client.close()
        if report.ok:
            shutil.rmtree(home, ignore_errors=True)
        else:
            progress(f"chaos: logs kept in {home}")
    report.seconds = time.monotonic() - started
    return report


def _components(stack: StackSettings, kafka: KafkaSettings, database: str, home: Path, sim: SimulatorServer,
                options: ChaosOptions) -> dict[str, Component]:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("PRINTFLEET_")},
           **isolation.environment(kafka), "PRINTFLEET_STATE_DIR": str(stack.state_dir)}
    token = "chaos-token-" + kafka.topic_prefix
    devices = [p["printer_uuid"] for p in sim.fleet.truth()["printers"]]
    sites = home / "sites.toml"
    sites.write_text(SiteDirectory.render([("chaos-site", token, devices)]))
    port = _free_port()
    collector = CollectorSettings(
        site_id="chaos-site", site_secret="chaos-secret", state_dir=home / "collector",
        gateway_url=f"http://127.0.0.1:{port}", gateway_token=token, printer_urls=tuple(sim.base_urls.values()),
        printer_ca_file=sim.ca_file, status_port=_free_port(), status_every_s=5, cadence=CADENCE,
    )
    (home / "site.toml").write_text(render(collector))
    logs = home / "logs"
    logs.mkdir()
    app_id = "chaos-" + kafka.topic_prefix.strip(".")
    return {
        "gateway": Component("gateway", ["gateway", "--sites-file", str(sites), "--port", str(port),
                                         "--instance-id", app_id, "--status-every-s", "5", "--ops-port", "0"],
                             env, logs / "gateway.log"),
        "collector": Component("collector", ["collector", "--config", str(home / "site.toml")], env,
                               logs / "collector.log"),
        # --ops-port 0: a free port each, so a run never collides with a demo or another run.
        "worker": Component("worker", ["worker", "--app-id", app_id, "--data-dir", str(home / "worker"), "--ops-port", "0",
                                       "--heartbeat-interval-s", f"{CADENCE.heartbeat_s * options.acceleration:g}"],
                            {**env, "PRINTFLEET_WORKER_STATUS_EVERY_S": "5", "PRINTFLEET_WORKER_SESSION_TIMEOUT_S": "10"},
                            logs / "worker.log"),
        "sink": Component("sink", ["sink", "--clickhouse-database", database, "--clickhouse-url", stack.clickhouse_url,
                                   "--batch-max-age-s", "1", "--status-every-s", "5", "--ops-port", "0"], env,
                           logs / "sink.log"),
    }


async def _run(parts: dict[str, Component], stack: StackSettings, kafka: KafkaSettings, options: ChaosOptions,
               rng: random.Random,
               report: ChaosReport, progress: Progress, home: Path) -> None:
    for part in parts.values():
        await part.start()
    supervisor = asyncio.create_task(_supervise(parts))
    try:
        deadline = time.monotonic() + options.minutes * 60
        faults = list(options.faults)
        queue: list[str] = []
        if not faults:  # the pipeline only, e.g. over SASL_SSL
            await asyncio.sleep(options.minutes * 60)
        # A run ends with the round under way: every kind of fault at least once, however
        # slow the machine.
        while faults and (time.monotonic() < deadline or queue):
            await asyncio.sleep(options.fault_every_s * rng.uniform(0.5, 1.5))
            if not queue:  # every kind of fault once per round, in a random order
                queue = rng.sample(faults, len(faults))
            fault = queue.pop()
            progress(f"chaos: {fault} ({time.monotonic() - deadline + options.minutes * 60:.0f} s)")
            if fault == KILL_LEADER:
                report.leader_recovery_s.append(await _kill_leader(stack, kafka, rng))
            else:
                await _inject(fault, parts, stack, rng, home)
            report.faults[fault] += 1
        progress("chaos: faults over; draining")
        await _drain(parts, options, progress, home)
    finally:
        supervisor.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await supervisor
        for part in parts.values():
            await part.stop()
        report.restarts = {name: part.starts - 1 for name, part in parts.items()}
        for line in (home / "logs" / "collector.log").read_text(errors="replace").splitlines():
            found = _LOST.search(line)
            if found:
                for item in found.group(2).split(","):
                    kind, _, n = item.partition(":")
                    report.spool_lost[kind] += int(n or 0)


async def _supervise(parts: dict[str, Component]) -> None:
    """Start again whatever ended on its own (a component that gave up on Kafka, say)."""
    while True:
        await asyncio.sleep(1.0)
        for part in parts.values():
            if not part.alive() and not part.down:
                await part.start()


async def _inject(fault: str, parts: dict[str, Component], stack: StackSettings, rng: random.Random,
                  home: Path) -> None:
    if fault.startswith("kill "):
        name = fault.split()[1]
        part = parts[name]
        part.down = True
        await asyncio.sleep(rng.uniform(0, 2))  # a random moment of its work
        await part.kill()
        await asyncio.sleep(rng.uniform(0.5, 3))
        if fault == "kill gateway after commit":
            await part.start(PRINTFLEET_GATEWAY_CRASH_AFTER_COMMIT="1")  # dies after its next commit
            with contextlib.suppress(asyncio.TimeoutError):
                assert part.proc is not None
                await asyncio.wait_for(part.proc.wait(), 30)
            await part.kill()
        await part.start()
    elif fault == "cut spool":
        part = parts["collector"]
        part.down = True
        await part.kill()
        segments = sorted((home / "collector" / "spool").glob("*.seg"), key=lambda p: p.stat().st_size)
        if segments and segments[-1].stat().st_size > 2:
            victim = segments[-1]
            size = victim.stat().st_size
            with open(victim, "r+b") as f:
                f.truncate(rng.randrange(size // 2, size))
        await part.start()
    else:
        server = "kafka" if fault == "restart kafka" else "clickhouse"
        await _restart_server(stack, server, rng.uniform(1, 5))


_LAUNCH = """
import asyncio
from deploy.settings import StackSettings
from deploy.{module} import {cls}
server = {cls}(StackSettings.from_env(){node})
asyncio.run(server.wait_ready(server.launch(), 90))
"""


async def _restart_server(stack: StackSettings, module: str, down_s: float) -> None:
    """Stop a stack server as `printfleet stack down` does and start it again after `down_s`."""
    from deploy.clickhouse import ClickHouseServer
    from deploy.kafka import KafkaServer

    server: KafkaServer | ClickHouseServer = KafkaServer(stack) if module == "kafka" else ClickHouseServer(stack)
    await server.process.stop(stack.stop_timeout_s)
    await asyncio.sleep(down_s)
    await _launch_server(stack, module)


async def _launch_server(stack: StackSettings, module: str, node: int = 1) -> None:
    """Start a stack server from a process of its own (so it outlives this one)."""
    env = {**os.environ, **{f"PRINTFLEET_{f.name.upper()}": str(getattr(stack, f.name))
                            for f in dataclasses.fields(stack) if getattr(stack, f.name) is not None}}
    code = _LAUNCH.format(module=module, cls="KafkaServer" if module == "kafka" else "ClickHouseServer",
                          node=f", {node}" if module == "kafka" else "")
    proc = await asyncio.create_subprocess_exec(sys.executable, "-c", code, env=env)
    if await proc.wait() != 0:
        raise RuntimeError(f"{module} did not start again")


async def _kill_leader(stack: StackSettings, kafka: KafkaSettings, rng: random.Random) -> float:
    """SIGKILL the broker leading partition 0 of the heartbeat topic, mid-traffic; return
    the seconds until a partition it led accepts a write again (acks=all: a new leader
    elected and min.insync.replicas still met); start it again a little later.

    The probe writes to a topic of its own (`leader-probe`, replicated like the rest, one
    partition per broker), at a partition the victim led: a pipeline topic would carry
    the probe to the worker and the sink.
    """
    from deploy.kafka import KafkaServer

    probe = TopicSpec(PROBE_TOPIC, stack.kafka_brokers)
    await admin.apply(kafka, [probe])
    leaders = await _leaders(kafka, {topic_for("heartbeat"): 1, PROBE_TOPIC: stack.kafka_brokers})
    victim = leaders[topic_for("heartbeat")][0]
    partition = next(p for p, leader in leaders[PROBE_TOPIC].items() if leader == victim) \
        if victim in leaders[PROBE_TOPIC].values() else None
    pid = KafkaServer(stack, victim).process.pid()
    if pid is None or partition is None:
        raise RuntimeError(f"broker {victim} leads no probe partition or has no process in {stack.state_dir}")
    producer = clients.producer(kafka, request_timeout_ms=5000)
    try:
        await producer.start()
        killed = time.monotonic()
        os.kill(pid, signal.SIGKILL)
        while True:
            try:
                await asyncio.wait_for(producer.send_and_wait(kafka.topic(PROBE_TOPIC), b"probe", partition=partition), 6)
                break
            except (KafkaError, asyncio.TimeoutError):
                await asyncio.sleep(0.05)
        recovered = time.monotonic() - killed
    finally:
        await producer.stop()
    await asyncio.sleep(rng.uniform(2, 5))
    await _launch_server(stack, "kafka", victim)
    return recovered


async def _leaders(kafka: KafkaSettings, partitions: dict[str, int], timeout_s: float = 30.0) -> dict[str, dict[int, int]]:
    """Registry topic -> partition -> the node id of its leader, once each topic's first
    `partitions[topic]` partitions have a leader (a topic made a moment ago, or one whose
    leader moved, may have none yet). Raises TimeoutError after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    client = clients.admin_client(kafka)
    try:
        await client.start()
        while True:
            described = await client.describe_topics([kafka.topic(t) for t in partitions])
            leaders = {d["topic"].removeprefix(kafka.topic_prefix): {p["partition"]: p["leader"] for p in d["partitions"]
                                                                     if p["leader"] >= 0}
                       for d in described}
            if all(all(p in leaders.get(t, {}) for p in range(n)) for t, n in partitions.items()):
                return leaders
            if time.monotonic() > deadline:
                raise TimeoutError(f"no leader for some partitions of {sorted(partitions)} after {timeout_s:.0f} s: {leaders}")
            await asyncio.sleep(0.5)
    finally:
        await client.close()


async def _drain(parts: dict[str, Component], options: ChaosOptions, progress: Progress, home: Path) -> None:
    """The collector stops polling and uploads what it holds (again until its spool is
    empty), then the worker and the sink catch up."""
    deadline = time.monotonic() + options.drain_timeout_s
    collector = parts["collector"]
    while True:
        collector.down = True
        await collector.stop()
        pending = await asyncio.to_thread(spool_pending, home / "collector" / "spool")
        if pending == 0:
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"the collector's spool still holds {pending} records")
        progress(f"chaos: the spool holds {pending} records; the collector uploads again")
        await collector.start()
        await asyncio.sleep(15)
    progress("chaos: the collector is done; waiting for the worker and the sink")
    await _settle(parts, deadline)


def spool_pending(spool_dir: Path) -> int:
    """Records a collector's spool still holds (the collector stopped)."""
    spool = Spool(spool_dir, max_bytes=256 << 20)
    spool.open()
    try:
        return spool.stats().pending_records
    finally:
        spool.close()


async def _settle(parts: dict[str, Component], deadline: float) -> None:
    """Until the worker's and the sink's status lines say lag 0, and the sink's count of
    records stored stays the same, for 20 s."""
    quiet_since, stored = time.monotonic(), ""
    while time.monotonic() < deadline:
        await asyncio.sleep(2)
        worker = _last_line(parts["worker"].log, "worker: applied")
        sink = _last_line(parts["sink"].log, "sink: running")
        now_stored = sink.split(" records stored", 1)[0]
        caught_up = worker.endswith("lag 0") and " lag 0 " in sink
        if not caught_up or now_stored != stored:
            quiet_since, stored = time.monotonic(), now_stored
        elif time.monotonic() - quiet_since > 20:
            return
    raise RuntimeError("the worker and the sink did not catch up in time")


def _last_line(log: Path, prefix: str) -> str:
    lines = [line for line in log.read_text(errors="replace").splitlines() if line.startswith(prefix)]
    return lines[-1].strip() if lines else ""


def _truth(sim: SimulatorServer, devices: dict[str, str], cursors_file: Path, secret: str) -> dict[str, set[str]]:
    """Per paged kind, the ids of every record the printers hold up to the collector's cursors."""
    cursors = json.loads(cursors_file.read_text()) if cursors_file.exists() else {}
    out: dict[str, set[str]] = {kind: set() for _, kind in PAGED}
    for pid, device in devices.items():
        for endpoint, kind in PAGED:
            last = int(cursors.get(device, {}).get(endpoint, 0))
            after = 0
            while after < last:
                page = sim.fleet.read(pid, endpoint, after=after)
                entries = [e for e in page[endpoint] if int(e["seq"]) <= last]
                out[kind] |= {record_id(secret.encode(), device, kind, endpoint, str(e["seq"])) for e in entries}
                if not page["more"] or not entries:
                    break
                after = int(page[endpoint][-1]["seq"])
    return out


async def _read_ids(kafka: KafkaSettings, registry: SchemaRegistry, topics: list[str]) -> dict[str, Counter[str]]:
    """Registry topic name -> record id -> how often it is in Kafka (committed records)."""
    consumer = clients.consumer(kafka, group_id=None, auto_offset_reset="earliest")
    try:
        await consumer.start()
        tps = [TopicPartition(kafka.topic(t), p) for t in topics for p in range(PARTITIONS)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        end = await consumer.end_offsets(tps)
        seen: dict[str, Counter[str]] = {t: Counter() for t in topics}
        while any([await consumer.position(tp) < end[tp] for tp in tps]):
            for tp, messages in (await consumer.getmany(timeout_ms=500, max_records=20_000)).items():
                name = tp.topic.removeprefix(kafka.topic_prefix)
                seen[name].update(str(registry.decode(m.value).record["record_id"]) for m in messages)
        return seen
    finally:
        await consumer.stop()


async def _compare(kafka: KafkaSettings, stack: StackSettings, database: str, registry: SchemaRegistry,
                   truth: dict[str, set[str]], report: ChaosReport, home: Path) -> None:
    kinds = [*DEVICE_KINDS, *CLOUD_KINDS]
    seen = await _read_ids(kafka, registry, [topic_for(k) for k in kinds] + [SITE_UTILISATION])
    site = seen.pop(SITE_UTILISATION)
    report.site_rollups = (sum(site.values()), len(site))
    client = ClickHouseClient(ClickHouseSettings(stack.clickhouse_url, database=database))
    await client.start()
    try:
        for kind in kinds:
            ids = seen[topic_for(kind)]
            report.kafka[kind] = (sum(ids.values()), len(ids))
            rows = await client.rows(f"SELECT count(), uniqExact(record_id) FROM {kind}")
            count, unique = (int(rows[0][0]), int(rows[0][1])) if rows else (0, 0)
            report.clickhouse[kind] = (count, unique)
            stored = {str(r[0]) for r in await client.rows(f"SELECT DISTINCT record_id FROM {kind}")}
            report.mismatched[kind] = len(stored ^ set(ids))
            if kind in truth:
                report.truth[kind] = len(truth[kind])
                report.missing[kind] = len(truth[kind] - set(ids))
        report.printers_with_state = int((await client.rows("SELECT uniqExact(device_id) FROM fleet_state"))[0][0])
    finally:
        await client.close()


def format_report(report: ChaosReport) -> str:
    o = report.options
    lines = [
        f"## chaos: {o.minutes:g} min, seed {o.seed}, {o.printers} printers at x{o.acceleration:g}, "
        f"a fault every ~{o.fault_every_s:g} s",
        "",
        "| fault | injected |", "|---|---:|",
        *(f"| {fault} | {report.faults.get(fault, 0)} |" for fault in o.faults),
        "",
        "restarts (faults and the supervisor): " + ", ".join(f"{k} {v}" for k, v in report.restarts.items()),
        "",
        "| kind | truth | Kafka messages | Kafka ids | ClickHouse rows | ClickHouse ids | ids not in both | "
        "missing from truth | counted lost by the spool |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for kind, (messages, ids) in report.kafka.items():
        rows, unique = report.clickhouse.get(kind, (0, 0))
        truth = report.truth.get(kind)
        lines.append(f"| {kind} | {'' if truth is None else truth} | {messages} | {ids} | {rows} | {unique} | "
                     f"{report.mismatched.get(kind, 0)} | {report.missing.get(kind, '')} | "
                     f"{report.spool_lost.get(kind, '')} |")
    lines += [
        "",
        f"aggregates.utilisation.site: {report.site_rollups[0]} messages, {report.site_rollups[1]} ids; "
        f"printers in fleet_state: {report.printers_with_state} of {o.printers}",
        *([f"leader killed -> first write acknowledged again: "
           f"{', '.join(f'{s:.2f} s' for s in report.leader_recovery_s)}"] if report.leader_recovery_s else []),
        f"duplicated: {report.duplicated}; missing beyond the spool's count: {report.unexplained}; "
        f"verdict: {'PASS' if report.ok else 'FAIL'} ({report.seconds:.0f} s)",
    ]
    return "\n".join(lines)


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="printfleet bench chaos", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0, help="minutes of faults (default 10)")
    parser.add_argument("--seed", type=int, default=1, help="the faults' random seed (default 1)")
    parser.add_argument("--printers", type=int, default=8, help="simulated printers (default 8)")
    parser.add_argument("--fault-every-s", type=float, default=15.0, help="mean seconds between faults (default 15)")
    parser.add_argument("--no-server-restarts", action="store_true", help="no Kafka or ClickHouse restarts")
    args = parser.parse_args(argv)
    stack = StackSettings.from_env()
    faults = tuple(f for f in FAULTS if not (args.no_server_restarts and f.startswith("restart")))
    if stack.kafka_brokers >= 3:
        faults += (KILL_LEADER,)
    options = ChaosOptions(minutes=args.minutes, seed=args.seed, printers=args.printers,
                           fault_every_s=args.fault_every_s, faults=faults)

    def progress(line: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {line}", file=sys.stderr, flush=True)

    report = asyncio.run(run_chaos(stack, options, progress))
    print(format_report(report))
    return 0 if report.ok else 1


