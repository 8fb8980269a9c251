"""`printfleet bench soak`, pure logic only (no processes, Kafka or ClickHouse): the
options, /metrics parsing, percentiles, the bounded-lag verdict and what it names as the
limit, the warm-up test, the data check's verdict, and the report and plot files."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from benchmarks.soak.checks import DataCheck
from benchmarks.soak.main import load, write
from benchmarks.soak.options import Bounds, SoakOptions, fleet_split, parse
from benchmarks.soak.plot import draw
from benchmarks.soak.report import SoakResult, format_report, format_steps
from benchmarks.soak.sampler import SINK, SPOOL, WORKER, Sample, flatten, p50_p99, percentile
from benchmarks.soak.verdict import judge, last_half, slope, warmed_up

PRINTERS = 1000  # 100 heartbeats/s at the cadence


def sample(t: float, *, lag: dict[str, float] | None = None, in_per_s: float = 250.0, heartbeats: float = 100.0,
           cpu: dict[str, float] | None = None) -> Sample:
    return Sample(t=t, polled_per_s=in_per_s, heartbeats_polled_per_s=heartbeats, in_per_s=in_per_s,
                  applied_per_s=in_per_s, stored_per_s=in_per_s,
                  lag={SPOOL: 10.0, WORKER: 0.0, SINK: 50.0, **(lag or {})}, spool_depth={"collector-site-00": 10.0},
                  heartbeat_latency_s=(2.0, 4.0), alert_latency_s=None,
                  cpu_pct=cpu or {"worker": 20.0, "sink": 30.0, "collector-site-00": 5.0, "clickhouse": 10.0},
                  rss_mib={"worker": 150.0, "sink": 250.0}, machine_busy=0.5)


def run_of(samples: list[Sample], data: DataCheck | None = None, warmup_s: float = 0.0) -> SoakResult:
    options = SoakOptions(sites=10, printers_per_site=100, minutes=2)
    verdict = judge(samples, PRINTERS, options.bounds, since=warmup_s)
    return SoakResult(options, "2 x test CPU", tuple(samples), warmup_s, verdict, data, (8.0, 9.0), 3, (2.0, 4.0), 200.0)


def test_flatten_sums_labels_and_keeps_each_label_apart() -> None:
    text = """# TYPE printfleet_collector_records_polled_total counter
printfleet_collector_records_polled_total{kind="heartbeat"} 7.0
printfleet_collector_records_polled_total{kind="system_event"} 3.0
# TYPE printfleet_collector_spool_depth_records gauge
printfleet_collector_spool_depth_records 12.0
"""
    m = flatten(text)
    assert m["printfleet_collector_records_polled_total"] == 10.0
    assert m["printfleet_collector_records_polled_total{kind=heartbeat}"] == 7.0
    assert m["printfleet_collector_spool_depth_records"] == 12.0


def test_percentiles() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 51.0 and percentile(values, 99) == 99.0
    assert p50_p99([]) is None and p50_p99([3.0]) == (3.0, 3.0)


def test_slope_is_least_squares() -> None:
    assert slope([0, 10, 20, 30], [5, 25, 45, 65]) == pytest.approx(2.0)
    assert slope([0], [3]) == 0.0 and slope([1, 1], [2, 4]) == 0.0


def test_last_half_starts_half_way_through_the_measured_time() -> None:
    samples = [sample(float(t)) for t in range(0, 101, 10)]
    assert [s.t for s in last_half(samples)] == [50.0, 60.0, 70.0, 80.0, 90.0, 100.0]
    assert [s.t for s in last_half(samples, since=60.0)] == [80.0, 90.0, 100.0]


def test_steady_lag_is_bounded_and_names_the_busiest_process() -> None:
    verdict = judge([sample(float(t)) for t in range(0, 121, 10)], PRINTERS, Bounds())
    assert verdict.bounded
    assert verdict.busiest == ("sink", 30.0)
    assert verdict.limit.startswith("bounded; the busiest process is sink at 30 %")


def test_a_growing_worker_lag_is_not_bounded_and_the_worker_is_the_limit() -> None:
    # 10 records/s more each second against 250/s in: 4 % of the input rate.
    samples = [sample(float(t), lag={WORKER: 10.0 * t}, cpu={"worker": 95.0, "sink": 99.0}) for t in range(0, 121, 10)]
    verdict = judge(samples, PRINTERS, Bounds())
    assert not verdict.bounded
    worker = next(st for st in verdict.stages if st.stage == WORKER)
    assert worker.growth_share == pytest.approx(0.04)
    # The sink is busier, but it is the worker's stage that falls behind.
    assert "worker lag grows by 4.0% of the input rate" in verdict.limit and "worker at 95 %" in verdict.limit


def test_a_burst_at_the_end_that_drains_within_the_minute_is_not_growth() -> None:
    # Counters, consumables and logs of every printer every 5 minutes: the spool's peak
    # jumps in the last minute, its floor does not.
    samples = [sample(float(t), lag={SPOOL: 4000.0 if t in (170, 180) else 100.0}) for t in range(0, 181, 10)]
    verdict = judge(samples, PRINTERS, Bounds())
    spool = next(st for st in verdict.stages if st.stage == SPOOL)
    assert verdict.bounded and spool.growth_per_s == pytest.approx(0.0) and spool.max_lag == 4000.0


def test_a_lag_too_large_but_not_growing_is_not_bounded() -> None:
    samples = [sample(float(t), lag={SINK: 250.0 * 40}) for t in range(0, 121, 10)]
    verdict = judge(samples, PRINTERS, Bounds())
    assert not verdict.bounded and "sink lag reaches 40 s of input" in verdict.limit


def test_polling_short_of_the_cadence_is_not_bounded() -> None:
    samples = [sample(float(t), heartbeats=50.0, cpu={"simulator-0": 90.0, "collector-site-00": 40.0, "sink": 99.0})
               for t in range(0, 121, 10)]
    verdict = judge(samples, PRINTERS, Bounds())
    assert not verdict.bounded and verdict.polled_share == pytest.approx(0.5)
    assert "poll 50%" in verdict.limit and "simulator-0 at 90 %" in verdict.limit


def test_a_saturated_machine_with_no_full_core_is_the_limit() -> None:
    cpu = {f"collector-site-{k:02d}": 9.0 for k in range(10)} | {"kafka": 30.0, "worker": 20.0}
    samples = [dataclasses.replace(sample(float(t), cpu=cpu), machine_busy=0.97) for t in range(0, 121, 10)]
    verdict = judge(samples, PRINTERS, Bounds())
    assert verdict.by_role["collectors"] == pytest.approx(90.0)
    assert "the machine's CPU is the limit; the largest share is collectors, 90 % of a core" in verdict.limit


def test_nothing_flowing_is_not_bounded() -> None:
    assert not judge([sample(float(t), in_per_s=0.0) for t in range(0, 61, 10)], PRINTERS, Bounds()).bounded
    assert not judge([], PRINTERS, Bounds()).bounded


def test_warmed_up_needs_the_cadence_and_small_lags() -> None:
    assert warmed_up(sample(10.0), PRINTERS, Bounds())
    assert not warmed_up(sample(10.0, heartbeats=80.0), PRINTERS, Bounds())
    assert not warmed_up(sample(10.0, lag={SINK: 250.0 * 31}), PRINTERS, Bounds())


def test_data_check_exactly_once_and_losses() -> None:
    good = DataCheck(kafka={"heartbeat": (5, 5)}, clickhouse={"heartbeat": (5, 5)}, printers_with_state=3, printers=3,
                     dead_lettered={"gateway": 0, "worker": 4, "worker late": 4, "sink": 0})
    assert good.exactly_once and good.lost == 0 and good.ok
    duplicated = DataCheck(kafka={"heartbeat": (5, 5)}, clickhouse={"heartbeat": (6, 5)}, printers_with_state=3, printers=3)
    missing = DataCheck(kafka={"heartbeat": (5, 5)}, clickhouse={"heartbeat": (4, 4)}, printers_with_state=3, printers=3)
    unknown = DataCheck(kafka={"heartbeat": (5, 5)}, clickhouse={}, printers_with_state=3, printers=3)
    assert not duplicated.exactly_once and not missing.exactly_once and not unknown.exactly_once
    assert not DataCheck(kafka={}, printers_with_state=2, printers=3).ok
    assert not DataCheck(kafka={}, printers_with_state=3, printers=3, dead_lettered={"sink": 1}).ok


def test_report_and_plot(tmp_path: Path) -> None:
    samples = [sample(float(t)) for t in range(0, 181, 10)]
    data = DataCheck(kafka={"heartbeat": (5, 5)}, clickhouse={"heartbeat": (5, 5)}, printers_with_state=1000,
                     printers=1000)
    result = run_of(samples, data, warmup_s=30.0)
    text = format_report(result)
    assert text.startswith("## soak: 1,000 printers (10 sites x 100), 2 min")
    assert "| w1 |" not in text and "| 1 |" in text  # minute 1 ends after the warm-up
    assert "| heartbeat | 5 | 5 | 5 | 5 | yes |" in text and "Result: PASS" in text
    assert "Largest fleet with bounded lag: 1,000 printers." in format_steps([result])
    png = draw(samples, "test", tmp_path / "soak.png", 30.0)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # Written with its .json, which --report judges and draws again to the same report.
    md, _ = write(result, tmp_path / "out", "soak-1000")
    assert md.read_text().startswith(text)
    assert format_report(load(tmp_path / "out" / "soak-1000.json")) == text


def test_options() -> None:
    assert SoakOptions().printers == 10_000 and SoakOptions().simulators == 10
    assert SoakOptions(sites=10, printers_per_site=100).simulators == 2
    assert fleet_split(2500, 10) == 250 and fleet_split(5, 10) == 1
    command = parse(["--step", "2000,1000", "--step-minutes", "3"], "")
    assert command.steps == (1000, 2000) and command.step_minutes == 3.0
    with pytest.raises(ValueError):
        SoakOptions(printers_per_site=2001)
    for bad in (["--sites", "9"], ["--step", "a,b"], ["--step", "30000"]):
        with pytest.raises(SystemExit):
            parse(bad, "")
