"""`printfleet dashboard`: `users add` prints the token alone on stdout, once; the
settings come from flags, variables and the [dashboard] table; the server's metrics
follow the naming conventions. Nothing here starts a server."""

from __future__ import annotations

from pathlib import Path

import pytest

from common.kafka.settings import KafkaSettings
from common.ops import naming_problems
from dashboard.access import load
from dashboard.server import DashboardServer
from dashboard.settings import DashboardSettings
from printfleet.cli import main
from sinks.connection import ClickHouseSettings


def test_users_add_prints_the_token_alone_on_stdout_and_stores_only_its_hash(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    path = tmp_path / "users.toml"
    assert main(["dashboard", "users", "add", "alice", "--site", "s1", "--site", "s2", "--users-file", str(path)]) == 0
    out, err = capsys.readouterr()
    token = out.strip()
    assert out == token + "\n" and "shown only now" in err and token not in err
    user = load(path).authenticate(token)
    assert user is not None and user.sites == {"s1", "s2"} and token not in path.read_text()


def test_users_add_without_sites_or_operator_is_refused_and_the_variable_names_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = tmp_path / "users.toml"
    monkeypatch.setenv("PRINTFLEET_DASHBOARD_USERS_FILE", str(path))
    assert main(["dashboard", "users", "add", "alice"]) == 2
    assert "--site" in capsys.readouterr().err and not path.exists()
    assert main(["dashboard", "users", "add", "ops", "--operator"]) == 0
    assert load(path).authenticate(capsys.readouterr().out.strip()) is not None


def test_print_config_shows_flags_over_the_file_and_the_variables(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = tmp_path / "printfleet.toml"
    config.write_text('[kafka]\nbootstrap_servers = "k:9092"\n[clickhouse]\nurl = "http://ch:8123"\n'
                      '[dashboard]\nport = 1000\noffline_after_s = 100.0\nsse_queue_max = 5\n')
    monkeypatch.setenv("PRINTFLEET_DASHBOARD_OFFLINE_AFTER_S", "200")
    assert main(["dashboard", "--config", str(config), "--sse-queue-max", "7", "--print-config"]) == 0
    out = capsys.readouterr().out
    assert "[dashboard]" in out and "port = 1000" in out and "offline_after_s = 200.0" in out
    assert "sse_queue_max = 7" in out and "ops_port = 18449" in out and 'url = "http://ch:8123"' in out


def test_a_bad_setting_is_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["dashboard", "--kafka-bootstrap", "k:1", "--clickhouse-url", "http://ch:1",
                 "--offline-after-s", "-1", "--print-config"]) == 2
    assert "offline_after_s" in capsys.readouterr().err


def test_the_dashboards_metrics_follow_the_naming_conventions(tmp_path: Path) -> None:
    server = DashboardServer(DashboardSettings(kafka=KafkaSettings("127.0.0.1:1"),
                                               clickhouse=ClickHouseSettings("http://127.0.0.1:1"),
                                               users_file=tmp_path / "users.toml"))
    assert naming_problems(server.ops.registry, "dashboard") == []
