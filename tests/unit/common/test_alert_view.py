"""Filters and rows of `printfleet alerts`: the same alert passes the same filters and
prints the same values whether it came from ClickHouse or from the alerts topic."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from common.alert_view import COLUMNS, SEVERITIES, TABLE_COLUMNS, AlertFilter, cell, query_row, record_row
from schemas import SchemaRegistry
from schemas.samples import sample_record

REGISTRY = SchemaRegistry.load_default()


def _alert(**changes: Any) -> dict[str, Any]:
    record = REGISTRY.decode(REGISTRY.encode("alert", sample_record("alert"))).record
    record.update(site_id="site-a", device_id="dev-1", rule_id="system-event", severity="ERROR", **changes)
    return record


def test_severities_are_the_schemas_in_order() -> None:
    assert SEVERITIES == REGISTRY.enum_symbols("alert", "Severity")


@pytest.mark.parametrize(("wanted", "passes"), [
    (AlertFilter(), True),
    (AlertFilter(site="site-a"), True),
    (AlertFilter(site="site-b"), False),
    (AlertFilter(printer="dev-1"), True),
    (AlertFilter(printer="dev-2"), False),
    (AlertFilter(rule="system-event"), True),
    (AlertFilter(rule="printer-offline"), False),
    (AlertFilter(min_severity="WARNING"), True),
    (AlertFilter(min_severity="ERROR"), True),
    (AlertFilter(min_severity="CRITICAL"), False),
    (AlertFilter(site="site-a", printer="dev-1", rule="system-event", min_severity="CRITICAL"), False),
])
def test_filter_matches_a_record(wanted: AlertFilter, passes: bool) -> None:
    assert wanted.matches(_alert()) is passes


def test_unknown_severity_is_refused_with_the_choices() -> None:
    with pytest.raises(ValueError, match="one of UNKNOWN, INFO, WARNING, ERROR, CRITICAL"):
        AlertFilter(min_severity="SEVERE")


def test_parameters_carry_the_rank_not_the_name() -> None:
    assert AlertFilter(site="s", min_severity="ERROR").parameters() == {"site": "s", "printer": "", "rule": "", "min_rank": 3}
    assert AlertFilter().parameters()["min_rank"] == 0


def test_a_record_and_its_clickhouse_row_print_the_same() -> None:
    record = _alert(event_time=1_748_736_060_000, raised_at=1_748_736_000_000, cleared_at=None)
    from_topic = record_row(record)
    assert tuple(from_topic) == COLUMNS
    assert from_topic["raised_at"] == "2025-06-01T00:00:00+00:00"
    assert from_topic["updated_at"] == "2025-06-01T00:01:00+00:00"
    assert from_topic["cleared_at"] is None
    # ClickHouse hands DateTime64(3, 'UTC') back as datetimes, maybe naive.
    values: dict[str, Any] = {**{c: record.get(c) for c in COLUMNS if c in record}, "updated_at": record["event_time"]}
    values["raised_at"] = dt.datetime(2025, 6, 1)
    values["updated_at"] = dt.datetime(2025, 6, 1, 0, 1, tzinfo=dt.timezone.utc)
    values["predicted_failure_at"] = None if record["predicted_failure_at"] is None else dt.datetime.fromtimestamp(
        record["predicted_failure_at"] / 1000, dt.timezone.utc)
    values["recommended_part_numbers"] = [p["part_number"] for p in record["recommended_parts"]]
    columns: list[str] = list(values)
    assert query_row(columns, tuple(values[c] for c in columns)) == from_topic


def test_the_recommended_part_numbers_are_shown_in_the_records_order() -> None:
    parts = [{"part_number": n, "description": "spare", "quantity": 1} for n in ("F9K09A", "3ED59A")]
    row = record_row(_alert(recommended_parts=parts))
    assert row["recommended_part_numbers"] == ["F9K09A", "3ED59A"]
    assert "recommended_part_numbers" in TABLE_COLUMNS
    assert record_row(_alert(recommended_parts=[]))["recommended_part_numbers"] == []
    # ClickHouse gives an alert without parts an empty array (LEFT JOIN default)
    assert query_row(["alert_id", "recommended_part_numbers"], ("a1", []))["recommended_part_numbers"] == []


def test_a_cell_joins_a_list_and_empties_none() -> None:
    assert cell(["F9K09A", "3ED59A"]) == "F9K09A 3ED59A"
    assert cell([]) == "" and cell(None) == ""
    assert cell(0.5) == 0.5 and cell("x") == "x"
