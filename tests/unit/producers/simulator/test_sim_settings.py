"""Simulator settings from PRINTFLEET_SIM_* and flags, and the CLI's flag parsing."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from printfleet import cmd_simulate
from producers.simulator import SimulatorSettings
from producers.simulator.settings import REPO_ROOT, parse_start


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    cmd_simulate.register(parser.add_subparsers())
    return parser.parse_args(["simulate", *argv])


def test_defaults() -> None:
    s = SimulatorSettings.from_env({})
    assert (s.printers, s.seed, s.acceleration, s.port, s.host) == (20, 1, 60.0, 18443, "127.0.0.1")
    assert s.ca_dir == REPO_ROOT / ".stack" / "site-ca" and s.start_ms is None


def test_environment_then_flags() -> None:
    env = {
        "PRINTFLEET_SIM_PRINTERS": "100",
        "PRINTFLEET_SIM_SEED": "9",
        "PRINTFLEET_SIM_ACCELERATION": "3600",
        "PRINTFLEET_SIM_START": "2025-03-14T08:00:00Z",
        "PRINTFLEET_SIM_CA_DIR": "/tmp/ca",
    }
    s = SimulatorSettings.from_env(env, printers=5, start=None)
    assert (s.printers, s.seed, s.acceleration, s.ca_dir) == (5, 9, 3600.0, Path("/tmp/ca"))
    assert s.start_ms == 1_741_939_200_000


def test_cli_flags_become_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PRINTFLEET_SIM_PRINTERS", raising=False)
    args = _args("--printers", "7", "--seed", "3", "--acceleration", "120", "--port", "0",
                 "--start", "2025-03-14T09:00", "--site-name", "Werk 2", "--ca-dir", "/tmp/x")
    s = cmd_simulate.settings_from(args)
    assert (s.printers, s.seed, s.acceleration, s.port, s.site_name) == (7, 3, 120.0, 0, "Werk 2")
    assert s.start_ms == parse_start("2025-03-14T09:00:00+00:00") and s.ca_dir == Path("/tmp/x")


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"PRINTFLEET_SIM_PRINTERS": "many"}, "PRINTFLEET_SIM_PRINTERS"),
        ({"PRINTFLEET_SIM_PRINTERS": "0"}, "printers"),
        ({"PRINTFLEET_SIM_ACCELERATION": "-1"}, "acceleration"),
        ({"PRINTFLEET_SIM_START": "yesterday"}, "PRINTFLEET_SIM_START"),
        ({"PRINTFLEET_SIM_PORT": "70000"}, "port"),
    ],
)
def test_bad_values_name_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SimulatorSettings.from_env(env)


def test_bad_flag_exits_with_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert cmd_simulate.run(_args("--printers", "0")) == 2
    assert "printers" in capsys.readouterr().err


def test_start_without_zone_is_utc() -> None:
    assert parse_start("2025-03-14T08:00") == parse_start("2025-03-14T08:00:00Z") == 1_741_939_200_000
    assert parse_start("2025-03-14T09:00:00+01:00") == 1_741_939_200_000


def test_opcua_flags_and_variables_become_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PRINTFLEET_SIM_PRINTERS", raising=False)
    default = SimulatorSettings.from_env({})
    assert (default.opcua_printers, default.opcua_port, default.opcua_users_file) == (0, 4840, None)
    assert default.opcua_dir == REPO_ROOT / ".stack" / "opcua"
    args = _args("--printers", "6", "--opcua-printers", "2", "--opcua-port", "0", "--opcua-dir", "/tmp/o",
                 "--opcua-users-file", "/tmp/u.txt", "--opcua-tick", "0.5")
    s = cmd_simulate.settings_from(args)
    assert (s.opcua_printers, s.opcua_port, s.opcua_dir, s.opcua_users_file, s.opcua_tick_s) == (
        2, 0, Path("/tmp/o"), Path("/tmp/u.txt"), 0.5)
    env = SimulatorSettings.from_env({"PRINTFLEET_SIM_PRINTERS": "4", "PRINTFLEET_SIM_OPCUA_PRINTERS": "4"})
    assert env.opcua_printers == 4


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"PRINTFLEET_SIM_PRINTERS": "3", "PRINTFLEET_SIM_OPCUA_PRINTERS": "4"}, "opcua_printers"),
        ({"PRINTFLEET_SIM_OPCUA_PORT": "70000"}, "opcua_port"),
        ({"PRINTFLEET_SIM_OPCUA_TICK_S": "0"}, "opcua_tick_s"),
    ],
)
def test_bad_opcua_values_are_named(env: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SimulatorSettings.from_env(env)
