"""`printfleet stack up|status|down` on a second stack of its own (own folder, own ports),
beside the one the test session runs on."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from deploy.process import is_alive
from ports import free_ports


def _env(state_dir: Path, ports: list[int]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PRINTFLEET_")}
    kafka, controller, sasl_ssl, ssl, http, tcp = ports
    env.update(
        PRINTFLEET_STATE_DIR=str(state_dir),
        PRINTFLEET_KAFKA_PORT=str(kafka),
        PRINTFLEET_KAFKA_CONTROLLER_PORT=str(controller),
        # All six its own: a demo stack on the default ports must not fail the test.
        PRINTFLEET_KAFKA_SASL_SSL_PORT=str(sasl_ssl),
        PRINTFLEET_KAFKA_SSL_PORT=str(ssl),
        PRINTFLEET_CLICKHOUSE_HTTP_PORT=str(http),
        PRINTFLEET_CLICKHOUSE_TCP_PORT=str(tcp),
        PRINTFLEET_KAFKA_HEAP="256m",
    )
    return env


def _stack(action: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "printfleet.cli", "stack", action],
        env=env, capture_output=True, text=True, timeout=180, check=False,
    )


@pytest.fixture
def own_stack(tmp_path: Path) -> Iterator[dict[str, str]]:
    env = _env(tmp_path / "stack", free_ports(6))
    try:
        yield env
    finally:
        _stack("down", env)


def test_up_status_second_up_and_down(own_stack: dict[str, str], tmp_path: Path) -> None:
    up = _stack("up", own_stack)
    assert up.returncode == 0, up.stderr
    assert re.search(r"kafka\s+ready in", up.stdout) and re.search(r"clickhouse\s+ready in", up.stdout)
    pids = [int(p) for p in re.findall(r"pid (\d+)", up.stdout)]
    assert len(pids) == 2 and all(is_alive(p) for p in pids)

    status = _stack("status", own_stack)
    assert status.returncode == 0, status.stdout + status.stderr
    assert re.search(r"kafka\s+healthy .* version 4\.\d+\.\d+", status.stdout), status.stdout
    assert re.search(r"clickhouse\s+healthy .* version \d+\.\d+", status.stdout), status.stdout

    again = _stack("up", own_stack)
    assert again.returncode == 1
    assert "already running" in again.stderr
    assert all(is_alive(p) for p in pids), "a second `up` must leave the first stack alone"

    # Same ports, other data folder: the ports are taken, nothing may start.
    elsewhere = {**own_stack, "PRINTFLEET_STATE_DIR": str(tmp_path / "other")}
    taken = _stack("up", elsewhere)
    assert taken.returncode == 1
    assert "already in use" in taken.stderr
    assert _stack("status", elsewhere).returncode == 1

    down = _stack("down", own_stack)
    assert down.returncode == 0, down.stderr
    assert re.search(r"kafka\s+stopped", down.stdout) and re.search(r"clickhouse\s+stopped", down.stdout)
    assert not any(is_alive(p) for p in pids), "`down` left a server process behind"

    after = _stack("status", own_stack)
    assert after.returncode == 1
    assert re.search(r"kafka\s+stopped", after.stdout)


def test_down_without_up_is_harmless(tmp_path: Path) -> None:
    result = _stack("down", _env(tmp_path / "never-started", free_ports(6)))
    assert result.returncode == 0, result.stderr
