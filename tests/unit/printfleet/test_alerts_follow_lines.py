"""What `printfleet alerts follow` prints per lifecycle change, and how it tells a message
that is no alert from one that is (reported, never silently skipped)."""

from __future__ import annotations

import csv
import io
import json

from common.alert_view import COLUMNS, TABLE_COLUMNS, cell, record_row
from common.kafka.tail import Message
from printfleet.cmd_alerts import decode, line
from schemas import SchemaRegistry
from schemas.samples import sample_record

REGISTRY = SchemaRegistry.load_default()


def _message(value: bytes | None) -> Message:
    return Message("alerts", 2, 7, b"dev-1", value)


def test_an_alert_decodes_to_its_record_at_the_newest_version() -> None:
    v1 = REGISTRY.encode("alert", sample_record("alert"), version=1)
    record = decode(REGISTRY, _message(v1))
    assert isinstance(record, dict)
    assert record["occurrences"] == 1 and record["confidence"] == 1.0  # v2's defaults


def test_what_is_no_alert_is_reported_with_why() -> None:
    other = decode(REGISTRY, _message(REGISTRY.encode("heartbeat", sample_record("heartbeat"))))
    garbage = decode(REGISTRY, _message(b"not avro"))
    assert isinstance(other, str) and "heartbeat" in other
    assert isinstance(garbage, str) and garbage.startswith("NotSingleObjectError")
    assert decode(REGISTRY, _message(None)) == "no value (a tombstone)"


def test_json_lines_csv_and_table_carry_the_same_values() -> None:
    row = record_row(REGISTRY.decode(REGISTRY.encode("alert", sample_record("alert"))).record)
    as_json = json.loads(line(row, "json"))
    assert list(as_json) == list(COLUMNS) and as_json == row
    [as_csv] = list(csv.reader(io.StringIO(line(row, "csv"))))
    assert as_csv == [str(cell(row[c])) for c in COLUMNS]
    assert line(row, "table").rstrip("\n").split("  ") == [str(cell(row[c])) for c in TABLE_COLUMNS]
    assert line(row, "json").count("\n") == 1  # one change, one line, for `while read` tools


def test_the_recommended_part_numbers_are_a_list_in_json_and_one_cell_in_csv_and_table() -> None:
    alert = REGISTRY.decode(REGISTRY.encode("alert", sample_record("alert"))).record
    alert["recommended_parts"] = [{"part_number": "F9K08A", "description": "Printhead", "quantity": 2},
                                  {"part_number": "3ED60A", "description": "Cleaning roll", "quantity": 1}]
    row = record_row(alert)
    assert json.loads(line(row, "json"))["recommended_part_numbers"] == ["F9K08A", "3ED60A"]
    [as_csv] = list(csv.reader(io.StringIO(line(row, "csv"))))
    assert as_csv[COLUMNS.index("recommended_part_numbers")] == "F9K08A 3ED60A"
    cells = line(row, "table").rstrip("\n").split("  ")
    assert cells[TABLE_COLUMNS.index("recommended_part_numbers")] == "F9K08A 3ED60A"
