"""A stack of a test's own (own folder, own free ports), for tests that stop and start
Kafka or ClickHouse: never the session's shared stack, which other tests are using.

    with running_stack(folder) as settings:       # `printfleet stack up`, then down
        await stop_server(KafkaServer(settings), settings)
        await start_server(KafkaServer(settings), settings)
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

from deploy.clickhouse import ClickHouseServer
from deploy.kafka import KafkaServer
from deploy.settings import StackSettings
from ports import free_ports


def stack_env(settings: StackSettings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PRINTFLEET_")}
    env.update(
        PRINTFLEET_STATE_DIR=str(settings.state_dir), PRINTFLEET_KAFKA_PORT=str(settings.kafka_port),
        PRINTFLEET_KAFKA_CONTROLLER_PORT=str(settings.kafka_controller_port),
        PRINTFLEET_KAFKA_SASL_SSL_PORT=str(settings.kafka_sasl_ssl_port),
        PRINTFLEET_KAFKA_SSL_PORT=str(settings.kafka_ssl_port),
        PRINTFLEET_CLICKHOUSE_HTTP_PORT=str(settings.clickhouse_http_port),
        PRINTFLEET_CLICKHOUSE_TCP_PORT=str(settings.clickhouse_tcp_port),
        PRINTFLEET_KAFKA_HEAP=settings.kafka_heap, PRINTFLEET_STOP_TIMEOUT_S=str(settings.stop_timeout_s),
    )
    return env


def stack_command(settings: StackSettings, *command: str) -> None:
    """`printfleet stack ...` (or a `deploy` call) in a child process, as an operator runs
    it: the servers it starts are not this test process's children."""
    result = subprocess.run([sys.executable, "-m", "printfleet", "stack", *command] if command[0] in ("up", "down")
                            else [sys.executable, "-c", command[0]],
                            env=stack_env(settings), capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stdout + result.stderr


@contextlib.contextmanager
def running_stack(folder: Path) -> Iterator[StackSettings]:
    """Kafka and ClickHouse on free ports with their data in `folder`; down at the end,
    whatever the test did to them."""
    kafka, controller, sasl_ssl, ssl, http, tcp = free_ports(6)
    settings = replace(
        StackSettings(), state_dir=folder, log_dir=None,
        kafka_port=kafka, kafka_controller_port=controller, kafka_sasl_ssl_port=sasl_ssl, kafka_ssl_port=ssl,
        clickhouse_http_port=http, clickhouse_tcp_port=tcp,
        kafka_heap="384m", stop_timeout_s=30.0,
    )
    stack_command(settings, "up")
    try:
        yield settings
    finally:
        stack_command(settings, "down")


_LAUNCH = """
import asyncio
from deploy.settings import StackSettings
from deploy.{module} import {cls}
server = {cls}(StackSettings.from_env())
asyncio.run(server.wait_ready(server.launch(), 90))
"""


async def stop_server(server: KafkaServer | ClickHouseServer, settings: StackSettings) -> None:
    """Stop the server as `printfleet stack down` does (SIGTERM, SIGKILL after the timeout)."""
    await server.process.stop(settings.stop_timeout_s)
    assert not await server.answers()


async def start_server(server: KafkaServer | ClickHouseServer, settings: StackSettings) -> None:
    """Start it again on the same data and ports; returns once it answers."""
    module = "kafka" if isinstance(server, KafkaServer) else "clickhouse"
    await asyncio.to_thread(stack_command, settings, _LAUNCH.format(module=module, cls=type(server).__name__))


async def restart(server: KafkaServer | ClickHouseServer, settings: StackSettings, down_s: float) -> float:
    """Stop the server, keep it down for `down_s`, start it again; seconds it was away."""
    began = time.monotonic()
    await stop_server(server, settings)
    await asyncio.sleep(down_s)
    await start_server(server, settings)
    return time.monotonic() - began
