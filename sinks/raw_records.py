"""The sink's consumer hands out aiokafka's own message records, not a ConsumerRecord each.

For every message it returns, aiokafka's consumer copies the record it parsed (a
`DefaultRecord`, made by its C extension) into a new `ConsumerRecord`: with the sink's
collector relaxed (`printfleet.runtime.relax_gc`), that copy was a fifth of the sink's
CPU per heartbeat (docs/sink-bench.md). The sink reads only a message's offset, value,
key, timestamp and headers, which the parsed record has; topic and partition are its
batch's.

aiokafka makes that copy in one method, `PartitionRecords._consumer_record`. `install()`
wraps it, once per process, so that a consumer created with `value_deserializer=RAW`
gets the parsed record itself; every other consumer in the process is served as before
(the tests read topics with plain consumers beside the sink). Nothing else of aiokafka's
fetching changes: positions, transactions and control batches are handled as they were.
aiokafka is pinned in pyproject.toml; `install()` raises if the method is not there, and
`tests/unit/sinks/test_sink_raw_records.py` checks both kinds of consumer.
"""

from __future__ import annotations

from typing import Any

from aiokafka.consumer import fetcher


def RAW(value: bytes) -> bytes:  # noqa: N802 - a marker passed as a deserializer, named like a constant
    """Marks the sink's consumer; never called."""
    raise AssertionError("raw_records.RAW is a marker, not a deserializer: install() first")


def install() -> None:
    """Wrap aiokafka's record copy (idempotent). Raises RuntimeError when this aiokafka
    has no `PartitionRecords._consumer_record` to wrap."""
    records = getattr(fetcher, "PartitionRecords", None)
    copy = getattr(records, "_consumer_record", None)
    if records is None or copy is None:
        raise RuntimeError("aiokafka.consumer.fetcher.PartitionRecords._consumer_record is gone: "
                           "sinks/raw_records.py must follow the aiokafka version in pyproject.toml")
    if getattr(copy, "_printfleet_raw", False):
        return

    def consumer_record(self: Any, tp: Any, record: Any) -> Any:
        if self._value_deserializer is RAW:
            return record
        return copy(self, tp, record)

    consumer_record._printfleet_raw = True  # type: ignore[attr-defined]
    records._consumer_record = consumer_record
