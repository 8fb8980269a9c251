"""The device agent's machinery: state cache, partition books, gap filling, outputs and
checkpoints. `streams.app` feeds it Faust events; the logic per record is the pure
`streams.device`.

State lives in two Faust tables whose changelog partition is the input partition (every
telemetry topic is keyed by device and has the same partition count): `devices` (one
`DeviceState` per device) and `books` (one `PartitionBook` per partition). Live states
are kept as objects in memory and written to the tables at a checkpoint, at most every
`checkpoint_every_s` per partition and when partitions are revoked, in this order:
output records acknowledged by Kafka, then device states, then the book. So the book
never claims more than the states and outputs hold; whatever the worker did after its
last checkpoint is done again after a crash, and the pure logic makes that a no-op.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from schemas import DEVICE_KINDS, Decoded
from schemas.topics import topic_for
from streams import device, partition_book
from streams.advisories import Release
from streams.device import DeviceSettings, DeviceState, Output
from streams.errors import StreamsError
from streams.faust_codec import Undecodable
from streams.gap_reader import GapReader
from streams.partition_book import PartitionBook

log = logging.getLogger(__name__)

Send = Callable[[str, str, tuple[str, dict[str, Any]]], Awaitable[Awaitable[Any]]]
FanOut = Callable[[str, dict[str, Any]], Awaitable[Awaitable[Any]]]
DeadLetter = Callable[[bytes | None, bytes, str, str, int, int], Awaitable[Awaitable[Any]]]


class Table(Protocol):
    """What the agent needs of a Faust table: its local store and its changelog."""

    data: Any

    def send_changelog(self, partition: int | None, key: Any, value: Any) -> Any: ...


@dataclass
class Counters:
    applied: int = 0
    repeats: int = 0
    gap_records: int = 0
    dead_letters: int = 0
    late: int = 0
    outputs: int = 0
    checkpoints: int = 0


@dataclass
class _Partition:
    book: PartitionBook
    dirty: set[str] = field(default_factory=set)
    pending: list[Awaitable[Any]] = field(default_factory=list)
    checkpointed_at: float = 0.0


class DeviceAgent:
    def __init__(
        self, settings: DeviceSettings, devices: Table, books: Table, send: Send, dead_letter: DeadLetter,
        gaps: GapReader, decode: Callable[[bytes], Decoded | Undecodable], *, checkpoint_every_s: float,
        wall_clock: Callable[[], float] = time.time, fan_out: FanOut | None = None,
    ) -> None:
        """`fan_out(site_id, window)` also receives every utilisation record, with the
        printer's model in it, for the site and benchmark agents."""
        self.settings = settings
        self.devices, self.books = devices, books
        self._send, self._dead_letter, self._gaps, self._decode = send, dead_letter, gaps, decode
        self._checkpoint_every_s = checkpoint_every_s
        self._fan_out = fan_out
        self._wall = wall_clock
        self._states: dict[str, DeviceState] = {}
        self._partitions: dict[int, _Partition] = {}
        # One batch, tick or checkpoint at a time: they share the cache and the books.
        self.lock = asyncio.Lock()
        self.counters = Counters()
        self.catalogue: Sequence[Release] = ()
        self.catalogue_version = 0
        self._public_key: Any = None
        self._advised: dict[str, tuple[int, str]] = {}  # device -> (catalogue version, firmware) checked

    async def handle(self, events: Sequence[Any]) -> None:
        """Apply a batch of Faust events (telemetry records) in order."""
        async with self.lock:
            touched: set[int] = set()
            for event in events:
                msg = event.message
                part = self._partition(msg.partition)
                pos = partition_book.position(part.book, msg.topic, msg.offset)
                if pos.verdict == "repeat":
                    self.counters.repeats += 1
                    continue
                if pos.verdict == "gap":
                    await self._fill(part, msg.topic, msg.partition, pos.gap_from, msg.offset)
                await self._apply(part, msg.topic, msg.partition, msg.offset, msg.key, msg.value, event.value)
                touched.add(msg.partition)
            # At most one partition's checkpoint per batch: writing every partition's state
            # at once held the stream up for seconds (the alert latency's p99).
            due = [p for p in touched if time.monotonic() - self._partitions[p].checkpointed_at >= self._checkpoint_every_s]
            if due:
                await self._checkpoint(min(due, key=lambda p: self._partitions[p].checkpointed_at))

    async def tick(self, partition: int, wall_ms: int) -> None:
        """Timer pass over the devices of `partition`: offline detection, windows closing,
        quiet alerts clearing, advisories for a new catalogue or firmware."""
        async with self.lock:
            part = self._partition(partition)
            for device_id in list(part.book.devices):
                state = self._state(device_id)
                if state is None:
                    continue
                mark = part.book.watermarks.get(state.fleet.site_id)
                if mark is None:
                    continue
                now = mark[0] + max(0, wall_ms - mark[1])
                outcome = device.tick(state, now, self.settings)
                state = outcome.state
                outputs = outcome.outputs
                if self.catalogue and self._advised.get(device_id) != (self.catalogue_version, state.fleet.firmware_release):
                    state, more, rejected = device.advise(state, self.catalogue, self._public_key, now)
                    outputs += more
                    self._advised[device_id] = (self.catalogue_version, state.fleet.firmware_release)
                    for release in rejected:
                        log.warning("release %s %s %s: signature does not verify; not advised",
                                    release.model_number, release.advisory_type, release.version)
                if state is not self._states[device_id]:
                    self._states[device_id] = state
                    part.dirty.add(device_id)
                await self._emit(part, device_id, outputs)
            if time.monotonic() - part.checkpointed_at >= self._checkpoint_every_s:
                await self._checkpoint(partition)

    async def checkpoint_all(self) -> None:
        """Write every partition's state now (partitions being revoked, shutdown)."""
        async with self.lock:
            for p in list(self._partitions):
                await self._checkpoint(p)

    def forget(self, partitions: Sequence[int]) -> None:
        """Drop the cached state of partitions this worker no longer owns: if they come
        back, their state must be read again from the (then recovered) tables."""
        for p in partitions:
            part = self._partitions.pop(p, None)
            if part is not None:
                for device_id in part.book.devices:
                    self._states.pop(device_id, None)
                    self._advised.pop(device_id, None)

    def set_catalogue(self, releases: Sequence[Release], key: Any) -> None:
        self.catalogue, self._public_key = releases, key
        self.catalogue_version += 1

    # -- internals ---------------------------------------------------------------

    def _partition(self, p: int) -> _Partition:
        part = self._partitions.get(p)
        if part is None:
            stored = self.books.data.get(str(p))
            book = PartitionBook.from_dict(stored) if stored is not None else PartitionBook()
            part = self._partitions[p] = _Partition(book, checkpointed_at=time.monotonic())
        return part

    def _state(self, device_id: str) -> DeviceState | None:
        state = self._states.get(device_id)
        if state is None:
            stored = self.devices.data.get(device_id)
            if stored is None:
                return None
            state = self._states[device_id] = DeviceState.from_dict(stored)
        return state

    async def _fill(self, part: _Partition, topic: str, partition: int, start: int, end: int) -> None:
        records = await self._gaps.read(topic, partition, start, end)
        log.warning("%s[%d]: offsets %d..%d were not delivered; read %d records directly",
                    topic, partition, start, end - 1, len(records))
        self.counters.gap_records += len(records)
        for r in records:
            await self._apply(part, topic, partition, r.offset, r.key, r.value, self._decode(r.value))

    async def _apply(
        self, part: _Partition, topic: str, partition: int, offset: int, key: bytes | None, raw: bytes,
        value: Decoded | Undecodable,
    ) -> None:
        try:
            if isinstance(value, Undecodable):
                raise _Refused(value.reason)
            kind, record = value.kind, value.record
            if kind not in DEVICE_KINDS or topic_for(kind) != topic:
                raise _Refused(f"a {kind} record on topic {topic}")
            device_id = str(record["device_id"])
            state = self._state(device_id) or DeviceState()
            outcome = device.apply(state, kind, record, self.settings)
        except (_Refused, StreamsError) as exc:
            await self._reject(part, key, raw, str(exc), topic, partition, offset)
        else:
            self._states[device_id] = outcome.state
            part.dirty.add(device_id)
            for late in outcome.late:
                self.counters.late += 1
                await self._reject(part, key, raw, f"late: event_time {late['event_time']} is behind the closed window", topic, partition, offset)
            partition_book.saw(part.book, device_id, str(record["site_id"]),
                               int(record["event_time"]) if kind == "heartbeat" else None, int(self._wall() * 1000))
            await self._emit(part, device_id, outcome.outputs)
            self.counters.applied += 1
        partition_book.applied(part.book, topic, offset)

    async def _reject(
        self, part: _Partition, key: bytes | None, raw: bytes, reason: str, topic: str, partition: int, offset: int
    ) -> None:
        self.counters.dead_letters += 1
        part.pending.append(await self._dead_letter(key, raw, reason, topic, partition, offset))

    async def _emit(self, part: _Partition, device_id: str, outputs: list[Output]) -> None:
        for kind, record in outputs:
            part.pending.append(await self._send(topic_for(kind), device_id, (kind, record)))
            if kind == "utilisation" and self._fan_out is not None:
                model = self._states[device_id].fleet.model_number
                part.pending.append(await self._fan_out(str(record["site_id"]), {**record, "model_number": model}))
        self.counters.outputs += len(outputs)

    async def _checkpoint(self, p: int) -> None:
        part = self._partitions.get(p)
        if part is None:
            return
        pending, part.pending = part.pending, []
        await asyncio.gather(*pending)  # outputs acknowledged before the state claims them
        for device_id in part.dirty:
            self.devices.data[device_id] = plain = self._states[device_id].to_dict()
            self.devices.send_changelog(p, device_id, plain)
        part.dirty.clear()
        self.books.data[str(p)] = plain = part.book.to_dict()
        self.books.send_changelog(p, str(p), plain)
        part.checkpointed_at = time.monotonic()
        self.counters.checkpoints += 1


class _Refused(Exception):
    """A record the agent cannot apply: dead-lettered with this reason."""
