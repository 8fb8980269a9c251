"""Records handed over in upload order across a partition's topics (streams/upload_order.py):
nothing is released that an unfetched record of another topic could precede."""

from __future__ import annotations

from typing import NamedTuple

from aiokafka import TopicPartition

from streams.upload_order import UploadOrder

BEATS, JOBS, OTHER = TopicPartition("telemetry.heartbeat", 0), TopicPartition("telemetry.job", 0), TopicPartition("telemetry.job", 1)


class M(NamedTuple):
    offset: int
    timestamp: int


def _run(first: int, timestamps: list[int]) -> list[M]:
    return [M(first + n, ts) for n, ts in enumerate(timestamps)]


def test_a_topic_behind_holds_back_what_it_could_precede() -> None:
    order = UploadOrder()
    order.add(BEATS, _run(0, [100, 100, 200, 300, 400]))  # heartbeats fetched up to upload 400
    order.add(JOBS, _run(0, [100, 200]))  # jobs only up to upload 200 so far, more to fetch
    out = order.release([BEATS, JOBS], {BEATS: False, JOBS: True})
    assert [m.timestamp for m in out[BEATS]] == [100, 100, 200] and [m.timestamp for m in out[JOBS]] == [100, 200]
    assert order.first_buffered(BEATS) == 3
    order.add(JOBS, _run(2, [300, 500]))  # the jobs caught up: everything may go
    out = order.release([BEATS, JOBS], {BEATS: False, JOBS: False})
    assert [m.offset for m in out[BEATS]] == [3, 4] and [m.offset for m in out[JOBS]] == [2, 3]
    assert order.buffered() == 0


def test_partitions_are_independent_and_an_unknown_topic_holds_only_its_own() -> None:
    order = UploadOrder(hold_max_s=10, clock=lambda: 0.0)
    order.add(BEATS, _run(0, [100]))
    order.add(OTHER, _run(7, [50]))
    # partition 0's jobs have never answered: its heartbeats wait; partition 1 goes on
    out = order.release([BEATS, JOBS, OTHER], {BEATS: False, OTHER: False})
    assert list(out) == [OTHER] and order.first_buffered(BEATS) == 0


def test_held_too_long_it_is_released_anyway() -> None:
    now = [0.0]
    order = UploadOrder(hold_max_s=2.0, clock=lambda: now[0])
    order.add(BEATS, _run(0, [100, 200]))
    assert order.release([BEATS, JOBS], {BEATS: False, JOBS: True}) == {}
    now[0] = 1.9
    assert order.release([BEATS, JOBS], {BEATS: False, JOBS: True}) == {}
    now[0] = 2.0  # the job topic still does not answer: late rather than stuck
    assert [m.offset for m in order.release([BEATS, JOBS], {BEATS: False, JOBS: True})[BEATS]] == [0, 1]


def test_a_full_buffer_is_named_for_pausing_and_forget_drops_everything() -> None:
    order = UploadOrder(max_buffered=3)
    order.add(BEATS, _run(0, [1, 2, 3, 4]))
    order.add(JOBS, _run(0, [1]))
    assert order.too_full() == [BEATS]
    order.forget()
    assert order.buffered() == 0 and order.first_buffered(BEATS) is None
