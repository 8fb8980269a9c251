"""Every component over the test stack's SASL_SSL listener (SCRAM, certificates and users
made by `printfleet stack up`, deploy/kafka_secrets.py), and the one line each gives when
the cluster refuses it: a wrong password, a CA that did not sign the brokers' certificate,
a user without ACLs. The gateway answers 503 then, so the collector keeps its spool."""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import os
import subprocess
import sys
import uuid
import warnings
from collections.abc import Callable
from pathlib import Path

import pytest

from benchmarks import isolation
from benchmarks.chaos import ChaosOptions, format_report, run_chaos
from common.kafka import admin, diagnose
from common.kafka.errors import KafkaRefused
from common.kafka.settings import KafkaSettings
from common.kafka.topics import pipeline_topics
from deploy.settings import StackSettings
from producers.batch_format import encode_batch
from producers.gateway.gateway import Gateway
from producers.gateway.sites import SiteDirectory
from common.tls import ensure_site_ca, issue_client_certificate
from schemas import SchemaRegistry
from test_gateway import DEVICES_A, SITE_A, TOKEN_A, _post, _record, _settings

WRONG_PASSWORD = "refused the SCRAM-SHA-512 credentials of user 'printfleet': wrong user name or password"
UNTRUSTED = "is not trusted by the CA in"
NO_ACL = "denied user 'reader'"


async def test_gateway_worker_and_sink_run_over_sasl_ssl_with_scram(stack: StackSettings) -> None:
    options = ChaosOptions(minutes=0.4, seed=5, printers=3, faults=(), drain_timeout_s=180)
    report = await run_chaos(stack, options, print, kafka=stack.kafka_sasl_ssl())
    table = format_report(report)
    assert report.ok, table
    assert report.kafka["heartbeat"][0] > 0 and report.clickhouse["heartbeat"][0] == report.kafka["heartbeat"][0], table
    assert report.clickhouse["fleet_state"][0] > 0, table  # the worker (and its Faust app) ran over SASL_SSL


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-256", "PLAIN"])
async def test_the_other_mechanisms_connect(stack: StackSettings, mechanism: str) -> None:
    changes = await admin.plan(stack.kafka_sasl_ssl(mechanism=mechanism), pipeline_topics())
    assert len(changes) == len(pipeline_topics())


def _wrong_password(stack: StackSettings, tmp_path: Path) -> KafkaSettings:
    secret = tmp_path / "wrong.password"
    secret.write_text("not-the-password\n")
    return dataclasses.replace(stack.kafka_sasl_ssl(), sasl_password_file=secret)


def _untrusted(stack: StackSettings, tmp_path: Path) -> KafkaSettings:
    other = ensure_site_ca(tmp_path / "other-ca", "not the brokers' CA")
    return dataclasses.replace(stack.kafka_sasl_ssl(), ssl_ca_file=other.cert_file)


def _command(name: str, tmp_path: Path) -> list[str]:
    run = uuid.uuid4().hex[:8]
    return {
        "topics": ["topics", "apply"],
        "worker": ["worker", "--ops-port", "0", "--app-id", f"it-{run}", "--data-dir", str(tmp_path / "worker")],
        "sink": ["sink", "--ops-port", "0", "--clickhouse-database", f"it_{run}", "--group-id", f"it-{run}"],
    }[name]


def _run(command: list[str], kafka: KafkaSettings) -> subprocess.CompletedProcess[str]:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("PRINTFLEET_KAFKA_")
              or k in ("PRINTFLEET_KAFKA_PORT", "PRINTFLEET_KAFKA_CONTROLLER_PORT", "PRINTFLEET_KAFKA_SASL_SSL_PORT")},
           **isolation.environment(kafka)}
    return subprocess.run([sys.executable, "-m", "printfleet", *command], env=env, capture_output=True, text=True,
                          timeout=120, check=False)


@pytest.mark.parametrize(("name", "cause", "expected"), [
    ("topics", _wrong_password, WRONG_PASSWORD),
    ("worker", _wrong_password, WRONG_PASSWORD),
    ("sink", _wrong_password, WRONG_PASSWORD),
    ("worker", _untrusted, UNTRUSTED),
    ("sink", _untrusted, UNTRUSTED),
])
def test_a_refusal_ends_the_command_with_one_line_naming_the_cause(
    stack: StackSettings, tmp_path: Path, name: str, cause: object, expected: str,
) -> None:
    kafka = cause(stack, tmp_path)  # type: ignore[operator]
    done = _run(_command(name, tmp_path), kafka)
    last = done.stderr.strip().splitlines()[-1]
    assert done.returncode == 1, done.stderr[-2000:]
    assert last.startswith(f"printfleet {name}") and expected in last, done.stderr[-2000:]
    assert "Traceback" not in done.stderr + done.stdout


def test_a_user_without_acls_is_told_which_right_is_missing(stack: StackSettings, tmp_path: Path) -> None:
    done = _run(_command("topics", tmp_path), stack.kafka_sasl_ssl(user="reader"))
    last = done.stderr.strip().splitlines()[-1]
    assert done.returncode == 1 and NO_ACL in last and "AuthorizationFailed" in last, done.stderr[-2000:]


@pytest.mark.parametrize("cause", [_wrong_password, _untrusted])
async def test_the_gateway_answers_503_with_the_cause_so_the_collector_keeps_its_records(
    stack: StackSettings, tmp_path: Path, cause: object,
) -> None:
    registry = SchemaRegistry.load_default()
    kafka = cause(stack, tmp_path)  # type: ignore[operator]
    settings = _settings(tmp_path, kafka, kafka_timeout_s=5.0)
    async with Gateway(settings, registry, SiteDirectory.load(settings.sites_file)) as gw:
        record = registry.encode("heartbeat", _record("heartbeat", SITE_A, DEVICES_A[0], 1))
        status, answer, retry_after = await _post(gw.url, TOKEN_A, encode_batch([record]))
    assert (status, answer["error"]) == (503, "kafka_unavailable")
    assert (WRONG_PASSWORD if cause is _wrong_password else UNTRUSTED) in answer["message"]
    assert int(retry_after) > 0


async def test_a_refusal_is_not_retriable(stack: StackSettings, tmp_path: Path) -> None:
    with pytest.raises(KafkaRefused, match=WRONG_PASSWORD) as refused:
        await admin.plan(_wrong_password(stack, tmp_path), pipeline_topics())
    assert refused.value.retriable is False


async def test_mutual_tls_connects_with_the_client_certificate(stack: StackSettings) -> None:
    changes = await admin.plan(stack.kafka_mutual_tls(), pipeline_topics())
    assert len(changes) == len(pipeline_topics())


async def test_without_a_client_certificate_mutual_tls_is_refused_in_one_line(stack: StackSettings) -> None:
    without = dataclasses.replace(stack.kafka_mutual_tls(), ssl_cert_file=None, ssl_key_file=None)
    with pytest.raises(KafkaRefused, match="requires a client certificate") as refused:
        await admin.plan(without, pipeline_topics())
    assert "\n" not in str(refused.value)


async def test_a_client_certificate_of_another_ca_is_refused_in_one_line(stack: StackSettings, tmp_path: Path) -> None:
    other = ensure_site_ca(tmp_path / "other-ca", "not the brokers' CA")
    foreign = issue_client_certificate(other, tmp_path / "other-ca", "stranger")
    kafka = dataclasses.replace(stack.kafka_mutual_tls(), ssl_cert_file=foreign.cert_file, ssl_key_file=foreign.key_file)
    with pytest.raises(KafkaRefused, match="refused the client certificate .*stranger.pem"):
        await admin.plan(kafka, pipeline_topics())


def _without_client_certificate(stack: StackSettings, tmp_path: Path) -> KafkaSettings:
    return dataclasses.replace(stack.kafka_mutual_tls(), ssl_cert_file=None, ssl_key_file=None)


def _foreign_client_certificate(stack: StackSettings, tmp_path: Path) -> KafkaSettings:
    other = ensure_site_ca(tmp_path / "other-ca", "not the brokers' CA")
    foreign = issue_client_certificate(other, tmp_path / "other-ca", "stranger")
    return dataclasses.replace(stack.kafka_mutual_tls(), ssl_cert_file=foreign.cert_file, ssl_key_file=foreign.key_file)


@pytest.mark.parametrize(("kafka", "expected"), [
    (lambda stack, tmp_path: stack.kafka_mutual_tls(), None),
    (lambda stack, tmp_path: stack.kafka_sasl_ssl(), None),
    (_wrong_password, WRONG_PASSWORD),
    (_untrusted, UNTRUSTED),
    (_without_client_certificate, "requires a client certificate"),
    (_foreign_client_certificate, "refused the client certificate"),
], ids=["mutual-tls", "sasl-ssl", "wrong-password", "untrusted-ca", "no-client-certificate", "foreign-certificate"])
def test_a_probe_has_closed_its_socket_when_it_returns(
    stack: StackSettings, tmp_path: Path, kafka: Callable[[StackSettings, Path], KafkaSettings], expected: str | None,
) -> None:
    """A readiness check or a CLI's diagnosis whose event loop ends right after the probe
    leaves no socket for the garbage collector to find: one found later fails whatever
    test runs then with "unclosed transport"."""
    settings = kafka(stack, tmp_path)
    gc.collect()  # what earlier tests left is theirs, not this probe's
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        # Not asyncio.run: its shutdown turns the loop a few more times, which sometimes
        # let a socket left closing finish and hid the leak.
        loop = asyncio.new_event_loop()
        try:
            reason = loop.run_until_complete(diagnose.unreachable(settings))
        finally:
            loop.close()
        gc.collect()
    assert reason is None if expected is None else expected in (reason or ""), reason
    assert [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)] == []
