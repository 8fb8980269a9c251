"""`printfleet bench streams` judges each path by the median of its repeats and shows each."""

from __future__ import annotations

import pytest

from benchmarks.streams import Options, Throughput, _median_rate, _report
from common.kafka.settings import KafkaSettings


def _runs(path: str, *rates: float) -> list[Throughput]:
    # 120,000 records each, all timed, at `rate` records/s; the baseline at 100,000/s.
    return [Throughput(path, 120_000, 120_000 / rate, 1.2, 120_000) for rate in rates]


def test_the_verdict_is_on_the_median_of_the_repeats_and_every_repeat_is_shown(capsys: pytest.CaptureFixture[str]) -> None:
    results = {"heartbeat": _runs("heartbeat", 26_000, 19_000, 21_000), "event": _runs("event", 18_000, 30_000, 19_500)}
    assert _median_rate(results["heartbeat"]) == pytest.approx(21_000)
    assert _median_rate(results["event"]) == pytest.approx(19_500)

    _report(Options(KafkaSettings("127.0.0.1:1"), repeats=3), results, [0.01, 0.02])

    out = capsys.readouterr().out
    assert "each path measured 3 times" in out
    heartbeat = next(line for line in out.splitlines() if line.startswith("| heartbeat"))
    event = next(line for line in out.splitlines() if line.startswith("| event"))
    assert "21,000 (26,000 / 19,000 / 21,000)" in heartbeat and "(met)" in heartbeat
    assert "19,500 (18,000 / 30,000 / 19,500)" in event and "(MISSED)" in event  # one fast run does not carry it
    assert "100,000" in heartbeat  # the baseline's median


def test_per_worker_figures_divide_by_the_workers(capsys: pytest.CaptureFixture[str]) -> None:
    _report(Options(KafkaSettings("127.0.0.1:1"), workers=2, repeats=1), {"heartbeat": _runs("heartbeat", 36_000)}, [])
    heartbeat = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("| heartbeat"))
    assert "| 36,000 (36,000) | 18,000 |" in heartbeat and "(MISSED)" in heartbeat
