from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

import pytest

from deploy.errors import PortInUse
from deploy.process import check_port_free, is_alive
from deploy.settings import StackSettings


def test_environment_sets_values_and_flags_win() -> None:
    env = {"PRINTFLEET_KAFKA_PORT": "29092", "PRINTFLEET_STATE_DIR": "/tmp/x", "PRINTFLEET_KAFKA_HEAP": "1g"}
    s = StackSettings.from_env(env, kafka_port=39092, clickhouse_http_port=None)
    assert s.kafka_port == 39092
    assert s.state_dir == Path("/tmp/x")
    assert s.kafka_heap == "1g"
    assert s.clickhouse_http_port == StackSettings().clickhouse_http_port
    assert s.kafka_bootstrap == "127.0.0.1:39092"
    assert s.logs == Path("/tmp/x/logs")


def test_bad_number_in_environment_names_the_variable() -> None:
    with pytest.raises(ValueError, match="PRINTFLEET_KAFKA_PORT='ninety'"):
        StackSettings.from_env({"PRINTFLEET_KAFKA_PORT": "ninety"})


def test_port_taken_by_a_listener_is_refused() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        with pytest.raises(PortInUse, match=f"127.0.0.1:{port} is already in use"):
            check_port_free(port, "Kafka")
    check_port_free(port, "Kafka")  # free again once the listener closed


def test_is_alive_tells_a_running_pid_from_a_gone_one() -> None:
    assert is_alive(os.getpid())
    child = subprocess.Popen(["true"])
    child.wait()
    assert not is_alive(child.pid)
