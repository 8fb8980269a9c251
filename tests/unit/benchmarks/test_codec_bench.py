"""The codec bench runs and reports; the samples it uses are realistic and stable; the
timestamp helpers convert both ways."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from benchmarks import codec as bench
from schemas.errors import UnknownSchemaError
from schemas.kinds import KINDS
from schemas.registry import SchemaRegistry
from schemas.samples import sample_record, sample_records
from schemas.timestamps import from_days, from_millis, now_millis, to_days, to_millis


def test_bench_prints_a_table_and_the_targets(capsys: pytest.CaptureFixture[str]) -> None:
    assert bench.run(["--records", "20", "--repeats", "1", "--kinds", "heartbeat,job"]) == 0
    out = capsys.readouterr().out
    assert "heartbeat" in out and "job" in out and "Python" in out and "fastavro" in out
    verdicts = [line.split()[0] for line in out.splitlines() if line.startswith("  M")]
    assert len(verdicts) == 7 and set(verdicts) <= {"MET", "MISSED"}


def test_bench_markdown_and_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert bench.run(["--records", "5", "--repeats", "1", "--kinds", "alert", "--markdown"]) == 0
    assert "| alert |" in capsys.readouterr().out
    with pytest.raises(SystemExit) as caught:
        bench.run(["--help"])
    assert caught.value.code == 0
    assert "--records" in capsys.readouterr().out


@pytest.mark.parametrize("argv", [["--kinds", "nope"], ["--records", "0"], ["--bogus"]])
def test_bench_refuses_bad_arguments(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        bench.run(argv)
    assert caught.value.code == 2


def test_measure_reports_sizes_and_rates() -> None:
    result = bench.measure(SchemaRegistry.load_default(), "heartbeat", 50, 1)
    assert result.message_bytes == result.body_bytes + 10
    assert result.json_bytes > result.message_bytes
    assert min(result.encode, result.raw_encode, result.decode, result.decode_typed, result.raw_decode) > 0
    assert [ok for _, ok in bench.targets(result)][-1]  # the size target does not depend on the machine


def test_samples_are_deterministic_and_varied() -> None:
    for kind in KINDS:
        assert sample_record(kind, seed=3) == sample_record(kind, seed=3)
        assert sample_record(kind, seed=3) != sample_record(kind, seed=4)
    assert len({r["record_id"] for r in sample_records("heartbeat", 100)}) == 100
    heartbeat = sample_record("heartbeat")
    assert heartbeat["activity"] == "PRINTING" and 0 < heartbeat["layers_done"] < heartbeat["layers_total"]
    assert "schema_version" not in heartbeat
    with pytest.raises(UnknownSchemaError):
        sample_record("nope")


def test_timestamp_helpers() -> None:
    moment = datetime(2025, 3, 14, 9, 26, 53, 589000, tzinfo=timezone.utc)
    assert to_millis(moment) == 1_741_944_413_589
    assert from_millis(1_741_944_413_589) == moment
    assert to_millis(moment.astimezone(timezone(timedelta(hours=2)))) == 1_741_944_413_589
    with pytest.raises(ValueError):
        to_millis(datetime(2025, 1, 1))
    assert from_days(to_days(date(2031, 12, 31))) == date(2031, 12, 31)
    assert to_days(date(1970, 1, 2)) == 1
    assert abs(now_millis() - to_millis(datetime.now(timezone.utc))) < 5_000
