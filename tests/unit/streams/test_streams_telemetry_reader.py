"""The telemetry reader: decoding a fetched batch, and where it starts reading after an
assignment (no Kafka: `_decode` is pure, and a stand-in records the calls `_apply` makes)."""

from __future__ import annotations

from dataclasses import dataclass

from aiokafka import TopicPartition
from streams_sim import REGISTRY, run

from common.kafka.settings import KafkaSettings
from schemas import codec
from streams.decoding import Undecodable
from streams.telemetry_reader import Record, TelemetryReader, _in_upload_order


@dataclass
class _Message:  # what aiokafka hands over, as far as the reader reads it
    offset: int
    key: bytes | None
    value: bytes
    timestamp: int = 1_700_000_000_000


def _reader() -> TelemetryReader:
    return TelemetryReader(KafkaSettings("127.0.0.1:9"), REGISTRY, start_at="earliest", batch_max=100, batch_within_s=0.1)


def test_a_batch_decodes_whole_and_keeps_where_each_record_came_from() -> None:
    beats = run().of("heartbeat")[:5]
    messages = [_Message(40 + n, r["device_id"].encode(), REGISTRY.encode("heartbeat", r), 1_700_000_000_000 + n)
                for n, r in enumerate(beats)]
    inputs = _reader()._decode({TopicPartition("telemetry.heartbeat", 3): messages})
    assert [(i.topic, i.partition, i.offset, i.key, i.timestamp) for i in inputs] == [
        ("telemetry.heartbeat", 3, m.offset, m.key, m.timestamp) for m in messages]
    assert [i.value for i in inputs] == [Record("heartbeat", REGISTRY.decode(m.value).record) for m in messages]
    assert all(i.raw is m.value for i, m in zip(inputs, messages))


def test_a_fetch_of_many_partitions_decodes_a_topic_at_a_time() -> None:
    sim = run()
    beats, identities = sim.of("heartbeat"), sim.of("device_identity")
    assert len(beats) >= 2 * codec.COLUMNS_FROM  # enough for the column-by-column path
    fetched = {
        TopicPartition("telemetry.heartbeat", p): [
            _Message(n, None, REGISTRY.encode("heartbeat", r)) for n, r in enumerate(beats[p::3])]
        for p in range(3)
    }
    fetched[TopicPartition("telemetry.device_identity", 1)] = [
        _Message(7, None, REGISTRY.encode("device_identity", identities[0]))]
    inputs = _reader()._decode(fetched)
    assert [(i.topic, i.partition, i.offset) for i in inputs] == [
        (tp.topic, tp.partition, m.offset) for tp in fetched for m in fetched[tp]]
    assert [i.value for i in inputs] == [Record(tp.topic.removeprefix("telemetry."), REGISTRY.decode(m.value).record)
                                         for tp in fetched for m in fetched[tp]]


def test_inputs_go_in_upload_order_across_topics_and_offset_order_within_one() -> None:
    """A backlog: the heartbeats of two uploads fetched before the jobs of the first. In
    upload (timestamp) order, and by event time within an upload, each partition's
    records still in offset order."""
    sim = run()
    beats, jobs = sim.of("heartbeat")[:6], sim.of("device_identity")[:2]
    first, second = 1_700_000_000_000, 1_700_000_060_000
    fetched = {
        TopicPartition("telemetry.heartbeat", 0): [
            _Message(n, None, REGISTRY.encode("heartbeat", r), first if n < 3 else second) for n, r in enumerate(beats)],
        TopicPartition("telemetry.device_identity", 0): [
            _Message(n, None, REGISTRY.encode("device_identity", r), first) for n, r in enumerate(jobs)],
    }
    ordered = _in_upload_order(_reader()._decode(fetched))
    assert [i.timestamp for i in ordered] == sorted(i.timestamp for i in ordered)
    uploaded_first = [i for i in ordered if i.timestamp == first]
    assert len(uploaded_first) == 5
    times = [i.value.record["event_time"] for i in uploaded_first if isinstance(i.value, Record)]
    assert times == sorted(times)
    for topic in ("telemetry.heartbeat", "telemetry.device_identity"):
        offsets = [i.offset for i in ordered if i.topic == topic]
        assert offsets == sorted(offsets)


def test_one_bad_message_is_undecodable_with_its_reason_and_the_others_decode() -> None:
    good = run().of("heartbeat")[:2]
    messages = [_Message(0, None, REGISTRY.encode("heartbeat", good[0])), _Message(1, None, b"\xc3\x01garbage"),
                _Message(2, None, REGISTRY.encode("heartbeat", good[1])),
                _Message(3, None, REGISTRY.encode("device_identity", run().of("device_identity")[0]))]
    values = [i.value for i in _reader()._decode({TopicPartition("telemetry.heartbeat", 0): messages})]
    assert isinstance(values[0], Record) and isinstance(values[2], Record)
    assert isinstance(values[1], Undecodable) and values[1].reason and values[1].data == b"\xc3\x01garbage"
    # a record of another kind decodes, as that kind: the agent dead-letters it (wrong topic)
    assert isinstance(values[3], Record) and values[3].kind == "device_identity"


class _Consumer:  # the calls `_apply` makes; `end` is where every partition's log ends
    def __init__(self) -> None:
        self.positions: dict[TopicPartition, int] = {}
        self.end = 100
        self.oldest = 0  # what retention left

    def assign(self, tps: list[TopicPartition]) -> None:
        self.positions = {tp: self.positions.get(tp, 0) for tp in tps}

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.positions[tp] = offset

    async def seek_to_end(self, tp: TopicPartition) -> None:
        self.positions[tp] = self.end

    async def seek_to_beginning(self, tp: TopicPartition) -> None:
        self.positions[tp] = 0

    async def position(self, tp: TopicPartition) -> int:
        return self.positions[tp]

    async def beginning_offsets(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        return {tp: self.oldest for tp in tps}


async def test_a_partition_kept_through_a_rebalance_goes_on_where_it_was_not_at_the_new_end() -> None:
    reader = TelemetryReader(KafkaSettings("127.0.0.1:9"), REGISTRY, start_at="latest", batch_max=100, batch_within_s=0.1)
    consumer = _Consumer()
    kept, gone = TopicPartition("telemetry.heartbeat", 3), TopicPartition("telemetry.heartbeat", 0)
    await reader._apply(consumer, {kept: None, gone: None})  # a new app: starts at the end
    assert reader._next == {kept: 100, gone: 100}
    # records 100..129 arrive; the assignment changes before any is applied (no book yet)
    consumer.end = 130
    await reader._apply(consumer, {kept: None})
    assert consumer.positions[kept] == 100 and reader._next == {kept: 100}


async def test_the_reader_tells_where_partitions_without_a_position_began() -> None:
    reader = TelemetryReader(KafkaSettings("127.0.0.1:9"), REGISTRY, start_at="latest", batch_max=100, batch_within_s=0.1)
    consumer = _Consumer()
    booked, new = TopicPartition("telemetry.heartbeat", 1), TopicPartition("telemetry.system_event", 1)
    assert await reader._apply(consumer, {booked: 42, new: None}) == {new: 100}
    assert consumer.positions == {booked: 42, new: 100}
    # kept through a rebalance: it goes on where it was, which is not news
    assert await reader._apply(consumer, {new: None}) == {}


async def test_a_position_below_what_retention_left_is_counted_as_missing() -> None:
    reader = TelemetryReader(KafkaSettings("127.0.0.1:9"), REGISTRY, start_at="earliest", batch_max=100, batch_within_s=0.1)
    consumer = _Consumer()
    consumer.oldest = 50
    booked, fine = TopicPartition("telemetry.heartbeat", 1), TopicPartition("telemetry.job", 1)
    await reader._apply(consumer, {booked: 42, fine: 60})
    assert reader.missing == 8
