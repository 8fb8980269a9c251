"""Property tests: the spool against a plain in-memory model.

1. Without the size bound in play, random appends, peeks, acks of any earlier batch, and
   reopens behave exactly like a list of pending records with a global sequence.
2. With a tiny bound, KEEP records are never lost, surviving heartbeats are always the
   newest ones, the files never exceed max_bytes, and SpoolFull changes nothing.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from producers.errors import SpoolFull
from producers.spool.spool import Batch, RecordClass, Spool
from producers.spool.frames import HEADER_BYTES

K, D = RecordClass.KEEP, RecordClass.DROPPABLE
Row = tuple[int, RecordClass, bytes]
records_st = st.lists(
    st.tuples(st.sampled_from(RecordClass), st.binary(max_size=48)), min_size=0, max_size=8
)


def pending(spool: Spool) -> list[Row]:
    return [(r.seq, r.record_class, r.payload) for r in spool.peek(10**9, 10**12).records]


def expected_batch(model: list[Row], max_records: int, max_bytes: int) -> list[Row]:
    out: list[Row] = []
    total = 0
    for row in model[:max_records]:
        if out and total + len(row[2]) > max_bytes:
            break
        out.append(row)
        total += len(row[2])
    return out


class SpoolMachine(RuleBasedStateMachine):
    """The spool is a FIFO with a global sequence, whatever the segment layout."""

    @initialize(segment_bytes=st.sampled_from([64, 200, 1000]))
    def start(self, segment_bytes: int) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="spool-prop-"))
        self.segment_bytes = segment_bytes
        self.spool = self._open()
        self.model: list[Row] = []
        self.next_seq = 1
        self.batches: list[Batch] = []

    def _open(self) -> Spool:
        spool = Spool(
            self.directory, max_bytes=1 << 24, segment_bytes=self.segment_bytes, fsync=False
        )
        spool.open()
        return spool

    @rule(items=records_st)
    def append(self, items: list[tuple[RecordClass, bytes]]) -> None:
        last = self.spool.append_many(items)
        for record_class, payload in items:
            self.model.append((self.next_seq, record_class, payload))
            self.next_seq += 1
        assert last == self.next_seq - 1

    @rule(max_records=st.integers(1, 12), max_bytes=st.integers(1, 150))
    def peek(self, max_records: int, max_bytes: int) -> None:
        batch = self.spool.peek(max_records, max_bytes)
        rows = [(r.seq, r.record_class, r.payload) for r in batch.records]
        assert rows == expected_batch(self.model, max_records, max_bytes)
        self.batches.append(batch)

    @precondition(lambda self: bool(self.batches))
    @rule(data=st.data())
    def ack(self, data: st.DataObject) -> None:
        batch = data.draw(st.sampled_from(self.batches))  # any earlier batch, even stale
        last = batch.last_seq if batch.last_seq is not None else 0
        still = [row for row in self.model if row[0] <= last]
        assert self.spool.ack(batch) == len(still)
        self.model = self.model[len(still) :]

    @rule()
    def reopen(self) -> None:
        self.spool.close()
        self.spool = self._open()
        report = self.spool.recovery
        assert report.clean and report.records == len(self.model)
        self.batches = []

    @invariant()
    def matches_model(self) -> None:
        if not hasattr(self, "spool"):
            return
        stats = self.spool.stats()
        for cls in RecordClass:
            rows = [row for row in self.model if row[1] is cls]
            assert stats.depth(cls).records == len(rows)
            assert stats.depth(cls).bytes == sum(HEADER_BYTES + len(r[2]) for r in rows)
        assert stats.next_seq == self.next_seq

    def teardown(self) -> None:
        if hasattr(self, "spool"):
            assert pending(self.spool) == self.model
            self.spool.close()
            shutil.rmtree(self.directory)


TestSpoolMachine = SpoolMachine.TestCase
TestSpoolMachine.settings = settings(max_examples=60, stateful_step_count=30, deadline=None)


@dataclass(frozen=True)
class Op:
    kind: str  # "append" or "ack"
    items: tuple[tuple[RecordClass, int], ...] = ()
    count: int = 0


append_st = st.builds(
    Op,
    kind=st.just("append"),
    items=st.lists(
        st.tuples(st.sampled_from(RecordClass), st.integers(0, 90)), min_size=1, max_size=4
    ).map(tuple),
)
ack_st = st.builds(Op, kind=st.just("ack"), count=st.integers(1, 4))
ops_st = st.lists(st.one_of(*[append_st] * 6, ack_st), min_size=5, max_size=80)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=ops_st)
def test_full_spool_keeps_keep_and_newest_heartbeats(ops: list[Op]) -> None:
    directory = Path(tempfile.mkdtemp(prefix="spool-full-"))
    spool = Spool(directory, max_bytes=800, segment_bytes=200, fsync=False)
    spool.open()
    model: list[Row] = []  # appended and not acked, oldest first
    counter = dropped = 0
    try:
        for op in ops:
            before = pending(spool)
            if op.kind == "ack":
                batch = spool.peek(max_records=op.count)
                spool.ack(batch)
                acked = batch.last_seq or 0
                model = [row for row in model if row[0] > acked]
                continue
            items = []
            for record_class, size in op.items:
                counter += 1
                items.append((record_class, (b"%d|" % counter).ljust(size, b".")))
            first = spool.stats().next_seq
            try:
                last = spool.append_many(items)
            except SpoolFull as full:
                event("SpoolFull")
                assert pending(spool) == before  # nothing written, nothing dropped
                keep_bytes = spool.stats().disk_bytes - sum(
                    HEADER_BYTES + len(p) for _, c, p in before if c is D
                )
                assert full.needed > 800 - keep_bytes
                continue
            assert last == first + len(items) - 1
            model += [(first + i, c, p) for i, (c, p) in enumerate(items)]
            stats = spool.stats()
            assert stats.disk_bytes <= 800
            now = pending(spool)
            assert stats.pending_records == len(now)
            assert stats.pending_bytes == sum(HEADER_BYTES + len(p) for _, _, p in now)
            assert [r for r in now if r[1] is K] == [r for r in model if r[1] is K]
            beats_now = [r for r in now if r[1] is D]
            beats_model = [r for r in model if r[1] is D]
            assert beats_now == beats_model[len(beats_model) - len(beats_now) :]
            if len(beats_model) > len(beats_now):
                event("heartbeats dropped")
            dropped += len(beats_model) - len(beats_now)
            assert stats.dropped_records == dropped
            model = [r for r in model if r[1] is K or r in beats_now]
    finally:
        spool.close()
        shutil.rmtree(directory)
