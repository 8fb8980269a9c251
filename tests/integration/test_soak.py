"""A short soak (benchmarks/soak, `printfleet bench soak` for the long runs): 1,000
printers in 10 sites, each with its own `printfleet collector`, through the real
gateway, worker and sink for 2 minutes: lag bounded, every record in Kafka stored in
ClickHouse exactly once, every printer in the worker's fleet state, the injected
printhead errors alerted, and the table and the plot written."""

from __future__ import annotations

from pathlib import Path

from benchmarks.soak.main import run_soak, write
from benchmarks.soak.options import SoakOptions
from benchmarks.soak.report import format_report
from deploy.settings import StackSettings


async def test_a_thousand_printers_for_two_minutes_bounded_and_exactly_once(stack: StackSettings,
                                                                              tmp_path: Path) -> None:
    options = SoakOptions(sites=10, printers_per_site=100, minutes=2.0, errors_per_min=12.0, drain_timeout_s=240.0)
    result = await run_soak(stack, options, print)
    md, png = write(result, tmp_path, "soak")
    table = format_report(result)
    print(table)
    assert result.data is not None, table
    assert result.data.exactly_once, table
    assert result.data.kafka["heartbeat"][0] > 0, table
    assert result.data.printers_with_state == 1000, table
    assert result.data.lost == 0, table
    assert result.verdict.bounded, table
    assert result.alert_latencies, table  # injected errors came out as alerts
    assert md.read_text().startswith("## soak: 1,000 printers") and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
