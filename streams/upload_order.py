"""Hands a worker's records over in the order sites uploaded them, across topics.

Every kind has its own topic, and a consumer fetches each topic partition on its own: in
a backlog (a site back after an outage, a worker catching up) one topic's records can be
handed over hours of event time ahead of another's. A printer's heartbeats move its
utilisation clock, so its job and counter records of those hours would then come after
their windows closed and be judged late. Kafka's timestamp of a telemetry record is the
time the gateway produced it, and a collector uploads its records in the order it polled
them, all kinds together: so records taken in timestamp order across a partition's topics
come in upload order, and within one upload (one timestamp) in event-time order, which is
what the event-time logic expects.

`UploadOrder` buffers what the consumer fetched and releases, per worker partition, only
records no unfetched record can precede: those with a timestamp at or below the newest
timestamp fetched from every topic partition that has more committed records to fetch
(Kafka Streams synchronises a task's partitions the same way). A topic partition whose
buffer grows past `max_buffered` is paused until it drains. If a partition is held back
longer than `hold_max_s` (its other topic partitions do not answer), what it has is
released anyway: late rather than stuck.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol

from aiokafka import TopicPartition


class Message(Protocol):
    @property
    def offset(self) -> int: ...

    @property
    def timestamp(self) -> int: ...


class UploadOrder:
    def __init__(self, *, hold_max_s: float = 2.0, max_buffered: int = 20_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._buffers: dict[TopicPartition, deque[Any]] = {}
        self._newest_ts: dict[TopicPartition, int] = {}  # newest timestamp fetched per topic partition
        self._held_since: dict[int, float] = {}  # worker partition -> when it was first held back
        self._hold_max_s, self._max_buffered, self._clock = hold_max_s, max_buffered, clock

    def add(self, tp: TopicPartition, messages: Sequence[Message]) -> None:
        if messages:
            self._buffers.setdefault(tp, deque()).extend(messages)
            self._newest_ts[tp] = max(self._newest_ts.get(tp, messages[-1].timestamp), messages[-1].timestamp)

    def forget(self) -> None:
        """Drop everything buffered (the assignment changed: reading restarts at the books)."""
        self._buffers.clear()
        self._newest_ts.clear()
        self._held_since.clear()

    def first_buffered(self, tp: TopicPartition) -> int | None:
        """The offset of the next record of `tp` to hand over, if one is buffered."""
        buffer = self._buffers.get(tp)
        return buffer[0].offset if buffer else None

    def buffered(self) -> int:
        return sum(len(b) for b in self._buffers.values())

    def held(self, tp: TopicPartition) -> int:
        """Records of `tp` fetched and not handed over yet."""
        return len(self._buffers.get(tp, ()))

    def too_full(self) -> list[TopicPartition]:
        """Topic partitions to pause: their buffers hold more than `max_buffered`."""
        return [tp for tp, b in self._buffers.items() if len(b) > self._max_buffered]

    def release(self, assigned: Iterable[TopicPartition], behind: Mapping[TopicPartition, bool]
                ) -> dict[TopicPartition, list[Any]]:
        """What can be handed over now, per topic partition in offset order. `behind[tp]`:
        `tp` has committed records not fetched yet (or that is not known yet)."""
        by_partition: dict[int, list[TopicPartition]] = {}
        for tp in assigned:
            by_partition.setdefault(tp.partition, []).append(tp)
        out: dict[TopicPartition, list[Any]] = {}
        now = self._clock()
        for p, tps in by_partition.items():
            pending = [tp for tp in tps if self._buffers.get(tp)]
            if not pending:
                self._held_since.pop(p, None)
                continue
            limits = [self._newest_ts.get(tp) for tp in tps if behind.get(tp, True)]
            bound = float("inf") if not limits else (-1 if None in limits else min(x for x in limits if x is not None))
            taken = False
            for tp in pending:
                buffer = self._buffers[tp]
                count = 0
                for m in buffer:
                    if m.timestamp > bound:
                        break
                    count += 1
                if count:
                    out[tp] = [buffer.popleft() for _ in range(count)]
                    taken = True
            if taken or not any(self._buffers.get(tp) for tp in tps):
                self._held_since.pop(p, None)
                continue
            since = self._held_since.setdefault(p, now)
            if now - since >= self._hold_max_s:  # late rather than stuck
                for tp in pending:
                    out[tp] = list(self._buffers[tp])
                    self._buffers[tp].clear()
                self._held_since.pop(p, None)
        return out
