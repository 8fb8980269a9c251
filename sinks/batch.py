"""Batches per topic-partition with deterministic boundaries: pure logic, no I/O.

The sink adds what each poll returned; a partition's batch is cut when it holds
`max_records` messages (cut at exactly that many) or when its oldest message has waited
`max_age_s`. Batches of one partition are contiguous: each starts at the previous one's
end, the first at the committed offset.

Why boundaries are deterministic across crashes, restarts and rebalances: before the
sink inserts a batch, it commits the batch's *start* offset with the batch's *end* in the
commit metadata (`intent_metadata`). Whoever consumes the partition next reads that intent
(`parse_intent`) and cuts its first batch at exactly the same end, whatever the timing.
Same offsets, same records, same rows, same deduplication token: ClickHouse drops the
repeat. A size cut needs no intent to be reproducible, but a time cut does, and one rule
for both keeps the proof short.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Hashable, Protocol

INTENT_PREFIX: Final = "printfleet-sink/1 batch-end="


class Message(Protocol):
    """What the batcher reads of a consumed record (aiokafka's ConsumerRecord)."""

    @property
    def offset(self) -> int: ...


@dataclass(frozen=True, slots=True)
class Batch:
    """Messages at offsets [start, end) of one partition (fewer than end - start when
    offsets are missing, e.g. deleted by retention)."""

    topic: str
    partition: int
    start: int
    end: int
    messages: tuple[Any, ...] = field(repr=False)

    @property
    def token(self) -> str:
        """The insert deduplication token: the batch's identity in the log."""
        return f"{self.topic}/{self.partition}/{self.start}-{self.end}"


def intent_metadata(end: int) -> str:
    return f"{INTENT_PREFIX}{end}"


def parse_intent(metadata: str | None, committed: int) -> int | None:
    """The end of the batch that was being written from `committed`, if the metadata
    names one beyond it; None for anything else (our own "done" commits, other tools)."""
    if not metadata or not metadata.startswith(INTENT_PREFIX):
        return None
    try:
        end = int(metadata[len(INTENT_PREFIX):])
    except ValueError:
        return None
    return end if end > committed else None


@dataclass
class _Partition:
    topic: str
    partition: int
    next_start: int | None
    intent_end: int | None
    messages: list[Any] = field(default_factory=list)
    first_at: float | None = None
    pending: Batch | None = None
    intent_written: bool = False


class Batcher:
    """Per-partition buffers. Keys are topic-partitions (anything hashable with `topic`
    and `partition`, e.g. aiokafka's TopicPartition)."""

    def __init__(self, max_records: int, max_age_s: float) -> None:
        if max_records < 1 or max_age_s <= 0:
            raise ValueError("max_records must be >= 1 and max_age_s > 0")
        self.max_records = max_records
        self.max_age_s = max_age_s
        self._parts: dict[Hashable, _Partition] = {}

    # -- assignment ---------------------------------------------------------------------

    def assign(self, tp: Any, committed: int | None, intent_end: int | None = None) -> None:
        """Start buffering `tp` from `committed` (None: from its first message), cutting
        the first batch at `intent_end` if a previous owner left that intent."""
        self._parts[tp] = _Partition(tp.topic, tp.partition, committed, intent_end)

    def revoke(self, tp: Any) -> None:
        """Forget `tp` and everything buffered for it (its new owner re-reads it)."""
        self._parts.pop(tp, None)

    @property
    def assigned(self) -> list[Any]:
        return list(self._parts)

    # -- buffering ----------------------------------------------------------------------

    def add(self, tp: Any, messages: Iterable[Any], now: float) -> int:
        """Buffer messages of an assigned partition; returns how many were kept (those at
        or before what is already buffered or written are dropped as redeliveries)."""
        part = self._parts.get(tp)
        if part is None:
            return 0
        floor = self._next_offset(part)
        kept = list(messages)
        if not kept:
            return 0
        first, last = kept[0].offset, kept[-1].offset
        # Kafka returns a partition's messages in offset order, usually consecutive: then,
        # with none below the floor, there is nothing to drop or sort (looking at each
        # message costs a tenth of the sink's time for a heartbeat).
        if not (last - first == len(kept) - 1 and (floor is None or first >= floor)):
            kept = [m for m in kept if floor is None or m.offset >= floor]
            kept.sort(key=lambda m: m.offset)
        if kept:
            if not part.messages:
                part.first_at = now
            part.messages.extend(kept)
        return len(kept)

    @staticmethod
    def _next_offset(part: _Partition) -> int | None:
        if part.messages:
            return int(part.messages[-1].offset) + 1
        if part.pending is not None:
            return part.pending.end
        return part.next_start

    def buffered(self, tp: Any) -> int:
        """Messages waiting for a batch (not counting the pending batch)."""
        part = self._parts.get(tp)
        return len(part.messages) if part else 0

    def unwritten(self, tp: Any) -> int:
        """Messages fetched and not yet written: waiting, and in the pending batch."""
        part = self._parts.get(tp)
        if part is None:
            return 0
        return len(part.messages) + (len(part.pending.messages) if part.pending else 0)

    def next_start(self, tp: Any) -> int | None:
        """Where the partition's next unwritten batch starts: its committed position."""
        part = self._parts.get(tp)
        if part is None:
            return None
        return part.pending.start if part.pending else part.next_start

    # -- batches ------------------------------------------------------------------------

    def ready(self, now: float, positions: Mapping[Any, int] | None = None, *, drain: bool = False) -> list[Batch]:
        """Every partition's pending batch: one already cut and not yet `done`, or a new
        one cut now. `positions` (the consumer's fetch positions) tell when an intent's end
        has been reached even if its last offsets are missing; `drain` cuts whatever is
        buffered (at stop)."""
        out = []
        for tp, part in self._parts.items():
            if part.pending is None:
                position = (positions or {}).get(tp)
                part.pending = self._cut(part, now, position, drain)
            if part.pending is not None:
                out.append(part.pending)
        return out

    def _cut(self, part: _Partition, now: float, position: int | None, drain: bool) -> Batch | None:
        if part.intent_end is not None:
            end = part.intent_end
            last = int(part.messages[-1].offset) if part.messages else None
            if not ((last is not None and last >= end - 1) or (position is not None and position >= end)):
                return None
            # Buffered messages are in offset order: those before `end`, found by bisection
            # (a count ran through the whole buffer, up to 100,000 messages).
            take = bisect_left(part.messages, end, key=_offset)
            part.intent_end = None
            return self._take(part, take, end, now, intent_written=True)
        if not part.messages:
            return None
        if len(part.messages) >= self.max_records:
            take = self.max_records
        elif drain or (part.first_at is not None and now - part.first_at >= self.max_age_s):
            take = len(part.messages)
        else:
            return None
        return self._take(part, take, int(part.messages[take - 1].offset) + 1, now, intent_written=False)

    def _take(self, part: _Partition, take: int, end: int, now: float, *, intent_written: bool) -> Batch:
        messages = part.messages[:take]
        del part.messages[:take]
        part.first_at = now if part.messages else None
        start = part.next_start if part.next_start is not None else (int(messages[0].offset) if messages else end)
        part.intent_written = intent_written
        return Batch(part.topic, part.partition, start, end, tuple(messages))

    def intent_needed(self, batch: Batch, tp: Any) -> bool:
        part = self._parts.get(tp)
        return part is not None and part.pending is batch and not part.intent_written

    def intent_written(self, batch: Batch, tp: Any) -> None:
        part = self._parts.get(tp)
        if part is not None and part.pending is batch:
            part.intent_written = True

    def full_intents(self) -> dict[Any, tuple[int, int]]:
        """(start, end) of the next batch of every partition whose buffer already holds
        it in full (a size cut: the same whatever the timing), after the pending batch
        where there is one. The sink commits these intents with the pending batches'
        ends, one commit instead of several (`done(..., next_intent=)`, `intend`)."""
        out = {}
        for tp, part in self._parts.items():
            if part.intent_end is not None or len(part.messages) < self.max_records:
                continue
            end = int(part.messages[self.max_records - 1].offset) + 1
            if part.pending is not None:
                out[tp] = (part.pending.end, end)
            else:
                out[tp] = (part.next_start if part.next_start is not None else int(part.messages[0].offset), end)
        return out

    def intend(self, tp: Any, end: int) -> None:
        """The intent of the partition's next batch, ending at `end`, is committed
        (`full_intents`): that batch is cut there and needs no intent commit of its own."""
        part = self._parts.get(tp)
        if part is not None and part.pending is None and part.intent_end is None:
            part.intent_end = end

    def done(self, batch: Batch, tp: Any, next_intent: int | None = None) -> bool:
        """The batch is in ClickHouse and its end committed: the next one starts there.
        False if the partition was revoked (or re-assigned) meanwhile. `next_intent`: the
        next batch's end (`full_intents`), committed as its intent with this batch's end,
        so that batch is cut there and needs no intent commit of its own."""
        part = self._parts.get(tp)
        if part is None or part.pending is not batch:
            return False
        part.pending = None
        part.intent_written = False
        part.next_start = batch.end
        part.intent_end = next_intent
        return True


def _offset(message: Any) -> int:
    return int(message.offset)


def offsets_of(messages: Sequence[Any]) -> list[int]:
    return [int(m.offset) for m in messages]
