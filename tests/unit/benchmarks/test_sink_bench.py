"""`printfleet bench sink`, pure logic only (no stack): the report's medians and spread
with --repeat, the verdicts, and the argument checks."""

from __future__ import annotations

import pytest

from benchmarks.sink import KindResult, Options, report, run


def _result(sink_runs: list[float], direct_runs: list[float]) -> KindResult:
    r = KindResult("heartbeat", 360_000, 360_000, 50.0, sink_runs=sink_runs, direct_runs=direct_runs)
    r.sink_s, r.direct_s, r.sink_cpu_s, r.sink_join_s = sorted(sink_runs)[1], sorted(direct_runs)[1], 1.0, 0.5
    return r


def test_repeated_runs_report_the_median_and_the_spread() -> None:
    text = report([_result([2.0, 1.2, 1.8], [0.9, 0.6, 0.72])], Options(kinds=("heartbeat",), repeat=3))
    sink_line = next(line for line in text.splitlines() if line.startswith("| heartbeat: sink"))
    assert "| 200,000 |" in sink_line  # 360,000 rows over the median 1.8 s
    assert "median of 3 runs, 180,000-300,000 rows/s" in sink_line
    direct_line = next(line for line in text.splitlines() if "direct clickhouse-connect" in line)
    assert "| 500,000 |" in direct_line and "median of 3 runs, 400,000-600,000 rows/s" in direct_line
    assert "| heartbeats >= 200,000 rows/s end to end | 200,000 | met |" in text
    assert "| heartbeat: sink >= 0.5 x direct insert | 0.4 | MISSED |" in text


def test_a_single_run_reports_no_spread() -> None:
    one = KindResult("heartbeat", 10, 10, 1.0, sink_s=1.0, direct_s=1.0, sink_runs=[1.0], direct_runs=[1.0])
    text = report([one], Options(kinds=("heartbeat",)))
    assert "| heartbeat: sink, Kafka -> ClickHouse (the sink in this process) | 10 |" in text
    assert "median of" not in text


@pytest.mark.parametrize("argv", [["--repeat", "0"], ["--repeat", "2", "--processes", "2"], ["--kinds", "alert"]])
def test_bad_arguments_are_refused(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        run(argv)
    assert exc.value.code == 2
