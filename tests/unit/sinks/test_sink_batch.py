"""Batches per partition: size and time cuts, contiguity, intents."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sinks.batch import Batcher, intent_metadata, parse_intent


@dataclass(frozen=True)
class TP:
    topic: str
    partition: int


@dataclass(frozen=True)
class Msg:
    offset: int


TP0 = TP("telemetry.heartbeat", 0)


def msgs(start: int, end: int) -> list[Msg]:
    return [Msg(o) for o in range(start, end)]


def test_size_cut_is_exact_and_batches_are_contiguous() -> None:
    b = Batcher(max_records=100, max_age_s=60)
    b.assign(TP0, committed=40)
    b.add(TP0, msgs(40, 290), now=0)
    first = b.ready(now=0)
    assert [(x.start, x.end, len(x.messages)) for x in first] == [(40, 140, 100)]
    assert b.ready(now=0) == first  # pending until done
    assert b.done(first[0], TP0)
    second = b.ready(now=0)[0]
    assert (second.start, second.end) == (140, 240)
    b.done(second, TP0)
    assert b.ready(now=1) == []  # 50 left, younger than max_age
    third = b.ready(now=61)[0]
    assert (third.start, third.end, len(third.messages)) == (240, 290, 50)
    assert third.token == "telemetry.heartbeat/0/240-290"


def test_without_a_commit_the_first_batch_starts_at_the_first_message() -> None:
    b = Batcher(max_records=10, max_age_s=1)
    b.assign(TP0, committed=None)
    b.add(TP0, msgs(7, 12), now=0)
    batch = b.ready(now=2)[0]
    assert (batch.start, batch.end) == (7, 12)


def test_redelivered_messages_are_dropped() -> None:
    b = Batcher(max_records=10, max_age_s=1)
    b.assign(TP0, committed=0)
    assert b.add(TP0, msgs(0, 5), now=0) == 5
    assert b.add(TP0, msgs(3, 8), now=0) == 3
    batch = b.ready(now=0, drain=True)[0]
    assert [m.offset for m in batch.messages] == list(range(8))


def test_an_intent_fixes_the_first_cut_whatever_the_timing() -> None:
    b = Batcher(max_records=1000, max_age_s=0.1)
    b.assign(TP0, committed=100, intent_end=130)
    b.add(TP0, msgs(100, 120), now=0)
    assert b.ready(now=50) == []  # old enough, but the intent says 130
    b.add(TP0, msgs(120, 200), now=50)
    batch = b.ready(now=50)[0]
    assert (batch.start, batch.end, len(batch.messages)) == (100, 130, 30)
    assert not b.intent_needed(batch, TP0)  # the previous owner wrote it
    b.done(batch, TP0)
    nxt = b.ready(now=60)[0]
    assert (nxt.start, nxt.end) == (130, 200)
    assert b.intent_needed(nxt, TP0)


def test_an_intent_over_missing_offsets_completes_at_the_position() -> None:
    b = Batcher(max_records=1000, max_age_s=0.1)
    b.assign(TP0, committed=100, intent_end=130)
    b.add(TP0, [Msg(o) for o in range(105, 125)], now=0)  # 100-104 expired, 125-129 gone
    assert b.ready(now=1, positions={TP0: 125}) == []
    batch = b.ready(now=1, positions={TP0: 131})[0]
    assert (batch.start, batch.end, len(batch.messages)) == (100, 130, 20)


def test_next_full_batches_are_known_at_the_end_commit_and_cut_at_their_intents() -> None:
    b = Batcher(max_records=100, max_age_s=60)
    tp1 = TP("telemetry.heartbeat", 1)
    b.assign(TP0, committed=0)
    b.assign(tp1, committed=None)
    b.add(TP0, msgs(0, 150), now=0)
    first = b.ready(now=0)[0]
    assert b.full_intents() == {}  # 50 buffered behind the pending batch, none of tp1
    b.add(TP0, msgs(150, 260), now=1)
    b.add(tp1, msgs(7, 120), now=1)
    assert b.full_intents() == {TP0: (100, 200), tp1: (7, 107)}
    assert b.done(first, TP0, next_intent=200)
    b.intend(tp1, 107)
    b.add(TP0, msgs(260, 400), now=2)  # more arrives: the cuts stay where the intents said
    second, other = sorted(b.ready(now=2), key=lambda x: x.partition)
    assert (second.start, second.end, len(second.messages)) == (100, 200, 100)
    assert (other.start, other.end, len(other.messages)) == (7, 107, 100)
    assert not b.intent_needed(second, TP0) and not b.intent_needed(other, tp1)
    assert b.done(second, TP0)
    third = b.ready(now=2)[0]
    assert (third.start, third.end) == (200, 300) and b.intent_needed(third, TP0)


def test_revoke_forgets_and_done_after_revoke_is_refused() -> None:
    b = Batcher(max_records=5, max_age_s=1)
    b.assign(TP0, committed=0)
    b.add(TP0, msgs(0, 5), now=0)
    batch = b.ready(now=0)[0]
    b.revoke(TP0)
    assert not b.done(batch, TP0)
    assert b.add(TP0, msgs(5, 6), now=0) == 0


def test_intent_metadata_round_trip() -> None:
    assert parse_intent(intent_metadata(500), 400) == 500
    assert parse_intent(intent_metadata(400), 400) is None  # nothing beyond the commit
    assert parse_intent("", 10) is None
    assert parse_intent("someone else's metadata", 10) is None
    assert parse_intent(intent_metadata(5)[:-1] + "x", 1) is None


def test_bad_limits_are_refused() -> None:
    with pytest.raises(ValueError):
        Batcher(max_records=0, max_age_s=1)


@given(
    polls=st.lists(st.integers(min_value=0, max_value=40), min_size=1, max_size=30),
    size=st.integers(min_value=1, max_value=25),
)
def test_batches_cover_every_offset_once(polls: list[int], size: int) -> None:
    b = Batcher(max_records=size, max_age_s=5)
    b.assign(TP0, committed=0)
    offset, now = 0, 0.0
    covered: list[int] = []
    for count in polls:
        b.add(TP0, msgs(offset, offset + count), now=now)
        offset += count
        now += 1
        while batches := b.ready(now=now):
            for batch in batches:
                assert batch.end - batch.start == len(batch.messages) <= size
                covered.extend(m.offset for m in batch.messages)
                b.done(batch, TP0)
    while batches := b.ready(now=now, drain=True):
        for batch in batches:
            covered.extend(m.offset for m in batch.messages)
            b.done(batch, TP0)
    assert covered == list(range(offset))
