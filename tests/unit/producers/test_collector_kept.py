"""The collector's kept-aside store (producers/collector/kept.py): durable, bounded, each
record once, and sent back into the spool exactly once whatever step a crash cuts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from producers.collector.kept import KeptRecord, KeptStore, Taken, appended_already
from producers.collector.uploader import Uploader, UploaderSettings
from producers.spool.async_spool import AsyncSpool
from producers.spool.spool import RecordClass, Spool
from spool_helpers import drain, make


def _record(seq: int, device: str = "prn-7", reason: str = "foreign_device", at: float = 0.0) -> KeptRecord:
    return KeptRecord(seq, device, reason, f"device {device!r} is not enrolled", at or float(seq), b"payload-%d" % seq)


def _store(tmp_path: Path, **kw: int) -> KeptStore:
    store = KeptStore(tmp_path / "kept", tmp_path / "rejected", max_records=kw.get("max_records", 1000),
                      max_bytes=kw.get("max_bytes", 1 << 20))
    assert store.open() == []
    return store


def test_kept_records_survive_a_restart_once_each_with_counts_per_device_and_reason(tmp_path: Path) -> None:
    store = _store(tmp_path)
    assert store.add([_record(1), _record(2), _record(3, "dev/../x", "unknown_fingerprint")]) == 3
    # The same batch answered again (its ack was lost to a crash): not kept twice.
    assert store.add([_record(2), _record(3, "dev/../x", "unknown_fingerprint")]) == 0
    again = _store(tmp_path)
    assert again.records == 3 and again.bytes == sum(len(_record(s).payload) for s in (1, 2, 3))
    assert again.counts() == {"prn-7": {"foreign_device": 2}, "dev/../x": {"unknown_fingerprint": 1}}
    assert again.add([_record(1)]) == 0
    assert sorted(p.name for p in (tmp_path / "kept").iterdir()) == ["d-dev%2F..%2Fx.jsonl", "d-prn-7.jsonl"]


def test_past_its_bounds_the_oldest_records_move_to_rejected_with_their_reason(tmp_path: Path) -> None:
    store = _store(tmp_path, max_records=3)
    store.add([_record(10, "a", at=1.0), _record(11, "b", at=2.0)])
    store.add([_record(12, "a", at=3.0), _record(13, "b", at=4.0), _record(14, "c", at=5.0)])
    assert store.records == 3 and store.counters.evicted == 2
    assert store.counts() == {"a": {"foreign_device": 1}, "b": {"foreign_device": 1}, "c": {"foreign_device": 1}}
    moved = json.loads((tmp_path / "rejected" / "kept-a-10-10.jsonl").read_text())
    assert (moved["seq"], moved["device_id"], moved["reason"]) == (10, "a", "foreign_device") and "full" in moved["moved"]
    assert KeptRecord.parse((tmp_path / "rejected" / "kept-b-11-11.jsonl").read_bytes()) == _record(11, "b", at=2.0)
    assert _store(tmp_path, max_records=3).records == 3  # the files say the same after a restart

    by_bytes = _store(tmp_path / "b", max_bytes=len(_record(1).payload) * 2)
    by_bytes.add([_record(1), _record(2), _record(3)])
    assert by_bytes.records == 2 and (tmp_path / "b" / "rejected" / "kept-prn-7-1-1.jsonl").exists()


def test_appended_already_reads_the_spool_after_each_crash_point() -> None:
    records = tuple(_record(s) for s in (1, 2, 3))
    assert appended_already(Taken("d", records, None), 50, 0, []) == 0  # no mark: never appended
    assert appended_already(Taken("d", records, 40), 40, 0, []) == 0  # nothing numbered from the mark
    assert appended_already(Taken("d", records, 40), 43, 0, [40, 41, 42]) == 3  # appended, not sent
    assert appended_already(Taken("d", records, 40), 42, 0, [40, 41]) == 2  # a torn tail kept two
    assert appended_already(Taken("d", records, 40), 60, 41, [42, 50]) == 3  # some sent already
    assert appended_already(Taken("d", records, 40), 60, 0, [43, 44]) == 0  # the pollers' records only


def _uploader(tmp_path: Path, spool: Spool) -> Uploader:
    settings = UploaderSettings(gateway_url="http://127.0.0.1:9", token="t", rejected_dir=tmp_path / "rejected",
                                state_file=tmp_path / "upload.json", kept_dir=tmp_path / "kept", resend_kept_s=3600)
    return Uploader(settings, AsyncSpool(spool))


async def test_kept_records_go_back_into_the_spool_with_new_numbers(tmp_path: Path) -> None:
    spool = make(tmp_path / "spool")
    spool.append_many([(RecordClass.KEEP, b"old-1"), (RecordClass.KEEP, b"old-2")])
    spool.ack(spool.peek())
    uploader = _uploader(tmp_path, spool)
    await uploader.open()
    uploader.kept.add([_record(1), _record(2, "other")])
    assert await uploader.resend_kept() == 0  # not due yet
    assert await uploader.resend_kept(force=True) == 2
    assert [(r.seq, r.payload) for r in drain(spool)] == [(3, b"payload-2"), (4, b"payload-1")]
    assert uploader.kept.records == 0 and uploader.kept.counts() == {} and uploader.kept.counters.resent == 2
    assert list((tmp_path / "kept").iterdir()) == []
    spool.close()


@pytest.mark.parametrize("crash", ["after_take", "after_rename", "after_append", "after_part_sent"])
async def test_a_resend_cut_by_a_crash_lands_in_the_spool_exactly_once(tmp_path: Path, crash: str) -> None:
    spool = make(tmp_path / "spool")
    store = _store(tmp_path)
    store.add([_record(1), _record(2), _record(3)])
    next_seq = spool.stats().next_seq
    if crash == "after_rename":  # the crash came before the mark was written
        (tmp_path / "kept" / "d-prn-7.jsonl").rename(tmp_path / "kept" / "d-prn-7.resending")
    else:
        taken = store.take("prn-7", next_seq)
        if crash in ("after_append", "after_part_sent"):
            spool.append_many([(RecordClass.KEEP, r.payload) for r in taken.records])
            spool.append_many([(RecordClass.KEEP, b"a poll after the resend")])
        if crash == "after_part_sent":
            spool.ack(spool.peek(max_records=1))
    spool.close()

    spool = make(tmp_path / "spool")  # the restart
    uploader = _uploader(tmp_path, spool)
    await uploader.open()
    assert not list((tmp_path / "kept").glob("*.resending*"))
    await uploader.resend_kept(force=True)  # what the spool did not hold goes now
    payloads = [r.payload for r in drain(spool)]
    if crash == "after_part_sent":
        payloads.insert(0, b"payload-1")  # acked: uploaded before the crash
    assert sorted(p for p in payloads if p.startswith(b"payload-")) == [b"payload-1", b"payload-2", b"payload-3"]
    assert uploader.kept.records == 0 and list((tmp_path / "kept").iterdir()) == []
    spool.close()


async def test_a_crash_inside_the_recovery_of_a_cut_resend_keeps_each_record_once(tmp_path: Path) -> None:
    spool = make(tmp_path / "spool")
    store = _store(tmp_path)
    store.add([_record(1), _record(2)])
    store.take("prn-7", spool.stats().next_seq)  # the crash: nothing appended
    # `requeue` keeps them again first; the crash comes before the resend's files go.
    kept = tmp_path / "kept"
    (kept / "d-prn-7.jsonl").write_bytes((kept / "d-prn-7.resending").read_bytes())
    third = KeptStore(tmp_path / "kept", tmp_path / "rejected", max_records=1000, max_bytes=1 << 20)
    [taken] = third.open()
    third.requeue(taken, taken.records)
    assert third.records == 2 and third.counts() == {"prn-7": {"foreign_device": 2}}
    assert _store(tmp_path).records == 2
    spool.close()
