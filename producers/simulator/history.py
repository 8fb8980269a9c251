"""Bounded, seq-numbered histories: what a printer keeps of its events, job snapshots and
logs for the collector to page through with `?after=<seq>`.

Each history is a ring buffer: when full it drops its oldest entry (the collector sees
the gap through `oldest_seq`). The sizes hold far more than a simulated day, which has
about 35 events, 13 job snapshots and 36 logs per printer.
"""

from __future__ import annotations

from collections import deque
from typing import Final, Generic, Protocol, TypeVar

EVENTS_KEPT: Final = 20_000
JOB_SNAPSHOTS_KEPT: Final = 250  # ~19 simulated days; each job holds its parts and layers
LOGS_KEPT: Final = 5_000


class HasSeq(Protocol):
    @property
    def seq(self) -> int: ...


T = TypeVar("T", bound=HasSeq)


class SeqLog(Generic[T]):
    """Entries with seq 1, 2, 3...; appended in order by the printer's state machine."""

    __slots__ = ("_entries", "_count")

    def __init__(self, capacity: int) -> None:
        self._entries: deque[T] = deque(maxlen=capacity)
        self._count = 0

    def next_seq(self) -> int:
        return self._count + 1

    def append(self, entry: T) -> None:
        if entry.seq != self._count + 1:
            raise ValueError(f"seq {entry.seq} out of order after {self._count}")
        self._entries.append(entry)
        self._count = entry.seq

    @property
    def last_seq(self) -> int:
        """Seq of the newest entry ever appended (0 if none): also the count emitted."""
        return self._count

    @property
    def oldest_seq(self) -> int:
        """Seq of the oldest entry still kept (last_seq + 1 when empty)."""
        return self._entries[0].seq if self._entries else self._count + 1

    def after(self, seq: int, limit: int) -> list[T]:
        """Up to `limit` entries with seq > `seq`, oldest first."""
        if not self._entries or seq >= self._count:
            return []
        start = max(0, seq + 1 - self._entries[0].seq)
        if start >= len(self._entries):
            return []
        # deque slicing is O(n) from the nearer end; copying a page is what we need anyway
        out: list[T] = []
        for i in range(start, min(len(self._entries), start + limit)):
            out.append(self._entries[i])
        return out

    def get(self, seq: int) -> T | None:
        """The entry with `seq`, or None if it was never appended or has been dropped."""
        index = seq - self.oldest_seq
        if 0 <= index < len(self._entries):
            return self._entries[index]
        return None

    def __len__(self) -> int:
        return len(self._entries)
