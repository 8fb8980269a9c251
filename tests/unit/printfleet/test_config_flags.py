"""`--config FILE` and `--print-config` of the gateway, worker and sink: one precedence
(defaults, file, environment, flags), one clear error per bad key, secrets never shown."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from printfleet.cli import main

CONFIG = """
[kafka]
bootstrap_servers = "kafka-1.internal:9093"
security_protocol = "SASL_SSL"
sasl_username = "printfleet"
replication_factor = 3

[clickhouse]
url = "https://ch.internal:8443"
user = "sink"

[sink]
batch_max_records = 5000
batch_max_age_s = 1.5
group_id = "from-file"

[worker]
app_id = "fleet-eu"
"""


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("PRINTFLEET_KAFKA_BOOTSTRAP_SERVERS", "PRINTFLEET_CLICKHOUSE_URL", "PRINTFLEET_CONFIG",
                 "PRINTFLEET_SINK_GROUP_ID", "PRINTFLEET_CLICKHOUSE_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PRINTFLEET_STATE_DIR", str(tmp_path / "no-stack-here"))
    monkeypatch.setenv("PRINTFLEET_KAFKA_SASL_PASSWORD", "kafka-s3cret")  # SASL_SSL in the file needs one
    path = tmp_path / "printfleet.toml"
    path.write_text(CONFIG)
    return path


def _printed(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, Any]:
    assert main(list(argv)) == 0, capsys.readouterr().err
    return tomllib.loads(capsys.readouterr().out)


def test_the_file_is_below_the_environment_and_the_flags(
        config: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PRINTFLEET_SINK_GROUP_ID", "from-env")
    monkeypatch.setenv("PRINTFLEET_CLICKHOUSE_PASSWORD", "s3cret-value")
    shown = _printed(capsys, "sink", "--config", str(config), "--batch-max-records", "7", "--print-config")
    sink, kafka, clickhouse = shown["sink"], shown["kafka"], shown["clickhouse"]
    assert (sink["batch_max_records"], sink["batch_max_age_s"], sink["group_id"]) == (7, 1.5, "from-env")
    assert (kafka["bootstrap_servers"], kafka["security_protocol"], kafka["replication_factor"]) == (
        "kafka-1.internal:9093", "SASL_SSL", 3)
    assert (clickhouse["url"], clickhouse["user"]) == ("https://ch.internal:8443", "sink")


def test_print_config_never_shows_a_secret(config: Path, capsys: pytest.CaptureFixture[str],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PRINTFLEET_CLICKHOUSE_PASSWORD", "s3cret-value")
    assert main(["sink", "--config", str(config), "--print-config"]) == 0
    out = capsys.readouterr().out
    assert "s3cret-value" not in out and "kafka-s3cret" not in out
    assert "# password = (hidden)" in out and "# sasl_password = (hidden)" in out


def test_the_worker_reads_its_table_and_the_shared_ones(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shown = _printed(capsys, "worker", "--config", str(config), "--print-config")
    assert shown["worker"]["app_id"] == "fleet-eu" and shown["kafka"]["sasl_username"] == "printfleet"


def test_the_config_file_can_come_from_the_environment(
        config: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PRINTFLEET_CONFIG", str(config))
    assert _printed(capsys, "worker", "--print-config")["worker"]["app_id"] == "fleet-eu"


def test_every_bad_key_is_one_line_naming_the_file_and_table(
        tmp_path: Path, config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config.write_text(CONFIG.replace("batch_max_records = 5000", "batch_max_records = \"many\"\nbatch_max_rekords = 1"))
    assert main(["sink", "--config", str(config), "--print-config"]) == 2
    err = capsys.readouterr().err
    assert f"{config} [sink] batch_max_records='many': " in err
    assert f"{config} [sink] batch_max_rekords: not a setting here" in err


def test_a_table_no_component_reads_is_an_error(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config.write_text(CONFIG + "\n[sinks]\ngroup_id = 'x'\n")
    assert main(["sink", "--config", str(config)]) == 2
    assert "[sinks] is not a table of printfleet's (known: kafka, clickhouse, gateway, worker, sink, dashboard)" in capsys.readouterr().err


def test_without_an_address_anywhere_and_no_local_stack_the_worker_refuses(
        tmp_path: Path, config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config.write_text("[worker]\napp_id = 'x'\n")
    assert main(["worker", "--config", str(config), "--print-config"]) == 2
    assert "printfleet worker: no Kafka address: give --kafka-bootstrap" in capsys.readouterr().err


def test_collector_init_writes_a_commented_site_toml_that_loads_and_never_overwrites(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from producers.collector.config import CollectorSettings

    path = tmp_path / "site.toml"
    assert main(["collector", "init", "--config", str(path)]) == 0
    text = path.read_text()
    assert text.count("\n#") >= 3 and "printfleet sites add" in text
    settings = CollectorSettings.load(path, env={})
    assert settings.site_id == "my-site" and len(settings.site_secret) >= 40
    second = tmp_path / "other.toml"
    assert main(["collector", "init", "--config", str(second)]) == 0
    assert CollectorSettings.load(second, env={}).site_secret != settings.site_secret  # a secret of its own
    before = path.read_text()
    assert main(["collector", "init", "--config", str(path)]) == 2
    assert path.read_text() == before and "exists; not overwritten" in capsys.readouterr().err


def test_collector_settings_come_from_the_file_then_the_environment_then_the_flags(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "site.toml"
    assert main(["collector", "init", "--config", str(path)]) == 0
    capsys.readouterr()
    monkeypatch.setenv("PRINTFLEET_COLLECTOR_GATEWAY_TOKEN", "token-from-a-secret-store")
    monkeypatch.setenv("PRINTFLEET_COLLECTOR_SPOOL_MAX_BYTES", "1000000")
    monkeypatch.setenv("PRINTFLEET_COLLECTOR_STATUS_PORT", "9001")
    shown = _printed(capsys, "collector", "--config", str(path), "--status-port", "9002", "--print-config")
    assert shown["spool_max_bytes"] == 1_000_000 and shown["status_port"] == 9002
    assert "token" not in shown["gateway"] and "site_secret" not in shown  # hidden, shown as comments
    monkeypatch.setenv("PRINTFLEET_COLLECTOR_SPOOL_MAX_BYTES", "lots")
    assert main(["collector", "--config", str(path), "--print-config"]) == 2
    assert "PRINTFLEET_COLLECTOR_SPOOL_MAX_BYTES='lots': " in capsys.readouterr().err
