"""The pipeline as separate processes under every kind of fault, then compared record by
record (benchmarks/chaos.py, `printfleet bench chaos` for long runs): nothing duplicated
in Kafka or ClickHouse, nothing of the printers' records missing but what the collector
counted as lost in a spool cut, ClickHouse holding exactly Kafka's ids."""

from __future__ import annotations

from benchmarks.chaos import FAULTS, ChaosOptions, format_report, run_chaos
from deploy.settings import StackSettings


async def test_every_fault_once_and_the_records_land_exactly_once(stack: StackSettings) -> None:
    options = ChaosOptions(minutes=2.0, seed=3, printers=4, fault_every_s=8.0, drain_timeout_s=240.0)
    report = await run_chaos(stack, options, print)
    table = format_report(report)
    print(table)
    assert set(report.faults) == set(FAULTS), table  # each kind of fault at least once
    assert report.duplicated == 0, table
    assert report.unexplained == 0, table
    assert not any(report.mismatched.values()), table
    assert report.kafka["heartbeat"][1] > 0 and report.clickhouse["alert"][0] > 0, table
