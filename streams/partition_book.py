"""Per-partition bookkeeping of the device agent: which input offsets it has applied.

Faust delivers at least once and, after a restart with a backlog, can skip records
(docs/findings.md). The device agent therefore does not trust the consumer's position:
for every input partition it owns, the book (kept in a table, on the changelog partition
of that input partition) holds the next offset to apply per topic. A record below it is
a repeat and is dropped; a record above it is normal (transaction markers and aborted
records take offsets; records deleted by retention before they were applied are counted
by the reader when it starts a partition). The book also lists the devices of the partition
(for the timer) and each site's event-time watermark (for offline detection).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, NamedTuple

from streams.plain import PlainState


@dataclass(slots=True)
class PartitionBook(PlainState):
    next_offsets: dict[str, int] = field(default_factory=dict)  # topic -> next offset to apply
    devices: dict[str, str] = field(default_factory=dict)  # device id -> site id
    # site -> (newest event time seen, wall time when it was seen), both ms
    watermarks: dict[str, tuple[int, int]] = field(default_factory=dict)


class Position(NamedTuple):
    verdict: Literal["next", "repeat", "gap"]
    gap_from: int  # first missing offset when verdict == "gap"


def position(book: PartitionBook, topic: str, offset: int) -> Position:
    """Where a delivered record stands against what the book says was applied. The first
    record of a topic the book has never seen is "next": there is nothing to compare."""
    expected = book.next_offsets.get(topic)
    if expected is None or offset == expected:
        return Position("next", offset)
    if offset < expected:
        return Position("repeat", expected)
    return Position("gap", expected)


def applied(book: PartitionBook, topic: str, offset: int) -> None:
    """Record that `offset` of `topic` is applied (in place: the agent owns the book)."""
    book.next_offsets[topic] = max(book.next_offsets.get(topic, 0), offset + 1)


def saw(book: PartitionBook, device_id: str, site_id: str, heartbeat_time: int | None, wall_ms: int) -> None:
    """Note a device of this partition and move its site's watermark (in place).

    Only heartbeats move the watermark: they are the steady clock of a printer. Other
    kinds come in their own topics, and while a backlog is read those can run hours
    ahead of the heartbeats; letting them move the clock would make every printer look
    offline and close windows before their heartbeats are in."""
    book.devices[device_id] = site_id
    if heartbeat_time is None:
        return
    event_time = heartbeat_time
    mark = book.watermarks.get(site_id)
    if mark is None or event_time > mark[0]:
        book.watermarks[site_id] = (event_time, wall_ms)
