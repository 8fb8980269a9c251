"""The parts of `printfleet demo` beyond the site: the stream worker as a child process,
waiting for the worker and the sink to catch up, and the closing analytics summary.

Called only by `printfleet/cmd_demo.py`.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import sys
import time
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from common.errors import PrintfleetError
from common.kafka.settings import KafkaSettings
from printfleet import cmd_query
from sinks import queries
from sinks.clickhouse import ClickHouseSink, SinkSettings
from streams import catalogue_publisher

# What the summary shows, in this order: named queries of `printfleet query`.
SUMMARY_QUERIES = ("kpi-trend", "top-event-codes", "job-durations", "alerts", "advisories", "benchmarks")
SUMMARY_ROWS = 8
_TERMINAL_CODES = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")  # Faust's spinner hides and shows the cursor


class WorkerFailed(PrintfleetError):
    """The stream worker exited on its own; the message holds the end of its output.
    Not retriable: `printfleet demo` stops and shows it."""

    retriable = False


class DemoSetupError(PrintfleetError):
    """The demo's own files cannot be made or read (the release-signing key). Not
    retriable: the message names the file."""

    retriable = False


def signing_key(path: Path) -> Ed25519PrivateKey:
    """The maker's release-signing key of the demo, made once (`ensure_signing_key`).
    Raises DemoSetupError."""
    try:
        return catalogue_publisher.ensure_signing_key(path)
    except (OSError, ValueError) as exc:
        raise DemoSetupError(f"release-signing key {path}: {exc}") from None


def worker_kafka_flags(kafka: KafkaSettings) -> list[str]:
    """The flags that give `printfleet worker` exactly these Kafka settings."""
    return ["--kafka-bootstrap", kafka.bootstrap_servers, "--topic-prefix", kafka.topic_prefix,
            "--replication-factor", str(kafka.replication_factor),
            "--min-insync-replicas", str(kafka.min_insync_replicas)]


class WorkerProcess:
    """`python -m printfleet worker` on the stack's Kafka; its output lines are printed
    with a `worker |` prefix (its status line every 2 s, when it changed), and `lag` is
    the lag its last status line gave (None before one). `stop()` sends SIGTERM, waits
    for Faust's clean shutdown (SIGKILL after 60 s) and is safe to repeat."""

    def __init__(self, kafka: KafkaSettings, data_dir: Path, *, heartbeat_interval_s: float,
                 app_id: str = "printfleet-demo-streams", release_key_file: Path | None = None) -> None:
        # Its metrics and health: a port free now, so the demo can say where before it starts.
        self.ops_url = f"http://127.0.0.1:{free_port()}"
        self.kafka = kafka
        self.data_dir = data_dir
        self.app_id = app_id
        self.heartbeat_interval_s = heartbeat_interval_s
        self.release_key_file = release_key_file  # the maker's public key: the worker advises
        self._proc: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None
        self._tail: list[str] = []
        self._stopping = False
        self.lag: int | None = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    async def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("PRINTFLEET_WORKER_")}
        env["PRINTFLEET_WORKER_STATUS_EVERY_S"] = "2"  # its lag tells when the demo may sum up
        self._proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "printfleet", "worker", *worker_kafka_flags(self.kafka),
            "--app-id", self.app_id, "--data-dir", str(self.data_dir),
            # Heartbeats are event time, and the demo's clock runs fast: the interval
            # between two of a printer's heartbeats is the cadence times the acceleration.
            "--heartbeat-interval-s", f"{self.heartbeat_interval_s:g}",
            "--ops-port", self.ops_url.rsplit(":", 1)[1],
            *(["--release-key-file", str(self.release_key_file)] if self.release_key_file else []),
            env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )
        self._reader = asyncio.create_task(self._forward())

    async def _forward(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        status = ""
        while line := await self._proc.stdout.readline():
            text = _TERMINAL_CODES.sub("", line.decode(errors="replace")).rstrip()
            self._tail = (self._tail + [text])[-20:]
            if text.startswith("worker: applied"):
                found = re.search(r"lag (\d+)", text)
                self.lag = int(found.group(1)) if found else None
                if text == status:
                    continue  # nothing new: not worth a line
                status = text
            if text:
                print(f"  worker | {text}", flush=True)

    def check(self) -> None:
        """Raise `WorkerFailed` if the worker exited without being asked to."""
        if self._proc is not None and self._proc.returncode is not None and not self._stopping:
            raise WorkerFailed(f"the stream worker exited with {self._proc.returncode}:\n" + "\n".join(self._tail))

    async def stop(self) -> None:
        proc = self._proc
        if proc is None or self._stopping:
            return
        self._stopping = True
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), 60)
            except asyncio.TimeoutError:
                proc.kill()
                await proc.wait()
        if self._reader is not None:
            await self._reader


def free_port() -> int:
    """A loopback port nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def print_ops(urls: dict[str, str]) -> None:
    """Where each component's metrics and health are, one line each."""
    print("metrics (Prometheus text, docs/metrics.md); health at /livez and /readyz beside each:")
    for name, url in urls.items():
        print(f"  {name:<9} {url}/metrics   {url}/readyz")


async def wait_caught_up(
    sink: ClickHouseSink, worker: WorkerProcess | None, sink_task: asyncio.Task[None], *, settle_s: float,
    timeout_s: float,
) -> None:
    """Wait until the sink (and the worker, if given) have no lag for `settle_s` seconds,
    or `timeout_s` passed (then say so and go on). Raises what the sink raised."""
    deadline = time.monotonic() + timeout_s
    quiet_since: float | None = None
    while time.monotonic() < deadline:
        if sink_task.done():
            sink_task.result()
            return
        if worker is not None:
            worker.check()
        lag = sum((await sink.status()).lag.values())
        # The worker commits no offsets (its partition books are its position): its own
        # status line says how far behind it is.
        worker_lag = worker.lag if worker else 0
        if lag == 0 and worker_lag == 0:
            quiet_since = quiet_since or time.monotonic()
            if time.monotonic() - quiet_since >= settle_s:
                return
        else:
            quiet_since = None
        await asyncio.sleep(0.5)
    print(f"  (not caught up after {timeout_s:.0f} s: sink lag {lag}, worker lag {worker_lag}; going on)", flush=True)


async def analytics_summary(settings: SinkSettings, days: int = 30) -> None:
    """Rows per table, then a few named queries, as `printfleet query` prints them."""
    query_settings = settings.clickhouse
    print(f"\n== analytics from ClickHouse ({query_settings.url}, database {query_settings.database}) ==", flush=True)
    try:
        columns, rows = await cmd_query.execute(
            query_settings,
            "SELECT table, sum(rows) AS rows FROM system.parts WHERE database = currentDatabase() AND active "
            "AND table NOT IN ('schema_migrations') GROUP BY table HAVING rows > 0 ORDER BY table",
            None,
        )
        print("\nrows per table (everything the sink stored so far, this run and earlier ones)")
        print(cmd_query.render(columns, rows, "table"), end="")
        for name in SUMMARY_QUERIES:
            named = queries.get(name)
            columns, rows = await cmd_query.execute(query_settings, named.sql, {"site": "", "days": days})
            more = f" (first {SUMMARY_ROWS} of {len(rows)})" if len(rows) > SUMMARY_ROWS else ""
            print(f"\n{name}: {named.description}{more}  [printfleet query {name}]")
            print(cmd_query.render(columns, rows[:SUMMARY_ROWS], "table"), end="", flush=True)
    except PrintfleetError as exc:
        print(f"analytics unavailable: {exc}", file=sys.stderr)
