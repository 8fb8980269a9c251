"""A batch's messages to table rows and dead letters: decode, then convert. Pure, no I/O.

Called by the sink once per batch (the result is kept while the batch is retried, so a
retry costs no CPU). Batches first try `prepare_native`: the bodies are decoded column
by column into one Native block per table (`sinks.native_block`); when that decoder does
not vouch for every message, or cannot read the kind, the batch comes to `prepare`.
Decoding takes the fast path for the whole batch (`SchemaRegistry.decode_records`) and
falls back to one message at a time only when that raises, to name the bad messages;
they become dead letters, the others go on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from schemas import DecodeError, SchemaRegistry, UnexpectedKindError
from sinks.batch import Batch, offsets_of
from sinks.convert import Converter, TableRows
from sinks.deadletter import DeadLetter
from sinks.native_block import NativeDecode, NativeInsert


@dataclass
class Prepared:
    """What writing one batch takes. `inserted` and `dead_sent` record progress, so a
    retry repeats only what did not succeed (a repeat would be deduplicated anyway)."""

    batch: Batch
    tables: list[TableRows]
    dead: list[DeadLetter]
    records: int
    inserted: set[str] = field(default_factory=set)
    dead_sent: bool = False
    native: list[NativeInsert] | None = None  # set: the batch goes to ClickHouse as Native blocks


def prepare_native(batch: Batch, decoder: NativeDecode) -> Prepared | None:
    """The batch as Native inserts, one per table, or None when a message needs the
    Python path (another schema version, a tombstone, a value it would refuse)."""
    native = decoder.build(batch.partition, batch.messages)
    if native is None:
        return None
    return Prepared(batch, [], [], len(batch.messages), native=native)


def prepare(batch: Batch, kind: str, registry: SchemaRegistry, converter: Converter) -> Prepared:
    messages = batch.messages
    dead: list[DeadLetter] = []
    try:
        records = registry.decode_records(kind, [m.value for m in messages])
        good = list(messages)
    except (DecodeError, TypeError, ValueError):
        records, good = [], []
        for message in messages:
            record = _decode_one(batch, message, kind, registry, dead)
            if record is not None:
                records.append(record)
                good.append(message)
    converted = converter.convert(records, batch.partition, offsets_of(good))
    for index, reason in converted.rejected:
        dead.append(DeadLetter(batch.topic, batch.partition, good[index], reason, "ConvertError", "convert"))
    dead.sort(key=lambda d: int(d.message.offset))
    tables = [t for t in converted.tables if t.rows]
    return Prepared(batch, tables, dead, len(records) - len(converted.rejected))


def _decode_one(
    batch: Batch, message: Any, kind: str, registry: SchemaRegistry, dead: list[DeadLetter],
) -> dict[str, Any] | None:
    def letter(reason: str, error: str) -> None:
        dead.append(DeadLetter(batch.topic, batch.partition, message, reason, error, "decode"))

    if message.value is None:
        letter("message has no value (a tombstone?)", "EmptyMessage")
        return None
    try:
        decoded = registry.decode(message.value)
    except DecodeError as exc:
        letter(str(exc), type(exc).__name__)
        return None
    except Exception as exc:  # noqa: BLE001 - fastavro raises many types for a bad body
        letter(f"undecodable: {exc!r}", type(exc).__name__)
        return None
    if decoded.kind != kind:
        err = UnexpectedKindError(kind, decoded.kind)
        letter(str(err), type(err).__name__)
        return None
    return dict(decoded.record)
