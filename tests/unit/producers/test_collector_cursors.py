"""cursors.json is written once for the cursor moves of a second, not at every move, and
yet never lags a record out of the spool: an ack writes the cursors first
(`CursorSafeSpool`); the file is replaced whole, never torn."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from producers.collector.cursors import CursorSafeSpool, CursorStore
from producers.spool.spool import RecordClass, Spool


class _CountedCursors(CursorStore):
    """Counts the writes of the file, and can be told to fail them."""

    def __init__(self, path: Path, write_delay_s: float) -> None:
        super().__init__(path, write_delay_s)
        self.writes = 0
        self.fail = False

    def _write(self, text: str) -> None:
        if self.fail:
            raise OSError(28, "No space left on device")
        super()._write(text)
        self.writes += 1


@pytest.fixture()
def spool(tmp_path: Path) -> Iterator[Spool]:
    spool = Spool(tmp_path / "spool", max_bytes=1 << 20, fsync=False)
    spool.open()
    yield spool
    spool.close()


def _on_disk(path: Path) -> object:
    return json.loads(path.read_text()) if path.exists() else None


async def test_the_moves_of_one_delay_share_one_write_and_the_file_follows_without_more_calls(tmp_path: Path) -> None:
    path = tmp_path / "cursors.json"
    cursors = _CountedCursors(path, write_delay_s=0.2)
    for seq in range(1, 51):
        await cursors.set("d1", "events", seq)
        await cursors.set(f"d{seq}", "jobs", "opcua-event-7")
    assert cursors.writes == 0 and cursors.get("d1", "events") == 50  # in memory at once
    for _ in range(50):
        await asyncio.sleep(0.02)
        if cursors.writes:
            break
    assert cursors.writes == 1
    assert _on_disk(path) == {"d1": {"events": 50, "jobs": "opcua-event-7"},
                              **{f"d{n}": {"jobs": "opcua-event-7"} for n in range(2, 51)}}
    await cursors.flush()  # nothing new: no write
    await cursors.close()
    assert cursors.writes == 1
    assert not (tmp_path / "cursors.tmp").exists()  # replaced whole


async def test_close_writes_what_is_left_and_can_be_called_twice(tmp_path: Path) -> None:
    path = tmp_path / "cursors.json"
    cursors = _CountedCursors(path, write_delay_s=60)
    await cursors.set("d1", "logs", 3)
    assert _on_disk(path) is None
    await cursors.close()
    await cursors.close()
    assert _on_disk(path) == {"d1": {"logs": 3}} and cursors.writes == 1
    assert CursorStore(path).get("d1", "logs") == 3 and CursorStore(path).get("d1", "jobs") is None


async def test_without_a_delay_every_move_is_written_before_set_returns(tmp_path: Path) -> None:
    path = tmp_path / "cursors.json"
    cursors = _CountedCursors(path, write_delay_s=0)
    await cursors.set("d1", "events", 1)
    assert _on_disk(path) == {"d1": {"events": 1}}
    await cursors.set("d1", "events", 2)
    assert _on_disk(path) == {"d1": {"events": 2}} and cursors.writes == 2


async def test_an_ack_writes_the_cursors_before_the_records_leave_the_spool(tmp_path: Path, spool: Spool) -> None:
    path = tmp_path / "cursors.json"
    cursors = _CountedCursors(path, write_delay_s=60)
    safe = CursorSafeSpool(spool, cursors)
    async with safe.commit_lock:  # as DeviceSink.spool_page: append, then move the cursor
        await safe.append_many([(RecordClass.KEEP, b"record-of-seq-9")])
        await cursors.set("d1", "events", 9)
    async with safe.commit_lock:
        batch = await safe.peek(100, 1 << 20)
    assert _on_disk(path) is None  # not written yet: the record is still in the spool
    cursors.fail = True  # a disk that refuses the cursors: the record must stay
    with pytest.raises(OSError):
        await safe.ack(batch)
    assert spool.stats().pending_records == 1 and _on_disk(path) is None
    cursors.fail = False
    await safe.ack(batch)
    assert spool.stats().pending_records == 0 and _on_disk(path) == {"d1": {"events": 9}}
    await cursors.close()


async def test_a_failed_timed_write_is_logged_and_the_moves_are_written_later(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "cursors.json"
    cursors = _CountedCursors(path, write_delay_s=0.05)
    cursors.fail = True
    await cursors.set("d1", "events", 4)
    await asyncio.sleep(0.3)
    assert _on_disk(path) is None
    assert any("event=cursors_write_failed" in r.getMessage() for r in caplog.records)
    cursors.fail = False
    await cursors.close()
    assert _on_disk(path) == {"d1": {"events": 4}}
