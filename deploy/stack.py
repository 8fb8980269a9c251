"""`printfleet stack up|down|status`: the local Kafka broker and ClickHouse server together.

An exclusive lock on the state folder serialises concurrent `up`/`down` calls, and each
server's PID file guards its data folder, so a second `up` can never start a second broker
on the same data.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Protocol

from deploy.clickhouse import ClickHouseServer
from deploy.errors import AlreadyRunning, StackError
from deploy.process import ServerProcess, rss_mib, uptime_s
from deploy.settings import StackSettings


class Server(Protocol):
    @property
    def process(self) -> ServerProcess: ...
    def check_ports(self) -> None: ...
    def launch(self) -> int: ...
    async def wait_ready(self, pid: int, timeout_s: float) -> float: ...
    async def answers(self) -> bool: ...
    def version(self) -> str | None: ...


@dataclass(frozen=True)
class Started:
    name: str
    pid: int
    address: str
    ready_s: float


@dataclass(frozen=True)
class Health:
    name: str
    address: str
    pid: int | None
    healthy: bool
    rss_mib: float | None = None
    uptime_s: float | None = None
    version: str | None = None


def _servers(settings: StackSettings, *, found: bool = False) -> list[tuple[Server, str]]:
    """The stack's servers; with `found`, also every Kafka node whose folder exists (so
    that `down` and `status` see a three-node cluster without being told)."""
    from deploy.kafka import KafkaServer  # imports aiokafka: only when needed

    nodes = set(range(1, settings.kafka_brokers + 1))
    if found:
        nodes |= {1} | {int(p.name.rsplit("-", 1)[1]) for p in settings.state_dir.glob("kafka-[0-9]")}
    kafka = [KafkaServer(settings, n) for n in sorted(nodes)]
    return [
        *((k, f"kafka://127.0.0.1:{k.port} (SASL_SSL :{settings.kafka_node_port(k.node, settings.kafka_sasl_ssl_port)}, "
              f"SSL :{settings.kafka_node_port(k.node, settings.kafka_ssl_port)})") for k in kafka),
        (ClickHouseServer(settings), f"{settings.clickhouse_url} (native tcp 127.0.0.1:{settings.clickhouse_tcp_port})"),
    ]


@contextmanager
def _locked(settings: StackSettings) -> Iterator[None]:
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(settings.state_dir / "stack.lock", os.O_CREAT | os.O_RDWR, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise AlreadyRunning(
                f"another `printfleet stack` command is working on {settings.state_dir}"
            ) from None
        yield
    finally:
        os.close(fd)


async def up(settings: StackSettings) -> list[Started]:
    """Start both servers and wait until each answers; on failure stop what was started."""
    with _locked(settings):
        servers = _servers(settings)
        for server, _ in servers:
            pid = server.process.pid()
            if pid is not None:
                raise AlreadyRunning(
                    f"{server.process.name} is already running (pid {pid}) on "
                    f"{settings.state_dir}; use `printfleet stack status` or `printfleet stack down`"
                )
        for server, _ in servers:
            server.check_ports()
        launched: list[tuple[Server, str, int]] = []
        try:
            for server, address in servers:
                launched.append((server, address, server.launch()))
            # Nodes of a cluster list each other before all listen: connection refused
            # then is expected, not worth aiokafka's ERROR lines.
            logger = logging.getLogger("aiokafka")
            level = logger.level
            logger.setLevel(logging.CRITICAL)
            try:
                waits = await asyncio.gather(
                    *(s.wait_ready(pid, settings.start_timeout_s) for s, _, pid in launched)
                )
            finally:
                logger.setLevel(level)
        except BaseException:
            await asyncio.gather(*(s.process.stop(settings.stop_timeout_s, pid) for s, _, pid in launched))
            raise
        return [
            Started(s.process.name, pid, address, ready_s)
            for (s, address, pid), ready_s in zip(launched, waits)
        ]


async def down(settings: StackSettings) -> dict[str, bool]:
    """Stop both servers (SIGTERM, then SIGKILL after the timeout). Safe when not running.

    Returns, per server, whether it was running and exited on SIGTERM (False: killed).
    """
    with _locked(settings):
        servers = [s for s, _ in _servers(settings, found=True)]
        results = await asyncio.gather(*(s.process.stop(settings.stop_timeout_s) for s in servers))
        return {s.process.name: ok for s, ok in zip(servers, results)}


async def status(settings: StackSettings) -> list[Health]:
    report = []
    for server, address in _servers(settings, found=True):
        pid = server.process.pid()
        if pid is None:
            report.append(Health(server.process.name, address, None, False))
            continue
        healthy = await server.answers()
        report.append(
            Health(
                server.process.name, address, pid, healthy,
                rss_mib=rss_mib(pid), uptime_s=uptime_s(pid),
                version=await asyncio.to_thread(server.version) if healthy else None,
            )
        )
    return report


__all__ = ["Health", "StackError", "Started", "down", "status", "up"]
