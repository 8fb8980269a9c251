"""A three-node Kafka cluster (`printfleet stack up --brokers 3`: KRaft, three JVMs on
loopback, one controller quorum), topics replicated 3 times with min.insync.replicas 2.
In the middle of a simulated site's traffic through collector -> gateway -> worker ->
sink, the broker leading the heartbeat partitions is SIGKILLed and started again: every
record lands in ClickHouse exactly once, and the worker's outputs are complete.

Its own stack (own folder, own ports: PRINTFLEET_TEST_CLUSTER_PORT and the 40 above it),
started and stopped here, never the session's shared one.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from benchmarks.chaos import KILL_LEADER, ChaosOptions, format_report, run_chaos
from deploy.settings import StackSettings


def _env(settings: StackSettings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PRINTFLEET_")}
    env.update({f"PRINTFLEET_{f.name.upper()}": str(getattr(settings, f.name))
                for f in dataclasses.fields(settings) if getattr(settings, f.name) is not None})
    return env


def _stack(settings: StackSettings, action: str) -> str:
    result = subprocess.run([sys.executable, "-m", "printfleet", "stack", action], env=_env(settings),
                            capture_output=True, text=True, timeout=240, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackSettings]:
    base = int(os.environ.get("PRINTFLEET_TEST_CLUSTER_PORT", "29200"))
    settings = StackSettings(
        state_dir=tmp_path_factory.mktemp("cluster-stack"), kafka_brokers=3, kafka_port=base,
        kafka_controller_port=base + 1, kafka_sasl_ssl_port=base + 2, kafka_ssl_port=base + 3,
        clickhouse_http_port=base + 30,
        clickhouse_tcp_port=base + 31, kafka_heap="384m", stop_timeout_s=30.0,
    )
    _stack(settings, "up")
    try:
        yield settings
    finally:
        print(_stack(settings, "status"))  # the three brokers' memory, in the test's output
        _stack(settings, "down")


async def test_a_killed_leader_loses_and_repeats_nothing(cluster: StackSettings) -> None:
    kafka = cluster.kafka({})
    assert (kafka.replication_factor, kafka.min_insync_replicas) == (3, 2)
    options = ChaosOptions(minutes=1.0, seed=7, printers=3, fault_every_s=25.0, faults=(KILL_LEADER,),
                           drain_timeout_s=240.0)
    report = await run_chaos(cluster, options, print, kafka=kafka)
    table = format_report(report)
    print(table)
    assert report.faults[KILL_LEADER] >= 1 and len(report.leader_recovery_s) == report.faults[KILL_LEADER], table
    assert report.ok, table  # nothing duplicated, nothing missing, ClickHouse holds exactly Kafka's ids
    assert report.missing.total() == 0, table  # no spool cut here: every printer record arrived
    # The worker's outputs are complete: every printer has its state, alerts were raised.
    assert report.printers_with_state == options.printers and report.clickhouse["alert"][0] > 0, table
