"""The device agent's partition books (no Kafka: stand-ins for the tables record what
goes to their changelogs)."""

from __future__ import annotations

from typing import Any

from aiokafka import TopicPartition

from streams.device import DeviceSettings
from streams.device_agent import DeviceAgent
from streams.partition_book import PartitionBook


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
