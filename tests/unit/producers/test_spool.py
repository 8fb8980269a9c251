"""The collector's spool through its public API: round trips, order across classes, batch
boundaries, acks across reopen, the size bound (heartbeats dropped first, SpoolFull for
KEEP), stats, and a loose speed guard. Lifecycle and failures: test_spool_lifecycle.py."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from producers.errors import InvalidAck, RecordTooLarge, SpoolFull
from producers.spool.spool import Batch, RecordClass
from spool_helpers import drain, make, view
from producers.spool.frames import HEADER_BYTES

K, D = RecordClass.KEEP, RecordClass.DROPPABLE


class FakeClock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def segment_files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.glob("*.seg"))


def snapshot(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir()) if p.name != "spool.lock"}


def test_round_trip_keeps_bytes_classes_and_times(tmp_path: Path) -> None:
    clock = FakeClock()
    spool = make(tmp_path, clock=clock)
    items = [(K, b"\xc3\x01event"), (D, b""), (K, bytes(range(256)) * 3)]
    assert spool.append_many(items) == 3
    clock.now += 5
    assert spool.append_many([(D, b"hb")]) == 4
    batch = spool.peek()
    assert view(batch.records) == [
        (1, K, items[0][1]), (2, D, b""), (3, K, items[2][1]), (4, D, b"hb")
    ]
    assert [r.appended_at for r in batch.records] == [clock.now - 5] * 3 + [clock.now]
    assert batch.payload_bytes == sum(len(p) for _, p in items) + 2
    assert (batch.first_seq, batch.last_seq, len(batch)) == (1, 4, 4)
    assert spool.append_many([]) == 4
    spool.close()


def test_peek_merges_classes_in_sequence_order_with_deterministic_boundaries(
    tmp_path: Path,
) -> None:
    spool = make(tmp_path, segment_bytes=256, max_bytes=1 << 16)
    expected = []
    for i in range(60):
        items = [
            (K if (i * 7 + j) % 3 else D, f"r{i}-{j}".encode() * (1 + j)) for j in range(i % 4 + 1)
        ]
        last = spool.append_many(items)
        expected += list(zip(range(last - len(items) + 1, last + 1), *zip(*items)))
    assert len(segment_files(tmp_path)) > 4
    assert view(drain(spool)) == expected
    first = spool.peek(max_records=7)
    assert view(first.records) == expected[:7]
    assert spool.peek(max_records=7) == first  # same content, same limits, same batch
    by_bytes = spool.peek(max_records=1000, max_bytes=50)
    assert by_bytes.payload_bytes <= 50
    assert view(by_bytes.records) == expected[: len(by_bytes)]
    assert by_bytes.payload_bytes + len(expected[len(by_bytes)][2]) > 50
    big = make(tmp_path / "big")
    big.append_many([(K, b"x" * 500), (K, b"y")])
    assert view(big.peek(max_bytes=10).records) == [(1, K, b"x" * 500)]  # never empty


def test_ack_deletes_durably_and_survives_reopen(tmp_path: Path) -> None:
    spool = make(tmp_path, segment_bytes=256)
    for i in range(40):
        spool.append_many([(K if i % 3 else D, b"payload-%03d" % i)])
    before = segment_files(tmp_path)
    batch = spool.peek(max_records=25)
    assert spool.ack(batch) == 25
    assert spool.ack(batch) == 0  # idempotent
    after = segment_files(tmp_path)
    assert len(after) < len(before)  # fully acked segments are gone
    rest = view(drain(spool))
    assert [s for s, _, _ in rest] == list(range(26, 41))
    spool.close()
    reopened = make(tmp_path, segment_bytes=256)
    assert reopened.recovery.records == 15 and reopened.recovery.clean
    assert view(drain(reopened)) == rest
    assert reopened.stats().acked_seq == 25
    assert reopened.ack(reopened.peek(max_records=100)) == 15
    assert segment_files(tmp_path) == []
    reopened.close()
    again = make(tmp_path)
    assert drain(again) == [] and again.append_many([(K, b"next")]) == 41  # seq never reused


def test_unacked_records_survive_reopen(tmp_path: Path) -> None:
    spool = make(tmp_path, fsync=True)
    spool.append_many([(K, b"a"), (D, b"b")])
    spool.peek()  # uploaded, never acknowledged
    spool.close()
    reopened = make(tmp_path)
    assert view(drain(reopened)) == [(1, K, b"a"), (2, D, b"b")]


def test_stale_and_overlapping_batches_ack_correctly(tmp_path: Path) -> None:
    spool = make(tmp_path)
    spool.append_many([(K if i % 2 else D, b"%d" % i) for i in range(20)])
    wide = spool.peek(max_records=10)
    narrow = spool.peek(max_records=4)
    spool.append_many([(K, b"late")])
    assert spool.ack(narrow) == 4
    assert spool.ack(wide) == 6
    assert [r.seq for r in drain(spool)] == list(range(11, 22))
    assert spool.stats().acked_records == 10


def test_ack_refuses_a_batch_that_would_skip_pending_records(tmp_path: Path) -> None:
    spool = make(tmp_path)
    spool.append_many([(K, b"%d" % i) for i in range(10)])
    batch = spool.peek()
    skipping = Batch(batch.records[5:], 0, batch.spool_token, batch.locations[5:])
    with pytest.raises(InvalidAck):
        spool.ack(skipping)
    assert len(drain(spool)) == 10
    other = make(tmp_path / "other")
    other.append_many([(K, b"x")])
    with pytest.raises(InvalidAck):
        spool.ack(other.peek())
    spool.close()
    reopened = make(tmp_path)
    with pytest.raises(InvalidAck):  # batches do not outlive the object they came from
        reopened.ack(batch)
    assert reopened.ack(reopened.peek()) == 10
    empty = reopened.peek()
    assert empty.records == () and empty.last_seq is None and reopened.ack(empty) == 0


def test_full_spool_drops_oldest_heartbeats_first_and_keeps_keep(tmp_path: Path) -> None:
    frame = HEADER_BYTES + 71  # 100 bytes
    spool = make(tmp_path, segment_bytes=500, max_bytes=2000)
    keep: list[bytes] = []
    beats: list[bytes] = []
    for i in range(60):
        if i % 4 == 0:
            keep.append(b"K%070d" % i)
            spool.append_many([(K, keep[-1])])
        else:
            beats.append(b"H%070d" % i)
            spool.append_many([(D, beats[-1])])
        stats = spool.stats()
        assert stats.disk_bytes <= 2000
    pending = drain(spool)
    assert [r.payload for r in pending if r.record_class is K] == keep
    kept_beats = [r.payload for r in pending if r.record_class is D]
    assert kept_beats == beats[len(beats) - len(kept_beats) :]  # the newest survive
    stats = spool.stats()
    assert stats.dropped_records == len(beats) - len(kept_beats) > 0
    assert stats.dropped_bytes == stats.dropped_records * frame
    assert stats.keep.records == len(keep) and stats.full_rejections == 0


def test_spool_full_with_only_keep_left_writes_and_drops_nothing(tmp_path: Path) -> None:
    spool = make(tmp_path, segment_bytes=500, max_bytes=2000)
    spool.append_many([(D, b"h" * 71)])
    for i in range(15):
        spool.append_many([(K, b"%071d" % i)])
    files = snapshot(tmp_path)
    stats = spool.stats()
    # 16 frames of 100 bytes: 400 free; 6 frames need 600 and the heartbeat frees only 100
    with pytest.raises(SpoolFull) as caught:
        spool.append_many([(K, b"k" * 71)] * 5 + [(D, b"h" * 71)])
    assert caught.value.retriable and (caught.value.needed, caught.value.free) == (600, 400)
    assert snapshot(tmp_path) == files
    after = spool.stats()
    assert after.full_rejections == 1
    assert (after.keep, after.droppable) == (stats.keep, stats.droppable)
    assert after.next_seq == stats.next_seq
    spool.append_many([(K, b"k" * 71)] * 5)  # fits once the heartbeat goes
    assert spool.stats().dropped_records == 1
    with pytest.raises(SpoolFull):
        spool.append_many([(K, b"k" * 71)])
    spool.ack(spool.peek(max_records=5))  # the uploader catches up: a segment is freed
    assert spool.append_many([(K, b"k" * 71)]) == 22
    assert len(drain(spool)) == 16


def test_too_large_records_are_refused(tmp_path: Path) -> None:
    spool = make(tmp_path, segment_bytes=500, max_bytes=1000)
    with pytest.raises(RecordTooLarge) as caught:
        spool.append_many([(K, b"x" * (1000 - HEADER_BYTES + 1))])
    assert not caught.value.retriable
    with pytest.raises(RecordTooLarge):
        spool.append_many([(K, b"x" * 100)] * 10)
    assert spool.append_many([(K, b"x" * (1000 - HEADER_BYTES))]) == 1


def test_stats_report_depth_age_and_counters(tmp_path: Path) -> None:
    clock = FakeClock()
    spool = make(tmp_path, clock=clock)
    assert spool.stats().oldest_age_s is None
    spool.append_many([(D, b"a" * 10), (K, b"b" * 20)])
    clock.now += 30
    spool.append_many([(K, b"c" * 30)])
    clock.now += 12.5
    stats = spool.stats()
    assert (stats.keep.records, stats.keep.bytes) == (2, 50 + 2 * HEADER_BYTES)
    assert (stats.droppable.records, stats.droppable.bytes) == (1, 10 + HEADER_BYTES)
    assert stats.pending_records == 3 and stats.pending_bytes == stats.disk_bytes
    assert stats.oldest_age_s == pytest.approx(42.5)
    assert stats.depth(D).oldest_appended_at == pytest.approx(clock.now - 42.5)
    spool.ack(spool.peek(max_records=1))
    stats = spool.stats()
    assert stats.droppable.records == 0
    assert stats.keep.oldest_appended_at == pytest.approx(clock.now - 42.5)
    spool.ack(spool.peek(max_records=1))
    assert spool.stats().oldest_age_s == pytest.approx(12.5)
    assert (spool.stats().appended_records, spool.stats().acked_records) == (3, 2)


def test_heartbeats_dropped_while_their_batch_uploads_can_still_be_acked(tmp_path: Path) -> None:
    spool = make(tmp_path, segment_bytes=500, max_bytes=1000)
    spool.append_many([(D, b"h" * 71)] * 5 + [(K, b"k" * 71)])
    batch = spool.peek()
    spool.append_many([(K, b"k" * 71)] * 5)  # drops the heartbeat segment under the batch
    assert spool.stats().dropped_records == 5
    assert spool.ack(batch) == 1
    assert [r.seq for r in drain(spool)] == list(range(7, 12))


def test_performance_of_a_thousand_records(tmp_path: Path) -> None:
    """Loose guard only; docs/spool.md has the measured figures."""
    spool = make(tmp_path, fsync=True, max_bytes=64 << 20, segment_bytes=1 << 20)
    items = [(K if i % 5 else D, os.urandom(130)) for i in range(1000)]
    started = time.perf_counter()
    spool.append_many(items)
    appended = time.perf_counter()
    assert spool.ack(spool.peek(max_records=1000)) == 1000
    done = time.perf_counter()
    assert appended - started < 0.5 and done - appended < 0.5
