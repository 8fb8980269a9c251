"""Ring buffers of events, job snapshots and logs: paging, bounds and the public API."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

import producers.simulator as simulator
from producers.simulator.history import SeqLog


@dataclass
class Entry:
    seq: int


def test_paging_after_a_seq() -> None:
    log: SeqLog[Entry] = SeqLog(100)
    for i in range(1, 11):
        log.append(Entry(i))
    assert [e.seq for e in log.after(0, 3)] == [1, 2, 3]
    assert [e.seq for e in log.after(8, 5)] == [9, 10]
    assert log.after(10, 5) == [] and log.after(99, 5) == []
    assert log.get(4) == Entry(4) and log.get(11) is None


def test_a_full_buffer_drops_the_oldest() -> None:
    log: SeqLog[Entry] = SeqLog(3)
    for i in range(1, 6):
        log.append(Entry(i))
    assert (log.last_seq, log.oldest_seq, len(log)) == (5, 3, 3)
    assert [e.seq for e in log.after(0, 10)] == [3, 4, 5]  # the gap shows in oldest_seq
    assert log.get(2) is None


def test_seq_must_follow_on() -> None:
    log: SeqLog[Entry] = SeqLog(3)
    with pytest.raises(ValueError):
        log.append(Entry(2))


def test_all_names_the_public_api() -> None:
    public = {name for name in vars(simulator) if not name.startswith("_")}
    modules = {name for name in public if type(getattr(simulator, name)).__name__ == "module"}
    assert set(simulator.__all__) == public - modules
