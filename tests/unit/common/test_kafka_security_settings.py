"""Kafka transport security in `KafkaSettings`: what is accepted, what every aiokafka
client and Faust get, and that a password never shows (in argv, repr or a child's env)."""

from __future__ import annotations

import argparse
import re
import ssl
from pathlib import Path

import pytest

from benchmarks import isolation
from common.kafka.clients import faust_options
from common.kafka.settings import KafkaSettings
from common.settings import Secret, build
from printfleet import kafka_flags
from common.tls import ensure_site_ca, issue_server_certificate


@pytest.fixture
def ca(tmp_path: Path) -> Path:
    return ensure_site_ca(tmp_path / "ca", "test").cert_file


def _sasl(ca: Path, **more: object) -> KafkaSettings:
    return KafkaSettings("127.0.0.1:9094", security_protocol="SASL_SSL", sasl_username="svc",
                         sasl_password=Secret("s3cret"), ssl_ca_file=ca, **more)  # type: ignore[arg-type]


def test_sasl_ssl_gives_every_client_tls_and_the_credentials(ca: Path) -> None:
    options = _sasl(ca).connection()
    assert options["security_protocol"] == "SASL_SSL"
    assert isinstance(options["ssl_context"], ssl.SSLContext) and options["ssl_context"].check_hostname
    assert (options["sasl_mechanism"], options["sasl_plain_username"], options["sasl_plain_password"]) == (
        "SCRAM-SHA-512", "svc", "s3cret")


def test_plaintext_gives_neither_tls_nor_sasl() -> None:
    options = KafkaSettings("127.0.0.1:9092").connection()
    assert options["security_protocol"] == "PLAINTEXT"
    assert "ssl_context" not in options and "sasl_plain_password" not in options


def test_the_password_file_is_read_at_each_connection(ca: Path, tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text("first\n")
    settings = KafkaSettings("h:1", security_protocol="SASL_PLAINTEXT", sasl_username="svc", sasl_password_file=secret)
    assert settings.connection()["sasl_plain_password"] == "first"
    secret.write_text("rotated\n")
    assert settings.connection()["sasl_plain_password"] == "rotated"


def test_the_password_never_shows_in_the_repr(ca: Path) -> None:
    assert "s3cret" not in repr(_sasl(ca))


@pytest.mark.parametrize(("fields", "message"), [
    ({"security_protocol": "SASL_SSL", "sasl_password": Secret("x")}, "needs a SASL user name"),
    ({"security_protocol": "SASL_SSL", "sasl_username": "u"}, "exactly one"),
    ({"security_protocol": "SASL_SSL", "sasl_username": "u", "sasl_password": Secret("x"), "sasl_mechanism": "GSSAPI"},
     "SASL mechanism 'GSSAPI'"),
    ({"security_protocol": "TLS"}, "security protocol 'TLS'"),
    ({"sasl_username": "u", "sasl_password": Secret("x")}, "use SASL_SSL"),
    ({"security_protocol": "SSL", "ssl_cert_file": Path("c.pem")}, "needs its key"),
    ({"ssl_ca_file": Path("ca.pem")}, "use SSL or SASL_SSL"),
    ({"security_protocol": "SSL", "ssl_ca_file": Path("/nonexistent/ca.pem")}, "Kafka CA file /nonexistent/ca.pem"),
])
def test_settings_that_cannot_connect_are_refused_at_once(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        KafkaSettings("127.0.0.1:9092", **fields)  # type: ignore[arg-type]


def test_a_client_certificate_is_loaded_for_mutual_tls(ca: Path, tmp_path: Path) -> None:
    pair = issue_server_certificate(ensure_site_ca(tmp_path / "ca", "test"), tmp_path / "ca")
    settings = KafkaSettings("h:1", security_protocol="SSL", ssl_ca_file=ca, ssl_cert_file=pair.cert_file,
                             ssl_key_file=pair.key_file)
    assert isinstance(settings.connection()["ssl_context"], ssl.SSLContext)
    with pytest.raises(ValueError, match="client certificate"):
        KafkaSettings("h:1", security_protocol="SSL", ssl_cert_file=ca, ssl_key_file=ca)  # a CA file is no key


def test_faust_gets_the_same_security(ca: Path) -> None:
    sasl = faust_options(_sasl(ca))["broker_credentials"]
    assert (sasl.protocol.value, sasl.mechanism.value, sasl.username, sasl.password) == (
        "SASL_SSL", "SCRAM-SHA-512", "svc", "s3cret")
    tls = faust_options(KafkaSettings("h:1", security_protocol="SSL", ssl_ca_file=ca))["broker_credentials"]
    assert tls.protocol.value == "SSL" and isinstance(tls.context, ssl.SSLContext)
    assert faust_options(KafkaSettings("h:1"))["broker_credentials"] is None


def test_no_flag_takes_a_password(capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser()
    kafka_flags.add_arguments(parser)
    flags = set(re.findall(r"--[\w-]+", parser.format_help()))
    assert "--kafka-sasl-password-file" in flags
    assert not [f for f in flags if "password" in f and not f.endswith("-file")]
    with pytest.raises(SystemExit):
        parser.parse_args(["--kafka-sasl-password", "s3cret"])
    refusal = capsys.readouterr().err
    assert "PRINTFLEET_KAFKA_SASL_PASSWORD" in refusal and "s3cret" not in refusal


def test_the_cli_takes_no_abbreviated_flag(capsys: pytest.CaptureFixture[str]) -> None:
    from printfleet.cli import build_parser

    with pytest.raises(SystemExit):
        build_parser().parse_args(["topics", "plan", "--kafka-boot", "b:1"])
    assert "unrecognized arguments: --kafka-boot" in capsys.readouterr().err


def test_flags_and_variables_make_the_same_settings(ca: Path, tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text("pw\n")
    parser = argparse.ArgumentParser()
    kafka_flags.add_arguments(parser)
    args = parser.parse_args(["--kafka-bootstrap", "b:1", "--kafka-security-protocol", "SASL_SSL",
                              "--kafka-sasl-mechanism", "PLAIN", "--kafka-sasl-username", "svc",
                              "--kafka-sasl-password-file", str(secret), "--kafka-ssl-ca-file", str(ca)])
    from_flags = kafka_flags.settings(args, env={})
    # A child process given these settings as variables (the benchmarks do) gets the same.
    assert build(KafkaSettings, "kafka", isolation.environment(from_flags)) == from_flags
    assert from_flags.connection()["sasl_plain_password"] == "pw"


def test_without_bootstrap_servers_or_a_local_stack_set_up_here_a_command_refuses(tmp_path: Path) -> None:
    from printfleet import kafka_flags
    parser = argparse.ArgumentParser()
    kafka_flags.add_arguments(parser)
    with pytest.raises(ValueError, match=r"^no Kafka address: give --kafka-bootstrap"):
        kafka_flags.settings(parser.parse_args([]), {"PRINTFLEET_STATE_DIR": str(tmp_path / "none")})
    (tmp_path / "stack" / "kafka").mkdir(parents=True)
    local = kafka_flags.settings(parser.parse_args([]), {"PRINTFLEET_STATE_DIR": str(tmp_path / "stack")})
    assert local.bootstrap_servers == "127.0.0.1:19092" and local.replication_factor == 1
