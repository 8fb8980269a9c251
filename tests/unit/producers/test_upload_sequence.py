"""How a batch says what it is: the uploader id and its records' sequence numbers
(producers/batch_format.py), what of a batch the gateway takes as new (`fresh`), the
uploader's state file, and the spool never numbering a record with a number once sent."""

from __future__ import annotations

from pathlib import Path

import pytest

from producers.batch_format import check_uploader, format_sequence, parse_sequence
from producers.collector.uploader import UploadState
from producers.errors import UploadFormatError
from producers.gateway.committer import Upload, fresh
from producers.gateway.publisher import OutRecord
from producers.spool.spool import RecordClass
from spool_helpers import drain, make


@pytest.mark.parametrize(
    ("seqs", "text"),
    [([1], "1"), ([7, 8, 9, 12], "7-9,12"), ([3, 5, 7], "3,5,7"), (list(range(1, 5001)), "1-5000"),
     ([2, 3, 10, 11, 12, 40], "2-3,10-12,40")],
)
def test_sequence_header_round_trips(seqs: list[int], text: str) -> None:
    assert format_sequence(seqs) == text
    assert parse_sequence(text, len(seqs)) == seqs


@pytest.mark.parametrize(
    ("text", "count"),
    [("", 1), ("x", 1), ("1-3", 2), ("1-3", 4), ("3-1", 3), ("0", 1), ("-1", 1), ("5,5", 2), ("5,4", 2),
     ("1-1000000000000", 3), ("1,,2", 2)],
)
def test_bad_sequence_headers_are_refused(text: str, count: int) -> None:
    with pytest.raises(UploadFormatError):
        parse_sequence(text, count)


def test_uploader_ids_are_checked() -> None:
    assert check_uploader("0123456789abcdef") == "0123456789abcdef"
    for bad in ("", "short", "UPPERCASE-ID", "a/b/c/d/e/f", "x" * 65):
        with pytest.raises(UploadFormatError):
            check_uploader(bad)


def _upload(seqs: list[int]) -> Upload:
    return Upload("site/uploader", seqs, [OutRecord("t", b"k", str(s).encode()) for s in seqs])


def test_records_at_or_below_the_mark_are_repeats_and_the_next_is_new() -> None:
    upload = _upload([10, 11, 12, 15])
    assert [r.value for r in fresh(upload, 0)] == [b"10", b"11", b"12", b"15"]
    assert [r.value for r in fresh(upload, 9)] == [b"10", b"11", b"12", b"15"]  # the mark's edge: 9 is below
    assert [r.value for r in fresh(upload, 10)] == [b"11", b"12", b"15"]
    assert [r.value for r in fresh(upload, 14)] == [b"15"]
    assert fresh(upload, 15) == []
    assert fresh(upload, 99) == []


def test_upload_state_survives_a_restart_and_a_broken_file_gets_a_new_id(tmp_path: Path) -> None:
    path = tmp_path / "upload.json"
    first = UploadState.load(path)
    assert first.sent_through == 0 and first.inflight is None and len(first.uploader) == 32
    UploadState(first.uploader, 120, (101, 120, 20)).save(path)
    again = UploadState.load(path)
    assert again == UploadState(first.uploader, 120, (101, 120, 20))
    path.write_text("{not json")
    broken = UploadState.load(path)
    assert broken.uploader != first.uploader and broken.sent_through == 0


def test_the_spool_numbers_new_records_past_every_number_sent(tmp_path: Path) -> None:
    spool = make(tmp_path / "spool")
    spool.append_many([(RecordClass.KEEP, b"a"), (RecordClass.KEEP, b"b")])  # 1, 2
    spool.number_past(50)  # the uploader sent up to 50 before records were lost
    spool.append_many([(RecordClass.KEEP, b"c")])
    assert [r.seq for r in drain(spool)] == [1, 2, 51]
    spool.number_past(10)  # below: nothing changes
    spool.close()
    reopened = make(tmp_path / "spool")  # durable: the floor is in the state file
    reopened.append_many([(RecordClass.DROPPABLE, b"d")])
    assert [r.seq for r in drain(reopened)] == [1, 2, 51, 52]
    reopened.close()
