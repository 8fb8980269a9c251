"""The device agent's partition books, batches and checkpoints (no Kafka: a stand-in for
the partition transactions records what is sent in them and keeps what is committed)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from aiokafka import TopicPartition

from benchmarks.streams_records import device_ids, events, heartbeats
from streams.device import DeviceSettings
from streams.device_agent import DeviceAgent
from streams.decoding import Undecodable
from streams.partition_book import PartitionBook
from streams.partition_transactions import Outgoing, Recovered
from streams.telemetry_reader import Input, Record


class _Transactions:
    """Per partition: what was sent in the open transaction, and what is committed."""

    def __init__(self) -> None:
        self.committed: dict[int, Recovered] = {}
        self.open: dict[int, list[Any]] = {}
        self.calls: list[tuple[int, list[Outgoing]]] = []
        self.dead: list[tuple[str, int, int]] = []
        self.commits: list[int] = []

    async def own(self, partitions: Sequence[int]) -> dict[int, Recovered]:
        for p in partitions:
            self.open[p] = []
        return {p: Recovered(dict(self.committed.get(p, Recovered()).states), self.committed.get(p, Recovered()).book)
                for p in partitions}

    async def release(self, partitions: Sequence[int]) -> None:
        for p in partitions:
            self.open.pop(p, None)  # what was not committed is aborted

    async def send_many(self, p: int, outputs: Sequence[Outgoing]) -> None:
        self.calls.append((p, list(outputs)))
        self.open[p] += outputs

    async def dead_letter(self, p: int, key: bytes | None, raw: bytes, reason: str, topic: str, partition: int,
                          offset: int, timestamp_ms: int = -1) -> None:
        self.dead.append((reason, partition, offset))
        self.open[p].append(reason)

    async def send_json(self, p: int, topic: str, key: str, message: dict[str, Any]) -> None:
        self.open[p].append(message)

    async def commit(self, p: int, states: Mapping[str, bytes | None], book: bytes) -> None:
        into = self.committed.setdefault(p, Recovered())
        for key, value in states.items():
            if value is None:
                into.states.pop(key, None)
            else:
                into.states[key] = value
        into.book = book
        self.open[p] = []
        self.commits.append(p)


async def test_where_reading_began_is_booked_and_committed_at_once() -> None:
    tx = _Transactions()
    tx.committed[2] = Recovered(book=PartitionBook(next_offsets={"telemetry.heartbeat": 7}).to_json())
    agent = DeviceAgent(DeviceSettings(), tx, checkpoint_every_s=3600)
    await agent.own([1, 2])
    await agent.began({
        TopicPartition("telemetry.heartbeat", 1): 500,
        TopicPartition("telemetry.heartbeat", 2): 900,  # the book has a position: it stands
        TopicPartition("telemetry.system_event", 2): 30,
        TopicPartition("telemetry.heartbeat", 4): 10,  # not this worker's partition
    })
    assert tx.commits == [1, 2]  # each book in its own partition's transaction
    written = {p: PartitionBook.from_json(r.book or b"").next_offsets for p, r in tx.committed.items()}
    assert written == {1: {"telemetry.heartbeat": 500}, 2: {"telemetry.heartbeat": 7, "telemetry.system_event": 30}}
    # The next owner of the partitions (or this worker after a crash) starts there.
    successor = DeviceAgent(DeviceSettings(), tx, checkpoint_every_s=3600)
    starts = await successor.own([1, 2])
    assert starts[TopicPartition("telemetry.heartbeat", 1)] == 500
    assert starts[TopicPartition("telemetry.system_event", 2)] == 30
    assert starts[TopicPartition("telemetry.system_event", 1)] is None


def _inputs(records: list[dict[str, Any]], first_offset: int, partition: int = 0) -> list[Input]:
    return [Input("telemetry.heartbeat", partition, first_offset + n, None, b"", Record("heartbeat", r))
            for n, r in enumerate(records)]


async def test_a_batch_is_applied_then_its_outputs_sent_in_one_call_in_order() -> None:
    tx = _Transactions()
    agent = DeviceAgent(DeviceSettings(), tx, checkpoint_every_s=3600)
    await agent.own([0])
    printers = device_ids(3, "agent")
    beats = list(heartbeats(printers, "site-a", 2))
    batch = _inputs(beats, 100)
    batch.insert(2, Input("telemetry.heartbeat", 0, 102, None, b"\xc3\x01?", Undecodable(b"\xc3\x01?", "garbled")))
    batch[3:] = [i._replace(offset=i.offset + 1) for i in batch[3:]]
    batch.append(Input("telemetry.heartbeat", 5, 0, None, b"", Record("heartbeat", beats[0])))  # not owned: left alone
    await agent.handle(batch)

    assert len(tx.calls) == 1  # every output of the batch at once
    p, outputs = tx.calls[0]
    assert p == 0
    assert [(topic, key) for topic, key, _ in outputs] == [("fleet.state", d) for d in printers]  # first heartbeats
    assert [kind for _, _, (kind, _) in outputs] == ["fleet_state"] * 3
    assert tx.dead == [("garbled", 0, 102)]
    c = agent.counters
    assert (c.applied, c.dead_letters, c.outputs, c.repeats) == (6, 1, 3, 0)

    await agent.handle(_inputs(beats[-2:], 105))  # already applied: repeats, nothing new
    assert (agent.counters.applied, agent.counters.repeats, len(tx.calls)) == (6, 2, 1)
    assert tx.committed == {}  # nothing committed before the checkpoint
    await agent.checkpoint_all()
    assert sorted(tx.committed[0].states) == sorted(f"device/{d}" for d in printers)
    assert PartitionBook.from_json(tx.committed[0].book or b"").next_offsets == {"telemetry.heartbeat": 107}


async def test_after_a_crash_the_next_owner_replays_from_the_commit_and_makes_the_outputs_once_more() -> None:
    tx = _Transactions()
    printers = device_ids(2, "crash")
    beats = list(heartbeats(printers, "site-a", 40))
    first = DeviceAgent(DeviceSettings(), tx, checkpoint_every_s=3600)
    starts = await first.own([0])
    assert starts[TopicPartition("telemetry.heartbeat", 0)] is None
    await first.handle(_inputs(beats[:40], 0))
    await first.checkpoint_all()
    committed_calls = len(tx.calls)
    await first.handle(_inputs(beats[40:], 40))  # made, sent in the open transaction, never committed
    aborted = [o for _, call in tx.calls[committed_calls:] for o in call]
    await tx.release([0])  # the crash: the transaction is aborted
    assert aborted, "the test needs outputs after the checkpoint"

    second = DeviceAgent(DeviceSettings(), tx, checkpoint_every_s=3600)
    starts = await second.own([0])
    assert starts[TopicPartition("telemetry.heartbeat", 0)] == 40  # the committed book
    replay_from = len(tx.calls)
    await second.handle(_inputs(beats[40:], 40))
    assert second.counters.applied == len(beats) - 40 and second.counters.repeats == 0
    # The replay makes what the aborted run made, with the same ids: once in committed data.
    replayed = [o for _, call in tx.calls[replay_from:] for o in call]
    assert [(topic, record["record_id"]) for topic, _, (_, record) in replayed] == \
        [(topic, record["record_id"]) for topic, _, (_, record) in aborted]


async def test_a_partition_that_raised_an_alert_commits_at_once() -> None:
    """Readers see outputs at a commit: an alert does not wait for `checkpoint_every_s`."""
    tx = _Transactions()
    agent = DeviceAgent(DeviceSettings(), tx, checkpoint_every_s=3600)
    await agent.own([0])
    printers = device_ids(2, "alerting")
    await agent.handle(_inputs(list(heartbeats(printers, "site-a", 2)), 0))
    assert tx.commits == []  # heartbeats' fleet states wait for the next checkpoint
    errors = [Input("telemetry.system_event", 0, n, None, b"", Record("system_event", r))
              for n, r in enumerate(events(printers, "site-a", 2, seed=1, severity="ERROR"))]
    await agent.handle(errors)
    assert tx.commits == [0]
    assert any(kind == "alert" for _, call in tx.calls for _, _, (kind, _) in call)
