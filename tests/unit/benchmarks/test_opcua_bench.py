"""`printfleet bench opcua`, pure parts only (no simulator, no collector): figures per
device and device-hour, the collection check, medians, ratios, verdicts, the tables, the
relay URL and the argument checks."""

from __future__ import annotations

import math

import pytest

from benchmarks.opcua.main import run
from benchmarks.opcua.report import (
    OPCUA,
    PRINTER_API,
    Figures,
    Sample,
    collection_problems,
    figures,
    medians,
    medians_table,
    paired_ratios,
    ratios,
    runs_table,
    verdict,
)
from benchmarks.opcua.runner import relayed


def sample(protocol: str = PRINTER_API, **kw: object) -> Sample:
    values: dict[str, object] = dict(
        protocol=protocol, devices=100, answered=100, seconds=360.0, cpu_s=36.0, rss_bytes=200 * 2**20,
        peak_rss_bytes=250 * 2**20, bytes_up=1_000_000, bytes_down=3_000_000, connections=3_600,
        spooled={"heartbeat": 3_600, "system_event": 400}, devices_spooling=100, kept_aside=0, poll_failures=0,
        warmup_s=40.0, steady=True,
    )
    values.update(kw)
    return Sample(**values)  # type: ignore[arg-type]


def test_figures_divide_by_devices_and_device_hours() -> None:
    f = figures(sample())
    # 36 CPU s in 360 s is 10 % of a core, over 100 devices; 360 s x 100 devices = 10 device-hours.
    assert f.cpu_pct_per_device == pytest.approx(0.1)
    assert f.rss_mib == pytest.approx(200.0) and f.rss_mib_per_device == pytest.approx(2.0)
    assert f.peak_rss_mib == pytest.approx(250.0)
    assert f.up_per_device_hour == pytest.approx(100_000.0)
    assert f.down_per_device_hour == pytest.approx(300_000.0)
    assert f.lan_per_device_hour == pytest.approx(400_000.0)
    assert f.records_per_device_hour == pytest.approx(400.0)
    assert f.heartbeats_per_device_hour == pytest.approx(360.0)


def test_figures_refuse_an_empty_window() -> None:
    with pytest.raises(ValueError, match="seconds > 0"):
        figures(sample(seconds=0.0))
    with pytest.raises(ValueError, match="devices > 0"):
        figures(sample(devices=0))


def test_a_run_on_the_cadence_collected() -> None:
    assert collection_problems(sample(), heartbeat_s=10.0) == []


def test_a_run_where_devices_spooled_nothing_did_not_collect() -> None:
    problems = collection_problems(sample(devices_spooling=0, spooled={}), heartbeat_s=10.0)
    assert problems == ["100 of 100 devices spooled nothing", "0 heartbeats per device-hour, expected 360"]


def test_heartbeats_off_the_cadence_did_not_collect() -> None:
    # 2,000 heartbeats in 10 device-hours: 200 per device-hour against 360.
    assert collection_problems(sample(spooled={"heartbeat": 2_000}), heartbeat_s=10.0) == [
        "200 heartbeats per device-hour, expected 360"]
    # Within 20 %: 3,000 is 300 per device-hour.
    assert collection_problems(sample(spooled={"heartbeat": 3_000}), heartbeat_s=10.0) == []


def alternating(api_cpu: list[float], ua_cpu: list[float]) -> list[Figures]:
    runs = []
    for a, b in zip(api_cpu, ua_cpu):
        runs.append(figures(sample(PRINTER_API, cpu_s=a)))
        runs.append(figures(sample(OPCUA, cpu_s=b, bytes_up=250_000, bytes_down=750_000)))
    return runs


def test_medians_take_the_middle_run_of_one_protocol() -> None:
    runs = alternating([36.0, 72.0, 18.0], [9.0, 90.0, 18.0])
    api = medians([r for r in runs if r.protocol == PRINTER_API])
    ua = medians([r for r in runs if r.protocol == OPCUA])
    assert api["cpu_pct_per_device"] == pytest.approx(0.1)  # 36 of 18, 36, 72
    assert ua["cpu_pct_per_device"] == pytest.approx(0.05)  # 18 of 9, 18, 90
    assert ratios(ua, api)["cpu_pct_per_device"] == pytest.approx(0.5)
    assert ratios(ua, api)["lan_per_device_hour"] == pytest.approx(0.25)


def test_medians_refuse_no_runs_and_mixed_protocols() -> None:
    with pytest.raises(ValueError, match="no runs"):
        medians([])
    with pytest.raises(ValueError, match="several protocols"):
        medians(alternating([1.0], [1.0]))


def test_a_ratio_over_nothing_is_infinite() -> None:
    api = medians([figures(sample(cpu_s=0.0))])
    ua = medians([figures(sample(OPCUA))])
    assert math.isinf(ratios(ua, api)["cpu_pct_per_device"])


def test_paired_ratios_follow_the_run_order() -> None:
    runs = alternating([36.0, 72.0, 18.0], [9.0, 90.0, 18.0])
    assert paired_ratios(runs, "cpu_pct_per_device") == pytest.approx([0.25, 1.25, 1.0])


def test_verdict_names_the_cheaper_protocol_and_whether_the_pairs_agree() -> None:
    agree = verdict(alternating([36.0, 40.0, 38.0], [9.0, 10.0, 12.0]), "cpu_pct_per_device", "CPU")
    assert agree.startswith("CPU: OPC UA / printer API = 0.263 (median of each); OPC UA costs less; every pair agrees")
    split = verdict(alternating([36.0, 72.0, 18.0], [9.0, 90.0, 18.0]), "cpu_pct_per_device", "CPU")
    assert "the pairs disagree" in split
    assert verdict(alternating([1.0, 2.0], [1.0, 2.0]), "cpu_pct_per_device", "CPU") == \
        "CPU: no verdict, fewer than 3 runs of each protocol"


def test_tables_have_a_row_per_run_and_per_figure() -> None:
    samples = [sample(PRINTER_API), sample(OPCUA, steady=False)]
    runs = [figures(s) for s in samples]
    table = runs_table(runs, samples).splitlines()
    assert len(table) == 2 + 2
    assert table[2].startswith("| 1 printer-api | 100 | 360 | 10.0 | 0.1 |")
    assert "(not steady)" in table[3]
    assert medians_table(runs).splitlines()[2] == "| CPU % of one core per device | 0.1 | 0.1 | 1.00 |"


def test_relayed_keeps_everything_but_the_port() -> None:
    assert relayed("https://127.0.0.1:18443/printers/p001/", 5000) == "https://127.0.0.1:5000/printers/p001/"
    assert relayed("opc.tcp://127.0.0.1:4840/printfleet/", 41) == "opc.tcp://127.0.0.1:41/printfleet/"


@pytest.mark.parametrize("flag", ["--printers", "--runs", "--seconds", "--opcua-port"])
def test_counts_and_durations_must_be_positive(flag: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        run([flag, "0"])
    assert exc.value.code == 2
    assert f"{flag} must be > 0" in capsys.readouterr().err

