"""The device agent's machinery: state cache, partition books, outputs and checkpoints.
`streams.app` feeds it batches from the `TelemetryReader` and the ticks of Faust's timer;
the logic per record is `streams.device` (no I/O).

Each owned partition has a transaction (`streams.partition_transactions`): the outputs,
dead letters and site windows made from its records are sent in it as they are made,
and at a checkpoint (at most every `checkpoint_every_s` per partition, and when
partitions are revoked) the changed device states and the partition book are written and
the transaction committed. So the book, the states and the outputs are in Kafka together
or not at all: after a crash the next owner starts from the committed book and makes the
aborted outputs again, once. The books are the only position the worker has in its input.

The site and benchmark roll-ups (`streams.rollups`) run here too: the device agent hands
utilisation windows to the windows-by-site topic, the owner of that topic's partition
rolls them up per site and hands each site's day to the sites-by-cohort topic, whose
owner makes the benchmarks. Each hop is a transaction of the partition it was made in,
read with read_committed by the next, so the roll-ups are exactly once as well.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

from aiokafka import TopicPartition

from schemas import DEVICE_KINDS
from common.kafka.topics import telemetry_topics, topic_for
from streams import device, partition_book
from streams.advisories import Release
from streams.device import DeviceSettings, DeviceState, Output
from streams.errors import StreamsError
from streams.decoding import Undecodable
from streams.partition_book import PartitionBook
from streams.anonymous_benchmark import BenchmarkSettings
from streams.partition_transactions import Outgoing, Recovered
from streams.rollups import Rollups
from streams.telemetry_reader import Input

log = logging.getLogger(__name__)

_TOPIC_OF = {kind: topic_for(kind) for kind in DEVICE_KINDS}  # the topic a device record must come on
_TELEMETRY = frozenset(_TOPIC_OF.values())

class Transactions(Protocol):
    """What the agent needs of `PartitionTransactions`: per partition, sends in its open
    transaction and a commit of it with the states and the book."""

    async def own(self, partitions: Sequence[int]) -> dict[int, Recovered]: ...

    async def release(self, partitions: Sequence[int]) -> None: ...

    async def send_many(self, p: int, outputs: Sequence[Outgoing]) -> None: ...

    async def dead_letter(self, p: int, key: bytes | None, raw: bytes, reason: str, topic: str, partition: int,
                          offset: int, timestamp_ms: int = -1) -> None: ...

    async def send_json(self, p: int, topic: str, key: str, message: dict[str, Any]) -> None: ...

    async def commit(self, p: int, states: Mapping[str, bytes | None], book: bytes) -> None: ...


@dataclass(frozen=True, slots=True)
class RollupTopics:
    """Registry names of the roll-ups' input topics (`streams.rollups`)."""

    windows: str
    cohorts: str
    benchmark: BenchmarkSettings = BenchmarkSettings()


DEVICE_KEY = "device/"


@dataclass(slots=True)
class Counters:
    applied: int = 0
    repeats: int = 0
    dead_letters: int = 0
    late: int = 0
    outputs: int = 0
    checkpoints: int = 0


@dataclass(slots=True)
class _Partition:
    number: int
    book: PartitionBook
    stored: dict[str, bytes]  # device id -> committed state JSON, decoded when first needed
    rollups: Rollups
    dirty: set[str] = field(default_factory=set)
    checkpointed_at: float = 0.0
    changed: bool = False  # anything applied or sent since the last commit
    due: asyncio.TimerHandle | None = None  # the checkpoint scheduled for what is not committed yet


class DeviceAgent:
    def __init__(
        self, settings: DeviceSettings, transactions: Transactions,
        *, checkpoint_every_s: float, wall_clock: Callable[[], float] = time.time, rollups: RollupTopics | None = None,
        timed: Callable[[float], None] | None = None,
    ) -> None:
        """`rollups`: where utilisation windows go to be rolled up per site (and read back
        from, with the sites' days per cohort); None: no roll-ups. `timed(seconds)` hears
        how long each partition's checkpoint took (the worker's metrics)."""
        self.settings = settings
        self._timed = timed
        self._tx = transactions
        self._rollups = rollups
        self._inputs = (*telemetry_topics(), *((rollups.windows, rollups.cohorts) if rollups else ()))
        self._checkpoint_every_s = checkpoint_every_s
        self._wall = wall_clock
        self._states: dict[str, DeviceState] = {}
        self._partitions: dict[int, _Partition] = {}  # the partitions this worker owns
        # One batch, tick or checkpoint at a time: they share the cache and the books.
        self.lock = asyncio.Lock()
        self.counters = Counters()
        self.catalogue: Sequence[Release] = ()
        self.catalogue_version = 0
        self._public_key: Any = None
        self._advised: dict[str, tuple[int, str]] = {}  # device -> (catalogue version, firmware) checked
        self._checkpoints: set[asyncio.Task[None]] = set()  # scheduled ones, running
        self._failure: BaseException | None = None  # of a scheduled checkpoint: raised by the next call

    async def own(self, partitions: Sequence[int]) -> dict[TopicPartition, int | None]:
        """Take these input partitions (their tables recovered): their books are read, and
        partitions owned before but not now are checkpointed and forgotten. Returns where
        the reader starts each telemetry topic partition: the book's next offset, None
        where the book has never seen the topic."""
        async with self.lock:
            gone = [p for p in self._partitions if p not in partitions]
            for p in gone:
                await self._checkpoint(p)
            await self._forget(gone)
            recovered = await self._tx.own([p for p in partitions if p not in self._partitions])
            bench = self._rollups.benchmark if self._rollups else BenchmarkSettings()
            for p, found in recovered.items():
                book = PartitionBook.from_json(found.book) if found.book is not None else PartitionBook()
                devices = {k.removeprefix(DEVICE_KEY): v for k, v in found.states.items() if k.startswith(DEVICE_KEY)}
                self._partitions[p] = _Partition(p, book, devices, Rollups(found.states, bench),
                                                 checkpointed_at=time.monotonic())
            return {TopicPartition(t, p): self._partitions[p].book.next_offsets.get(t)
                    for p in partitions for t in self._inputs}

    async def began(self, positions: Mapping[TopicPartition, int]) -> None:
        """Where the reader began topics the books had never seen (`start_at`): noted in
        the books, which are checkpointed at once. Whoever reads such a partition next,
        this worker after a crash or another one after a rebalance, goes on from there;
        `start_at=latest` applied again would skip what arrived in between."""
        async with self.lock:
            noted = set()
            for tp, offset in positions.items():
                part = self._partitions.get(tp.partition)
                if part is not None and tp.topic not in part.book.next_offsets:
                    part.book.next_offsets[tp.topic] = offset
                    noted.add(tp.partition)
            for p in sorted(noted):
                await self._checkpoint(p)

    async def handle(self, inputs: Sequence[Input]) -> None:
        """Apply a batch of telemetry records in order. Records of a partition this worker
        does not own (any more) are left to its owner. The logic runs for the whole
        batch first, then its outputs and dead letters are queued in the same order: a
        coroutine per record was a tenth of a heartbeat's cost."""
        async with self.lock:
            self._raise_failure()
            touched: set[int] = set()
            sends: list[_Send] = []
            wall_ms = int(self._wall() * 1000)  # when the batch came: the watermarks' wall clock
            partitions, repeats = self._partitions, 0
            for i in inputs:
                part = partitions.get(i.partition)
                if part is None:
                    continue
                # The usual case inline: the next offset of a topic the book knows.
                # A gap is normal: transaction markers and aborted records take offsets
                # (records lost to retention are counted by the reader).
                if part.book.next_offsets.get(i.topic, i.offset) != i.offset:
                    if partition_book.position(part.book, i.topic, i.offset).verdict == "repeat":
                        repeats += 1
                        continue
                if i.topic in _TELEMETRY:
                    self._apply(part, i, wall_ms, sends)
                else:
                    self._roll_up(part, i, sends)
                partition_book.applied(part.book, i.topic, i.offset)  # (or dead-lettered)
                part.changed = True
                touched.add(i.partition)
            self.counters.repeats += repeats
            alerted = await self._flush(sends)
            # Alerts are seen at their partition's commit: those partitions commit now.
            # Otherwise at most one partition's checkpoint per batch: writing every
            # partition's state at once held the stream up for seconds.
            for p in sorted(alerted):
                await self._checkpoint(p)
            due = [p for p in touched - alerted
                   if time.monotonic() - self._partitions[p].checkpointed_at >= self._checkpoint_every_s]
            if due:
                await self._checkpoint(min(due, key=lambda p: self._partitions[p].checkpointed_at))
            for p in touched:
                self._checkpoint_later(p)

    async def tick(self, partition: int, wall_ms: int) -> None:
        """Timer pass over the devices of `partition`: offline detection, windows closing,
        quiet alerts clearing, advisories for a new catalogue or firmware."""
        async with self.lock:
            self._raise_failure()
            part = self._partitions.get(partition)
            if part is None:
                return
            sends: list[_Send] = []
            for device_id in list(part.book.devices):
                state = self._state(part, device_id)
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
                if outputs:
                    sends.append(_Emit(part, device_id, outputs, state.fleet.model_number))
            alerted = await self._flush(sends)
            part.changed = part.changed or bool(sends or part.dirty)
            if alerted or (part.changed and time.monotonic() - part.checkpointed_at >= self._checkpoint_every_s):
                await self._checkpoint(partition)
            elif part.changed:
                self._checkpoint_later(partition)

    async def checkpoint_all(self) -> None:
        """Write every partition's state now (partitions being revoked, shutdown)."""
        async with self.lock:
            for p in list(self._partitions):
                await self._checkpoint(p)

    async def forget(self, partitions: Sequence[int]) -> None:
        """Drop partitions this worker no longer owns, uncommitted work included (call
        `checkpoint_all` first to keep it): if they come back, their state is read again
        from what is committed."""
        async with self.lock:
            await self._forget(partitions)

    async def _forget(self, partitions: Sequence[int]) -> None:
        for p in partitions:
            part = self._partitions.pop(p, None)
            if part is not None:
                if part.due is not None:
                    part.due.cancel()
                for device_id in part.book.devices:
                    self._states.pop(device_id, None)
                    self._advised.pop(device_id, None)
        await self._tx.release(partitions)

    def set_catalogue(self, releases: Sequence[Release], key: Any) -> None:
        self.catalogue, self._public_key = releases, key
        self.catalogue_version += 1

    # -- internals ---------------------------------------------------------------

    def _state(self, part: _Partition, device_id: str) -> DeviceState | None:
        state = self._states.get(device_id)
        if state is None:
            stored = part.stored.pop(device_id, None)
            if stored is None:
                return None
            state = self._states[device_id] = DeviceState.from_json(stored)
        return state

    def _apply(self, part: _Partition, i: Input, wall_ms: int, sends: list[_Send]) -> None:
        """Apply one record (or reject it); what it must send is added to `sends`. The
        caller books the offset as applied."""
        try:
            value = i.value
            if isinstance(value, Undecodable):
                raise _Refused(value.reason)
            kind, record = value
            if _TOPIC_OF.get(kind) != i.topic:
                raise _Refused(f"a {kind} record on topic {i.topic}")
            device_id = str(record["device_id"])
            state = self._states.get(device_id) or self._state(part, device_id) or DeviceState()
            model_before = state.fleet.model_number  # (apply changes `state` in place)
            outcome = device.apply(state, kind, record, self.settings)
            model = outcome.state.fleet.model_number
        except (_Refused, StreamsError) as exc:
            sends.append(_Reject(part, i, str(exc)))
        else:
            self._states[device_id] = outcome.state
            part.dirty.add(device_id)
            for late in outcome.late:
                self.counters.late += 1
                sends.append(_Reject(part, i, f"late: event_time {late['event_time']} is behind the closed window"))
            partition_book.saw(part.book, device_id, str(record["site_id"]),
                               int(record["event_time"]) if kind == "heartbeat" else None, wall_ms)
            if outcome.outputs:
                sends.append(_Emit(part, device_id, outcome.outputs, model))
            if model != model_before and self._rollups is not None:
                # Windows rolled up before the identity was read wait for it in no cohort.
                site = str(record["site_id"])
                sends.append(_Hand(part, self._rollups.windows, site,
                                   {"site_id": site, "device_id": device_id, "model_number": model}))
            self.counters.applied += 1

    def _roll_up(self, part: _Partition, i: Input, sends: list[_Send]) -> None:
        """A message of a roll-up topic: a printer's window for its site, or a site's day
        for its cohort."""
        assert self._rollups is not None  # (only then are these topics read)
        try:
            value = i.value
            if isinstance(value, Undecodable):
                raise _Refused(value.reason)
            if i.topic == self._rollups.windows:
                outputs, handed = part.rollups.site_window(value.record)
            else:
                outputs, handed = part.rollups.cohort_site(value.record), []
        except (_Refused, StreamsError, KeyError, TypeError, ValueError) as exc:
            sends.append(_Reject(part, i, f"roll-up: {exc!r}"))
            return
        if outputs:
            sends.append(_Out(part, outputs))
        sends += [_Hand(part, self._rollups.cohorts, key, message) for key, message in handed]

    async def _flush(self, sends: Sequence[_Send]) -> set[int]:
        """Send what a batch or a timer pass made, in its order, each in its partition's
        transaction: the outputs in one call per partition, dead letters and fan-outs one
        by one. Utilisation records also go to the site and benchmark agents with the
        printer's model as of them. Returns the partitions that sent an alert."""
        outputs: dict[int, list[Outgoing]] = {}
        alerted: set[int] = set()
        windows = self._rollups.windows if self._rollups else None
        for send in sends:
            p = send.part.number
            if isinstance(send, _Emit):
                into = outputs.setdefault(p, [])
                for kind, record in send.outputs:
                    into.append((topic_for(kind), send.device_id, (kind, record)))
                    if kind == "alert":
                        alerted.add(p)
                    if kind == "utilisation" and windows is not None:
                        site = str(record["site_id"])
                        await self._tx.send_json(p, windows, site, {**record, "model_number": send.model})
                self.counters.outputs += len(send.outputs)
            elif isinstance(send, _Out):
                outputs.setdefault(p, []).extend(send.outputs)
                self.counters.outputs += len(send.outputs)
            elif isinstance(send, _Reject):
                self.counters.dead_letters += 1
                i = send.input
                await self._tx.dead_letter(p, i.key, i.raw, send.reason, i.topic, i.partition, i.offset, i.timestamp)
            else:
                await self._tx.send_json(p, send.topic, send.key, send.message)
        for p, batch in outputs.items():
            await self._tx.send_many(p, batch)
        return alerted

    def _checkpoint_later(self, p: int) -> None:
        """Make sure what partition `p` sent since its last commit is committed within
        `checkpoint_every_s`, also when nothing more arrives: readers see outputs only then."""
        part = self._partitions.get(p)
        if part is None or part.due is not None:
            return
        delay = max(0.0, self._checkpoint_every_s - (time.monotonic() - part.checkpointed_at))
        part.due = asyncio.get_running_loop().call_later(delay, self._start_checkpoint, p)

    def _start_checkpoint(self, p: int) -> None:
        task = asyncio.ensure_future(self._scheduled_checkpoint(p))
        self._checkpoints.add(task)
        task.add_done_callback(self._checkpoints.discard)

    async def _scheduled_checkpoint(self, p: int) -> None:
        async with self.lock:
            part = self._partitions.get(p)
            if part is None or part.due is None:
                return  # checkpointed meanwhile, or no longer ours
            part.due = None
            try:
                await self._checkpoint(p)
            except Exception as exc:  # noqa: BLE001 - nothing awaits this task: the next call raises it
                log.critical("partition %d: the scheduled checkpoint failed: %r", p, exc)
                self._failure = exc

    def _raise_failure(self) -> None:
        if self._failure is not None:
            raise self._failure

    async def _checkpoint(self, p: int) -> None:
        part = self._partitions.get(p)
        if part is None:
            return
        if part.due is not None:
            part.due.cancel()
            part.due = None
        states = {DEVICE_KEY + device_id: self._states[device_id].to_json() for device_id in part.dirty}
        began = time.monotonic()
        await self._tx.commit(p, {**states, **part.rollups.take_dirty()}, part.book.to_json())
        if self._timed is not None:
            self._timed(time.monotonic() - began)
        part.dirty.clear()
        part.changed = False
        part.checkpointed_at = time.monotonic()
        self.counters.checkpoints += 1


class _Emit(NamedTuple):
    part: _Partition
    device_id: str
    outputs: list[Output]
    model: str


class _Reject(NamedTuple):
    part: _Partition
    input: Input
    reason: str


class _Out(NamedTuple):  # outputs of a roll-up: (topic, key, (kind, record)) each
    part: _Partition
    outputs: list[Outgoing]


class _Hand(NamedTuple):  # a message for a roll-up topic (JSON)
    part: _Partition
    topic: str
    key: str
    message: dict[str, Any]


_Send = _Emit | _Out | _Reject | _Hand


class _Refused(Exception):
    """A record the agent cannot apply: dead-lettered with this reason."""
