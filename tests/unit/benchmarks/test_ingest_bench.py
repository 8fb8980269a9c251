"""`printfleet bench ingest`, pure logic only (no simulator, gateway or Kafka): unit
arithmetic, cadence scaling and normalisation, the real-time upload-round model, /proc
parsing, tables, the records the gateway part sends, and the argument checks."""

from __future__ import annotations

import dataclasses
import math
import multiprocessing as mp
import os
from pathlib import Path

import pytest

from producers import batch_format
from benchmarks.ingest.collector import COLLECTOR_ENV, collector_environment
from benchmarks.ingest.main import run
from benchmarks.ingest.gateway import HeartbeatFactory, random_id_prefix
from benchmarks.ingest.report import (
    GATEWAY_TARGET_RECORDS_S,
    MET,
    MISSED,
    PARTS,
    SITE_BUDGET_KBIT_S,
    Uploaded,
    cadence_factors,
    cpu_percent,
    fmt_bytes,
    fmt_num,
    kbit_s,
    markdown_table,
    parse_parts,
    per_printer_kbit_s,
    ratio,
    records_per_hour,
    scaled_cadence,
    upload_rounds,
    verdict,
)
from benchmarks.ingest.site import busy_fraction, cpu_seconds, machine_jiffies, status_kib
from benchmarks.ingest.wire import KindFigures, ProbeFigures, WireOptions, WireResult
from producers.collector.config import Cadence
from schemas import SchemaRegistry

# -- targets and units ------------------------------------------------------------------


def test_the_site_budget_is_half_a_percent_of_five_megabit() -> None:
    assert SITE_BUDGET_KBIT_S == pytest.approx(25.0)
    assert GATEWAY_TARGET_RECORDS_S == 50_000


def test_kbit_s_is_bits_per_second_over_a_thousand() -> None:
    assert kbit_s(125, 1) == pytest.approx(1.0)
    assert kbit_s(450_000, 3600) == pytest.approx(1.0)  # 450 kB an hour is 1 kbit/s


def test_per_printer_kbit_s_divides_by_printer_hours() -> None:
    # 20 printers for 6 hours sending 54 MB in all: 450 kB per printer-hour.
    assert per_printer_kbit_s(54_000_000, 20, 6.0) == pytest.approx(1.0)
    assert per_printer_kbit_s(0, 3, 1.0) == 0.0


def test_kbit_s_refuses_an_empty_interval() -> None:
    with pytest.raises(ValueError):
        kbit_s(1, 0)


def test_verdicts_in_both_directions() -> None:
    assert verdict(0.4, 1.0, at_most=True) == MET
    assert verdict(1.0, 1.0, at_most=True) == MET
    assert verdict(1.01, 1.0, at_most=True) == MISSED
    assert verdict(50_000, 50_000, at_most=False) == MET
    assert verdict(49_999, 50_000, at_most=False) == MISSED


def test_ratio_and_cpu_percent() -> None:
    assert ratio(6, 3) == 2
    assert ratio(1, 0) == math.inf
    assert cpu_percent(10.0, 10.5, 10.0) == pytest.approx(5.0)
    with pytest.raises(ValueError):
        cpu_percent(0, 1, 0)


# -- cadence ----------------------------------------------------------------------------


def test_scaled_cadence_divides_every_period() -> None:
    scaled = scaled_cadence(Cadence(), 180.0)
    for f in dataclasses.fields(Cadence):
        assert getattr(scaled, f.name) == pytest.approx(getattr(Cadence(), f.name) / 180.0)
    with pytest.raises(ValueError):
        scaled_cadence(Cadence(), 0)


def test_a_scaled_cadence_polls_as_often_per_simulated_hour() -> None:
    acceleration = 240.0
    real_seconds_per_simulated_hour = 3600 / acceleration
    scaled = scaled_cadence(Cadence(), acceleration)
    assert real_seconds_per_simulated_hour / scaled.heartbeat_s == pytest.approx(360)
    assert real_seconds_per_simulated_hour / scaled.identity_s == pytest.approx(1)


def test_records_per_hour_at_the_default_cadence() -> None:
    rates = records_per_hour(Cadence())
    assert rates["heartbeat"] == 360
    assert rates["usage_counters"] == 12
    assert rates["printhead_system"] == rates["build_unit"] == 12
    assert rates["device_identity"] == 1
    assert "job" not in rates  # paged kinds follow the printers, not the cadence


def test_cadence_factors_bring_late_polls_up_to_the_cadence() -> None:
    counts = {"heartbeat": 3240, "usage_counters": 120, "job": 7}
    factors = cadence_factors(counts, printer_hours=10.0, cadence=Cadence())
    assert factors["heartbeat"] == pytest.approx(3600 / 3240)
    assert factors["usage_counters"] == pytest.approx(1.0)
    assert factors["job"] == 1.0


# -- the real-time upload rounds ----------------------------------------------------------


def test_records_of_one_second_share_an_upload() -> None:
    records = [Uploaded("heartbeat", "a", 10_100), Uploaded("heartbeat", "b", 10_900), Uploaded("heartbeat", "a", 20_100)]
    assert upload_rounds(records) == [[0, 1], [2]]


def test_a_paged_record_joins_its_printers_next_poll() -> None:
    records = [
        Uploaded("heartbeat", "a", 10_000),
        Uploaded("heartbeat", "a", 20_000),
        Uploaded("system_event", "a", 13_500),  # happened between polls: read at 20 s
        Uploaded("job", "a", 25_000),  # after the last poll seen: the last round
        Uploaded("device_log", "b", 13_500),  # no heartbeat of b: its own second
        Uploaded("usage_counters", "a", 13_500),  # a cadence record: its own second
    ]
    assert upload_rounds(records) == [[0], [4, 5], [1, 2, 3]]


def test_upload_rounds_of_nothing() -> None:
    assert upload_rounds([]) == []


# -- /proc parsing ----------------------------------------------------------------------


def test_cpu_seconds_counts_fields_after_the_command_name() -> None:
    stat = "4242 (python (bench) x) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 3 0 99 1000 200"
    assert cpu_seconds(stat, 100) == pytest.approx(3.0)


def test_status_kib_reads_one_key() -> None:
    status = "Name:\tpython\nVmHWM:\t  204800 kB\nVmRSS:\t  102400 kB\n"
    assert status_kib(status, "VmRSS") == 102400
    assert status_kib(status, "VmHWM") == 204800
    with pytest.raises(KeyError):
        status_kib(status, "VmSwap")


def test_machine_busy_fraction_from_proc_stat() -> None:
    before = machine_jiffies("cpu  100 0 100 700 100 0 0 0 0 0\ncpu0 1 2 3\n")
    after = machine_jiffies("cpu  200 0 200 800 100 0 0 0 0 0\n")
    assert before == (200, 1000)
    assert busy_fraction(before, after) == pytest.approx(200 / 300)
    assert busy_fraction(after, after) == 0.0


# -- tables -----------------------------------------------------------------------------


def test_markdown_table_aligns_numbers_right() -> None:
    text = markdown_table(["what", "n"], [("a", "1"), ("b", "22")])
    assert text.splitlines() == ["| what | n |", "|---|---:|", "| a | 1 |", "| b | 22 |"]


def test_markdown_table_refuses_ragged_rows() -> None:
    with pytest.raises(ValueError):
        markdown_table(["a", "b"], [("1",)])
    with pytest.raises(ValueError):
        markdown_table(["a", "b"], [], numeric=[True])


def test_number_formats() -> None:
    assert fmt_num(1234.5) == "1,234"
    assert fmt_num(12.34) == "12.3"
    assert fmt_num(1.234) == "1.23"
    assert fmt_num(0.01234) == "0.0123"
    assert fmt_num(0) == "0.00"
    assert fmt_num(math.inf) == "inf"
    assert fmt_bytes(237_946) == "237.9 kB"
    assert fmt_bytes(12) == "12 B"


# -- parts and arguments ----------------------------------------------------------------


def test_parse_parts() -> None:
    assert parse_parts("all") == PARTS
    assert parse_parts("collector, wire") == ("wire", "collector")
    for bad in ("", "wire,disk", "everything"):
        with pytest.raises(ValueError):
            parse_parts(bad)


@pytest.mark.parametrize("argv", [["--part", "disk"], ["--hours", "0"], ["--clients", "-1"]])
def test_bad_flags_exit_2_before_anything_starts(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        run(argv)
    assert exit_info.value.code == 2
    assert "printfleet bench ingest" in capsys.readouterr().err


def test_help_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        run(["--help"])
    assert exit_info.value.code == 0
    assert "--part" in capsys.readouterr().out


# -- what the parts compute -------------------------------------------------------------


def test_heartbeat_factory_makes_distinct_valid_records_of_the_site() -> None:
    registry = SchemaRegistry.load_default()
    devices = ["0b6c2d8e-5f1a-4c3b-9d7e-1a2b3c4d5e6f", "51d2aa10-0000-4000-8000-000000000001"]
    factory = HeartbeatFactory(registry, "bench-site", devices, random_id_prefix())
    triples = factory.messages(5)
    decoded = [registry.decode(m) for _, m, _ in triples]
    assert {d.kind for d in decoded} == {"heartbeat"}
    assert {d.record["site_id"] for d in decoded} == {"bench-site"}
    assert [d.record["device_id"].encode() for d in decoded] == [k for k, _, _ in triples]
    assert [d.record["device_id"] for d in decoded][:2] == devices
    ids = [d.record["record_id"] for d in decoded]
    assert len(set(ids)) == 5 and all(len(i) == 36 for i in ids)
    body = batch_format.encode_batch(m for _, m, _ in triples)
    assert batch_format.split_frames(batch_format.decompress(body, 1 << 20), 10) == [m for _, m, _ in triples]


def test_random_id_prefix_is_the_head_of_a_v4_uuid() -> None:
    prefix = random_id_prefix()
    assert len(prefix) == 20 and prefix[8] == prefix[13] == prefix[18] == "-"
    assert prefix[14] == "4" and prefix[19] == "8"


def _wire_result(heartbeats: int) -> WireResult:
    probe = ProbeFigures(900.0, 1600.0, 300.0, 200.0, 1000.0, 1600.0, "TLSv1.3")
    result = WireResult(options=WireOptions(printers=2, hours=1.0), printer_hours=2.0, body_bytes=0, up=0, down=0,
                        connections=0, batches=0, records=heartbeats + 1, heartbeats_per_printer_hour=0.0,
                        expected_heartbeats_per_hour=360.0, probe=probe)
    result.kinds = {
        "heartbeat": KindFigures(heartbeats, 130 * heartbeats, 400 * heartbeats, 130),
        "job": KindFigures(1, 20_000, 100_000, 20_000),
    }
    result.round_count, result.round_body_bytes = 100, 50_000
    return result


def test_a_run_at_full_cadence_needs_no_normalising() -> None:
    r = _wire_result(720)  # 360 per printer-hour, 2 printer-hours
    assert r.model_up_bytes_normalised == pytest.approx(r.model_up_bytes) == pytest.approx(50_000 + 100 * 300)
    assert r.baseline_up_bytes_normalised == pytest.approx(400 * 720 + 100_000 + 721 * 1000)


def test_a_late_run_is_normalised_up_to_the_cadence() -> None:
    r = _wire_result(360)  # half the heartbeats the cadence asks for
    avro, full = 130 * 360 + 20_000, 130 * 720 + 20_000
    assert r.model_up_bytes_normalised == pytest.approx(50_000 * full / avro + 100 * 2 * 300)
    assert r.baseline_up_bytes_normalised == pytest.approx((400 * 360 + 360 * 1000) * 2 + 100_000 + 1000)
    shares = {row[0]: row for row in r.kind_shares()}
    assert shares["heartbeat"][1] == pytest.approx(180)  # records per printer-hour as counted
    assert shares["heartbeat"][4] == pytest.approx(kbit_s(130 * 720, 2 * 3600))  # bytes normalised
    assert sum(row[5] for row in shares.values()) == pytest.approx(1.0)


def _report_env(name: str, results: "mp.Queue[str | None]") -> None:
    results.put(os.environ.get(name))


def test_the_collector_child_runs_with_the_malloc_setting_production_uses() -> None:
    repo = Path(__file__).resolve().parents[3]
    unit = (repo / "deploy/systemd/printfleet-collector.service").read_text()
    image = (repo / "deploy/container/Dockerfile").read_text()
    for name, value in COLLECTOR_ENV.items():
        assert f"Environment={name}={value}" in unit
        assert f"ENV {name}={value}" in image
    # A spawned child (as `_one_run` starts the collector) sees it; this process does not keep it.
    ctx = mp.get_context("spawn")
    results: "mp.Queue[str | None]" = ctx.Queue()
    child = ctx.Process(target=_report_env, args=("MALLOC_MMAP_THRESHOLD_", results))
    before = os.environ.get("MALLOC_MMAP_THRESHOLD_")
    with collector_environment(COLLECTOR_ENV):
        child.start()
    child.join(60)
    assert results.get(timeout=5) == COLLECTOR_ENV["MALLOC_MMAP_THRESHOLD_"]
    assert os.environ.get("MALLOC_MMAP_THRESHOLD_") == before
