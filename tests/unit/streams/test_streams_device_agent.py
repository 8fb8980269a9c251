"""The device agent's partition books and batches (no Kafka: stand-ins for the tables
record what goes to their changelogs, and for the producer what it is handed)."""

from __future__ import annotations

import asyncio
from typing import Any

from aiokafka import TopicPartition

from benchmarks.streams_records import device_ids, heartbeats
from streams.device import DeviceSettings
from streams.device_agent import DeviceAgent
from streams.faust_codec import Undecodable
from streams.partition_book import PartitionBook
from streams.telemetry_reader import Input, Record


class _Table:
    def __init__(self) -> None:
        self.data: dict[str, Any] = {}
        self.changelog: list[tuple[int | None, Any, Any]] = []

    def send_changelog(self, partition: int | None, key: Any, value: Any) -> None:
        self.changelog.append((partition, key, value))


async def _nothing(*args: Any) -> Any:
    raise AssertionError("nothing is produced here")


async def test_where_reading_began_is_booked_and_checkpointed_at_once() -> None:
    books = _Table()
    books.data["2"] = PartitionBook(next_offsets={"telemetry.heartbeat": 7}).to_json()
    agent = DeviceAgent(DeviceSettings(), _Table(), books, _nothing, _nothing, checkpoint_every_s=3600)
    await agent.own([1, 2])
    await agent.began({
        TopicPartition("telemetry.heartbeat", 1): 500,
        TopicPartition("telemetry.heartbeat", 2): 900,  # the book has a position: it stands
        TopicPartition("telemetry.system_event", 2): 30,
        TopicPartition("telemetry.heartbeat", 4): 10,  # not this worker's partition
    })
    written = {key: PartitionBook.from_json(value).next_offsets for _, key, value in books.changelog}
    assert written == {"1": {"telemetry.heartbeat": 500}, "2": {"telemetry.heartbeat": 7, "telemetry.system_event": 30}}
    assert [p for p, _, _ in books.changelog] == [1, 2]  # each book on its own changelog partition
    # The next owner of the partitions (or this worker after a crash) starts there.
    successor = DeviceAgent(DeviceSettings(), _Table(), books, _nothing, _nothing, checkpoint_every_s=3600)
    starts = await successor.own([1, 2])
    assert starts[TopicPartition("telemetry.heartbeat", 1)] == 500
    assert starts[TopicPartition("telemetry.system_event", 2)] == 30
    assert starts[TopicPartition("telemetry.system_event", 1)] is None


class _Outputs:  # the producer's side: what the agent hands over, call by call
    def __init__(self) -> None:
        self.calls: list[list[tuple[str, str, Any]]] = []
        self.dead: list[tuple[str, int, int]] = []

    async def send_many(self, outputs: list[tuple[str, str, Any]]) -> list[Any]:
        self.calls.append(outputs)
        return [_done()]

    async def dead_letter(self, key: bytes | None, raw: bytes, reason: str, topic: str, partition: int, offset: int,
                          timestamp_ms: int) -> Any:
        self.dead.append((reason, partition, offset))
        return _done()


def _done() -> asyncio.Future[None]:
    future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    future.set_result(None)
    return future


def _inputs(records: list[dict[str, Any]], first_offset: int, partition: int = 0) -> list[Input]:
    return [Input("telemetry.heartbeat", partition, first_offset + n, None, b"", Record("heartbeat", r))
            for n, r in enumerate(records)]


async def test_a_batch_is_applied_then_its_outputs_handed_over_in_one_call_in_order() -> None:
    out = _Outputs()
    devices = _Table()
    agent = DeviceAgent(DeviceSettings(), devices, _Table(), out.send_many, out.dead_letter, checkpoint_every_s=3600)
    await agent.own([0])
    printers = device_ids(3, "agent")
    beats = list(heartbeats(printers, "site-a", 2))
    batch = _inputs(beats, 100)
    batch.insert(2, Input("telemetry.heartbeat", 0, 102, None, b"\xc3\x01?", Undecodable(b"\xc3\x01?", "garbled")))
    batch[3:] = [i._replace(offset=i.offset + 1) for i in batch[3:]]
    batch.append(Input("telemetry.heartbeat", 5, 0, None, b"", Record("heartbeat", beats[0])))  # not owned: left alone
    await agent.handle(batch)

    assert len(out.calls) == 1  # every output of the batch at once
    assert [(topic, key) for topic, key, _ in out.calls[0]] == [("fleet.state", p) for p in printers]  # first heartbeats
    assert [kind for _, _, (kind, _) in out.calls[0]] == ["fleet_state"] * 3
    assert out.dead == [("garbled", 0, 102)]
    c = agent.counters
    assert (c.applied, c.dead_letters, c.outputs, c.repeats) == (6, 1, 3, 0)

    await agent.handle(_inputs(beats[-2:], 105))  # already applied: repeats, nothing new
    assert (agent.counters.applied, agent.counters.repeats, len(out.calls)) == (6, 2, 1)
    await agent.checkpoint_all()
    assert sorted(devices.data) == sorted(printers)
