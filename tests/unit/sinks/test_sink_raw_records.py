"""`sinks.raw_records`: a consumer marked `value_deserializer=RAW` gets aiokafka's parsed
records; every other consumer still gets ConsumerRecords with their deserializers (no
broker: aiokafka's own record parsing over record batches built here)."""

from __future__ import annotations

from aiokafka.consumer.fetcher import PartitionRecords
from aiokafka.record.default_records import DefaultRecordBatchBuilder
from aiokafka.record.memory_records import MemoryRecords
from aiokafka.structs import ConsumerRecord, TopicPartition

from sinks import raw_records

TP = TopicPartition("telemetry.heartbeat", 4)


def _records(deserializer: object) -> list[object]:
    batch = DefaultRecordBatchBuilder(magic=2, compression_type=0, is_transactional=0, producer_id=-1,
                                      producer_epoch=-1, base_sequence=-1, batch_size=1 << 20)
    for i in range(3):
        batch.append(i, timestamp=1_000 + i, key=b"dev-%d" % i, value=b"body-%d" % i, headers=[("h", b"x")])
    built = bytearray(batch.build())
    built[0:8] = (40).to_bytes(8, "big")  # the batch's base offset
    return list(PartitionRecords(TP, MemoryRecords(bytes(built)), [], 40, None, deserializer, True, 0))


def test_the_marked_consumer_gets_the_parsed_records_and_the_others_are_unchanged() -> None:
    raw_records.install()
    raw_records.install()  # idempotent: the wrapper is not wrapped again
    raw = _records(raw_records.RAW)
    assert [(r.offset, r.timestamp, r.key, r.value, list(r.headers)) for r in raw] == [  # type: ignore[attr-defined]
        (40 + i, 1_000 + i, b"dev-%d" % i, b"body-%d" % i, [("h", b"x")]) for i in range(3)
    ]
    assert not any(isinstance(r, ConsumerRecord) for r in raw)
    plain = _records(None)
    assert all(isinstance(r, ConsumerRecord) for r in plain)
    assert [(r.topic, r.partition, r.offset, r.value) for r in plain] == [  # type: ignore[attr-defined]
        (TP.topic, 4, 40 + i, b"body-%d" % i) for i in range(3)
    ]
    upper = _records(lambda v: v.upper())
    assert [r.value for r in upper] == [b"BODY-%d" % i for i in range(3)]  # type: ignore[attr-defined]
