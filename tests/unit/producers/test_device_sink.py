"""The bookkeeping every driver shares (`DeviceSink`), without a driver and without a
network: a stream's cursor moves only once its records are in the spool, a record
already spooled is not spooled again, a payload that fits no schema is kept aside and
counted, and a device that does not answer its heartbeat read gets an UNREACHABLE one."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from producers.collector.cursors import Cursor, CursorStore
from producers.collector.device_records import RecordBuilder, Site
from producers.collector.device_sink import DeviceSink, SinkShared
from producers.collector.spooled_ids import SpooledIds
from producers.errors import PrinterUnavailable, SpoolFull
from producers.simulator import Fleet, SimulatorSettings
from producers.spool.async_spool import AsyncSpool
from producers.spool.spool import RecordClass, Spool
from schemas import SchemaRegistry

REGISTRY = SchemaRegistry.load_default()
START_MS = 1_741_996_800_000  # 2025-03-15


@pytest.fixture(scope="module")
def fleet() -> Fleet:
    fleet = Fleet(SimulatorSettings(printers=1, seed=5, start_ms=START_MS))
    fleet.advance_to(START_MS + 6 * 3_600_000)
    return fleet


@pytest.fixture()
def spool(tmp_path: Path) -> Iterator[Spool]:
    spool = Spool(tmp_path / "spool", max_bytes=1 << 22, fsync=False)
    spool.open()
    yield spool
    spool.close()


def _shared(tmp_path: Path, spool: Spool, cursors: CursorStore | None = None, **kw: Any) -> SinkShared:
    return SinkShared(builder=RecordBuilder(REGISTRY, Site("s", b"secret")), registry=REGISTRY, spool=AsyncSpool(spool),
                      cursors=cursors or CursorStore(tmp_path / "cursors.json", write_delay_s=0),
                      unmappable_dir=tmp_path / "unmappable", **kw)


def _sink(fleet: Fleet, shared: SinkShared) -> DeviceSink:
    sink = DeviceSink("https://p1/", "printer-api", shared)
    sink.identify(fleet.read(fleet.printer_ids[0], "identity")["printer_uuid"], "p1")
    return sink


def _events(fleet: Fleet) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = fleet.read(fleet.printer_ids[0], "events", after=0, limit=50)["events"]
    assert len(events) >= 3
    return events


def _spooled_kinds(spool: Spool) -> list[str]:
    batch = spool.peek(max_records=1 << 20, max_bytes=1 << 30)
    return [REGISTRY.decode(r.payload).kind for r in batch.records]


class _WatchedCursors(CursorStore):
    """Cursors that note, at each move, how many records the spool holds then."""

    def __init__(self, path: Path, spool: Spool) -> None:
        super().__init__(path)
        self.spool, self.moves = spool, list[tuple[Cursor, int]]()

    async def set(self, device: str, stream: str, cursor: Cursor) -> None:
        self.moves.append((cursor, self.spool.stats().pending_records))
        await super().set(device, stream, cursor)


async def test_a_cursor_moves_only_once_its_page_is_in_the_spool(tmp_path: Path, spool: Spool, fleet: Fleet) -> None:
    cursors = _WatchedCursors(tmp_path / "cursors.json", spool)
    sink = _sink(fleet, _shared(tmp_path, spool, cursors))
    events = _events(fleet)
    assert sink.cursor("system_event") is None
    items = [sink.encode("system_event", e, ("events", str(e["seq"]))) for e in events[:2]]
    await sink.spool_page("system_event", items, events[1]["seq"])
    assert cursors.moves == [(events[1]["seq"], 2)]  # both records were in the spool when it moved
    await cursors.close()
    assert CursorStore(tmp_path / "cursors.json").get(sink.device_id, "events") == events[1]["seq"]  # on disk
    assert sink.status.spooled_by_kind == {"system_event": 2} and sink.status.records_spooled == 2


async def test_a_full_spool_moves_no_cursor_and_counts_nothing(tmp_path: Path, fleet: Fleet) -> None:
    spool = Spool(tmp_path / "spool", max_bytes=8192, segment_bytes=4096, fsync=False)
    spool.open()
    try:
        sink = _sink(fleet, _shared(tmp_path, spool))
        events = _events(fleet)
        filler = sink.encode("system_event", events[0], ("events", str(events[0]["seq"])))
        assert filler is not None
        with pytest.raises(SpoolFull):
            while True:  # KEEP records only: nothing the spool may drop to make room
                spool.append_many([(RecordClass.KEEP, filler.data)])
        item = sink.encode("system_event", events[1], ("events", str(events[1]["seq"])))
        with pytest.raises(SpoolFull):
            await sink.spool_page("system_event", [item], events[1]["seq"])
        assert sink.cursor("system_event") is None and not (tmp_path / "cursors.json").exists()
        assert sink.status.records_spooled == 0
        # The heartbeat read failing now is counted, and its UNREACHABLE heartbeat, which
        # does not fit either, is given up without an error escaping.
        async def fails() -> None:
            raise PrinterUnavailable("api/v1/status: HTTP 500")
        await sink.attempt(fails, heartbeat=True)
        assert sink.status.poll_failures == 1 and not sink.status.reachable
    finally:
        spool.close()


async def test_a_record_pending_at_start_is_not_spooled_again_but_its_cursor_moves(
        tmp_path: Path, spool: Spool, fleet: Fleet) -> None:
    events = _events(fleet)
    first = _sink(fleet, _shared(tmp_path, spool))
    await first.spool([first.encode("system_event", e, ("events", str(e["seq"]))) for e in events[:2]])
    # A crash before the cursor moved: the next run finds both records pending.
    pending = {str(REGISTRY.decode(r.payload).record["record_id"])
               for r in spool.peek(max_records=100, max_bytes=1 << 30).records}
    again = _sink(fleet, _shared(tmp_path, spool, pending_ids=pending))
    items = [again.encode("system_event", e, ("events", str(e["seq"]))) for e in events[:3]]
    assert [i is None for i in items] == [True, True, False]  # only the third is new
    await again.spool_page("system_event", items, events[2]["seq"])
    assert again.status.spooled_by_kind == {"system_event": 1}
    assert _spooled_kinds(spool) == ["system_event"] * 3  # two from before, one now
    assert again.cursor("system_event") == events[2]["seq"]


async def test_ids_spooled_before_are_skipped_until_their_stream_is_caught_up(
        tmp_path: Path, spool: Spool, fleet: Fleet) -> None:
    events = _events(fleet)
    probe = _sink(fleet, _shared(tmp_path / "probe", spool))
    item = probe.encode("system_event", events[0], ("events", str(events[0]["seq"])))
    assert item is not None
    rid = str(REGISTRY.decode(item.data).record["record_id"])
    spooled = SpooledIds(tmp_path / "spooled-ids.json")
    spooled.add(probe.device_id, "system_event", rid)
    spooled.save()
    cursors = CursorStore(tmp_path / "cursors.json")  # moves written within a second, or on flush
    sink = _sink(fleet, _shared(tmp_path, spool, cursors, spooled=spooled))
    item = sink.encode("system_event", events[0], ("events", str(events[0]["seq"])))
    assert item is None
    await sink.spool_page("system_event", [item], events[0]["seq"])
    assert not (tmp_path / "cursors.json").exists()  # the move waits in memory
    await sink.caught_up("system_event")  # the stream read to its end: the id is behind the cursor
    assert rid not in spooled and rid not in SpooledIds(tmp_path / "spooled-ids.json")
    # ... and the cursor past it was written before the id was let go.
    assert CursorStore(tmp_path / "cursors.json").get(sink.device_id, "events") == events[0]["seq"]
    await cursors.close()


async def test_the_same_snapshot_is_spooled_once(tmp_path: Path, spool: Spool, fleet: Fleet) -> None:
    sink = _sink(fleet, _shared(tmp_path, spool))
    status = fleet.read(fleet.printer_ids[0], "status")
    for _ in range(3):  # a device whose clock has not moved reports the same observation
        await sink.spool_one("heartbeat", status, ("heartbeat", str(status["event_time"])), RecordClass.DROPPABLE)
    assert sink.status.spooled_by_kind == {"heartbeat": 1}


async def test_an_unmappable_payload_is_kept_aside_and_counted(tmp_path: Path, spool: Spool, fleet: Fleet) -> None:
    sink = _sink(fleet, _shared(tmp_path, spool))
    event = {k: v for k, v in _events(fleet)[0].items() if k != "event_time"}  # a required field
    item = sink.encode("system_event", event, ("events", str(event["seq"])))
    assert item is None
    await sink.spool_page("system_event", [item], event["seq"])  # the cursor still passes it
    assert sink.cursor("system_event") == event["seq"]
    assert sink.status.unmappable == 1 and sink.status.records_spooled == 0 and not _spooled_kinds(spool)
    kept = [json.loads(line) for line in (tmp_path / "unmappable" / "system_event.jsonl").read_text().splitlines()]
    assert kept == [{"device_id": sink.device_id, "reason": kept[0]["reason"], "payload": event}]
    assert "event_time" in kept[0]["reason"]


async def test_events_pushed_one_by_one_with_their_own_ids_and_a_string_cursor(
        tmp_path: Path, spool: Spool, fleet: Fleet) -> None:
    # As an OPC UA driver would: each event as it arrives, with its own stable id, the
    # cursor being that id (a string), not a page's seq.
    cursors = _WatchedCursors(tmp_path / "cursors.json", spool)
    sink = _sink(fleet, _shared(tmp_path, spool, cursors))
    ids = []
    for event in _events(fleet)[:3]:
        event_id = f"opcua-event-{event['seq']}"
        ids.append(event_id)
        await sink.spool_page("system_event", [sink.encode("system_event", event, ("opcua-event", event_id))], event_id)
    assert cursors.moves == [(ids[0], 1), (ids[1], 2), (ids[2], 3)]
    assert sink.status.spooled_by_kind == {"system_event": 3}
    await cursors.close()
    assert CursorStore(tmp_path / "cursors.json").get(sink.device_id, "events") == ids[2]


async def test_a_failed_heartbeat_read_spools_an_unreachable_heartbeat_once_identified(
        tmp_path: Path, spool: Spool, fleet: Fleet) -> None:
    async def fails() -> None:
        raise PrinterUnavailable("api/v1/status: HTTP 503")

    unknown = DeviceSink("https://p2/", "printer-api", _shared(tmp_path, spool))
    await unknown.attempt(fails, heartbeat=True)  # no device id yet: nothing to say it of
    assert unknown.status.poll_failures == 1 and not _spooled_kinds(spool)
    sink = _sink(fleet, _shared(tmp_path, spool))
    await sink.attempt(fails)  # not the heartbeat read: counted only
    assert sink.status.poll_failures == 1 and not _spooled_kinds(spool)
    await sink.attempt(fails, heartbeat=True)
    assert sink.status.poll_failures == 2 and sink.status.last_error == "api/v1/status: HTTP 503"
    batch = spool.peek(max_records=10, max_bytes=1 << 20)
    assert [r.record_class for r in batch.records] == [RecordClass.DROPPABLE]
    assert REGISTRY.decode(batch.records[0].payload).record["status"] == "UNREACHABLE"

    async def answers() -> None:
        pass

    await sink.attempt(answers)
    assert sink.status.reachable and sink.status.last_ok_at is not None
