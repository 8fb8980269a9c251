"""Shared pieces of `printfleet bench ingest` (benchmarks/ingest/main.py).

- `SimulatorProcess`: `python -m printfleet.cli simulate` in its own process, so the
  simulator's CPU is never charged to what a part measures;
- `ByteRelay`: a TCP relay in front of a server that counts the bytes that cross it in
  each direction (TLS records, HTTP headers and bodies: everything the sockets carry,
  but not the TCP/IP headers);
- `CloudSite`: the gateway's certificate (a "cloud" CA) and a sites file enrolling
  devices under one site token;
- `ProcessSample`: CPU ticks and RSS of a process, from /proc.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import ssl
import sys
import tempfile
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from common.errors import PrintfleetError
from common.tls import ensure_site_ca, issue_server_certificate
from producers.gateway.sites import SiteDirectory


class BenchError(PrintfleetError):
    """A bench could not run (a helper process did not start, Kafka is away); not retriable."""

    retriable = False


class ByteRelay:
    """Accepts on 127.0.0.1:<port> and relays every connection to `target`, counting bytes.

    `up` counts client -> server, `down` server -> client, `connections` accepted ones.
    The certificate of the target still verifies: it names 127.0.0.1, not a port.
    """

    def __init__(self, target_host: str, target_port: int) -> None:
        self._target = (target_host, target_port)
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.up = self.down = self.connections = 0
        self.port = 0

    async def __aenter__(self) -> ByteRelay:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self

    async def __aexit__(self, *exc: object) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            await server.wait_closed()

    def url(self, scheme: str) -> str:
        return f"{scheme}://127.0.0.1:{self.port}"

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.connections += 1
        try:
            up_reader, up_writer = await asyncio.open_connection(*self._target)
        except OSError:
            writer.close()
            self._tasks.discard(task)
            return
        try:
            await asyncio.gather(self._pump(reader, up_writer, True), self._pump(up_reader, writer, False))
        finally:
            for w in (writer, up_writer):
                w.close()
            self._tasks.discard(task)

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, upward: bool) -> None:
        try:
            while data := await reader.read(1 << 16):
                if upward:
                    self.up += len(data)
                else:
                    self.down += len(data)
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            with contextlib.suppress(OSError, RuntimeError):
                writer.write_eof()


@dataclass(frozen=True)
class CloudSite:
    """One enrolled site: its token, its devices, the gateway's certificate files."""

    site_id: str
    token: str
    sites_file: Path
    ca_file: Path
    cert_file: Path
    key_file: Path

    @classmethod
    def create(cls, directory: Path, devices: list[str]) -> CloudSite:
        """Issue the gateway certificate (for 127.0.0.1) and write the sites file."""
        cloud = directory / "cloud-ca"
        cert = issue_server_certificate(ensure_site_ca(cloud, "printfleet bench cloud"), cloud)
        site_id, token = f"bench-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
        sites_file = directory / "sites.toml"
        sites_file.write_text(SiteDirectory.render([(site_id, token, devices)]))
        return cls(site_id, token, sites_file, cloud / "ca.pem", cert.cert_file, cert.key_file)

    def client_ssl(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_file))


class SimulatorProcess:
    """`printfleet simulate` in a child process on a free port; `async with` it.

    After entry: `url`, `ca_file`, `base_urls` and `devices` (printer UUIDs, same order).
    Raises BenchError if the child does not print its URLs within `timeout_s`.
    """

    def __init__(self, printers: int, acceleration: float, *, start: str, seed: int = 42, timeout_s: float = 60.0,
                 extra_args: Sequence[str] = ()) -> None:
        """`start`: the simulated start time, ISO 8601 (Kafka refuses records stamped more
        than an hour ahead of its clock, so accelerated runs start in the past).
        `extra_args`: more `printfleet simulate` flags (e.g. the OPC UA ones)."""
        self._args = ["--printers", str(printers), "--acceleration", repr(acceleration), "--seed", str(seed),
                      "--start", start, *extra_args]
        self._timeout_s = timeout_s
        self._tmp = tempfile.TemporaryDirectory(prefix="bench-sim-")
        self._proc: asyncio.subprocess.Process | None = None
        self._drain: asyncio.Task[None] | None = None
        self.url = ""
        self.ca_file = Path()
        self.base_urls: list[str] = []
        self.devices: list[str] = []
        self.pid = 0

    async def __aenter__(self) -> SimulatorProcess:
        with open(Path(self._tmp.name) / "stderr.log", "wb") as stderr:  # the child keeps its own copy
            self._proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "printfleet.cli", "simulate", *self._args,
                "--port", "0", "--ca-dir", str(Path(self._tmp.name) / "site-ca"), "--progress-interval", "3600",
                stdout=asyncio.subprocess.PIPE, stderr=stderr,
            )
        self.pid = self._proc.pid
        try:
            await asyncio.wait_for(self._read_banner(), self._timeout_s)
            printers = await self.control("/sim/printers")
        except (asyncio.TimeoutError, aiohttp.ClientError, OSError) as exc:
            await self.__aexit__()
            log = (Path(self._tmp.name) / "stderr.log").read_text(errors="replace")[-2000:]
            raise BenchError(f"the simulator did not start: {exc!r}\n{log}") from None
        self.base_urls = [p["base_url"] for p in printers["printers"]]
        self.devices = [p["printer_uuid"] for p in printers["printers"]]
        return self

    async def __aexit__(self, *exc: object) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except asyncio.TimeoutError:
                proc.kill()
                await proc.wait()
        if self._drain is not None:
            self._drain.cancel()
            await asyncio.gather(self._drain, return_exceptions=True)
        self._tmp.cleanup()

    async def _read_banner(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        stdout = self._proc.stdout
        while not (self.url and self.ca_file.name):
            line = (await stdout.readline()).decode()
            if not line:
                raise OSError("the simulator exited")
            if line.startswith("site CA:"):
                self.ca_file = Path(line.split(":", 1)[1].strip())
            elif line.startswith("control:"):
                self.url = line.split()[1].removesuffix("/sim/printers")
        self._drain = asyncio.create_task(self._discard(stdout))

    @staticmethod
    async def _discard(stdout: asyncio.StreamReader) -> None:
        while await stdout.readline():
            pass

    async def control(self, path: str) -> Any:
        """GET a control endpoint of the simulator (e.g. /sim/clock) as JSON."""
        context = ssl.create_default_context(cafile=str(self.ca_file))
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
            async with session.get(self.url + path, ssl=context) as resp:
                resp.raise_for_status()
                return await resp.json()

    async def now_ms(self) -> int:
        return int((await self.control("/sim/clock"))["now_ms"])


@dataclass(frozen=True)
class ProcessSample:
    """CPU seconds (user + system, all threads) and resident memory of one process."""

    cpu_s: float
    rss_bytes: int
    peak_rss_bytes: int

    @classmethod
    def of(cls, pid: int) -> ProcessSample:
        """Read /proc/<pid>/stat and /proc/<pid>/status (Linux only). Raises OSError."""
        stat = Path(f"/proc/{pid}/stat").read_text()
        status = Path(f"/proc/{pid}/status").read_text()
        return cls(cpu_seconds(stat, os.sysconf("SC_CLK_TCK")), status_kib(status, "VmRSS") * 1024,
                   status_kib(status, "VmHWM") * 1024)


def cpu_seconds(stat: str, ticks_per_s: int) -> float:
    """utime + stime of a /proc/<pid>/stat line, in seconds. The command name (field 2)
    may hold spaces and parentheses, so fields are counted after its last ')'."""
    fields = stat.rsplit(")", 1)[1].split()
    # After the name: state is field 3, so utime (14) and stime (15) are indexes 11 and 12.
    return (int(fields[11]) + int(fields[12])) / ticks_per_s


def status_kib(status: str, key: str) -> int:
    """A `Key:   123 kB` line of /proc/<pid>/status, in KiB. Raises KeyError."""
    for line in status.splitlines():
        name, _, value = line.partition(":")
        if name == key:
            return int(value.split()[0])
    raise KeyError(key)


def machine_jiffies(stat: str | None = None) -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs from the first line of /proc/stat (or `stat`)."""
    if stat is None:
        stat = Path("/proc/stat").read_text()
    values = [int(v) for v in stat.splitlines()[0].split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    return sum(values) - idle, sum(values)


def busy_fraction(before: tuple[int, int], after: tuple[int, int]) -> float:
    """Share of all CPUs' time that was busy between two `machine_jiffies` readings."""
    total = after[1] - before[1]
    return (after[0] - before[0]) / total if total > 0 else 0.0
