"""Group commit: the gateway's uploads go to Kafka in transactions, several at a time.

A producer runs one transaction at a time. Uploads that arrive while one commits wait
and go together in the next, so the cost of a commit is shared by everything that came
during the last. Before each transaction the committer catches up with what every
gateway has committed (`UploadMarks.catch_up`) and leaves out each record at or below its
collector's mark: a batch resent after a lost answer, or to another gateway instance, is
acknowledged without being produced again, also when only a part of it is a repeat.
A record the gateway refused on its own has no record to produce (`None`), or only its
dead letter; the mark still advances over it, so its dead letter is written once.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from common.kafka.errors import KafkaUnavailable
from producers.gateway.publisher import OutRecord, Publisher
from producers.gateway.uploads import Mark, UploadMarks

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Upload:
    """A validated batch: its collector's key, and each record with its sequence number.
    `records[i]` is None when record i was refused, `refused[i]` its error code (kept in
    the mark); `dead_letters` holds, by index, the dead letter of each record refused for
    good (produced with the records, once)."""

    key: str
    seqs: Sequence[int]  # ascending, one per record
    records: Sequence[OutRecord | None]
    dead_letters: Mapping[int, OutRecord] = dataclasses.field(default_factory=dict)
    refused: Mapping[int, str] = dataclasses.field(default_factory=dict)  # index -> error code


@dataclass(frozen=True, slots=True)
class Committed:
    """What `Committer.submit` did with an upload: `produced` records were new, and the
    records from index `first_new` on were above the collector's mark (earlier ones were
    repeats: produced, or refused, by an earlier upload). `refused_earlier`: of those
    repeats, the ones refused then, by index, with their codes (None: not known, the
    mark that would say is gone)."""

    produced: int
    first_new: int
    refused_earlier: Mapping[int, str] | None = dataclasses.field(default_factory=dict)


def first_new(upload: Upload, acked: int) -> int:
    """The index of the first record of `upload` above its collector's mark `acked`."""
    return next((i for i, seq in enumerate(upload.seqs) if seq > acked), len(upload.seqs))


def _next_mark(before: Mark | None, upload: Upload, start: int, *, same_round: bool) -> Mark:
    """The mark after `upload`'s records from `start` on: its top and its refusals. A
    mark made earlier in the same round (two uploads of one collector) is extended, so
    that it still answers for both."""
    refused = {upload.seqs[i]: code for i, code in upload.refused.items() if i >= start}
    if before is None:
        return Mark(upload.seqs[-1], 0, refused)
    if same_round:
        return Mark(upload.seqs[-1], before.floor, {**before.refused, **refused})
    return Mark(upload.seqs[-1], before.top, refused)


def fresh(upload: Upload, acked: int) -> list[OutRecord]:
    """The records of `upload` above its collector's mark `acked`: what to produce."""
    return [r for r in upload.records[first_new(upload, acked):] if r is not None]


class Committer:
    def __init__(self, publisher: Publisher, marks: UploadMarks, *, max_records: int = 50_000,
                 timed: Callable[[float, bool], None] | None = None) -> None:
        """`timed(seconds, ok)` hears how long each Kafka transaction took and whether it
        committed (the gateway's metrics)."""
        self._publisher, self._marks = publisher, marks
        self._timed = timed
        self._max_records = max_records
        self._queue: asyncio.Queue[tuple[Upload, asyncio.Future[Committed]]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._current: asyncio.Future[None] | None = None  # the round being committed

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="gateway-committer")

    async def stop(self) -> None:
        """Finish the transaction under way; uploads still waiting get KafkaUnavailable."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._current is not None:
            await self._current
        while not self._queue.empty():
            _, future = self._queue.get_nowait()
            if not future.done():
                future.set_exception(KafkaUnavailable("the gateway is stopping"))

    async def submit(self, upload: Upload) -> Committed:
        """Produce what of `upload` is new (with the dead letters of its new refused
        records) and advance its collector's mark. Raises KafkaUnavailable."""
        if self._task is None:
            raise KafkaUnavailable("the gateway is not started")
        future: asyncio.Future[Committed] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((upload, future))
        return await future

    async def _run(self) -> None:
        while True:
            round_ = [await self._queue.get()]
            size = len(round_[0][0].records)
            while size < self._max_records and not self._queue.empty():
                round_.append(self._queue.get_nowait())
                size += len(round_[-1][0].records)
            # Shielded: a transaction that has begun is finished (`stop` waits for it).
            self._current = asyncio.ensure_future(self._commit(round_))
            await asyncio.shield(self._current)
            self._current = None

    async def _commit(self, round_: list[tuple[Upload, asyncio.Future[Committed]]]) -> None:
        try:
            await self._marks.catch_up()
            tops: dict[str, Mark] = {}
            records: list[OutRecord] = []
            counts: list[Committed] = []
            for upload, _ in round_:
                same_round = upload.key in tops
                before = tops[upload.key] if same_round else self._marks.mark(upload.key)
                start = first_new(upload, 0 if before is None else before.top)
                new = [r for r in upload.records[start:] if r is not None]
                earlier = {} if start == 0 or before is None else before.refused_earlier(upload.seqs[:start])
                counts.append(Committed(len(new), start, earlier))
                if start < len(upload.seqs):
                    records.extend(new)
                    records.extend(letter for i, letter in upload.dead_letters.items() if i >= start)
                    tops[upload.key] = _next_mark(before, upload, start, same_round=same_round)
            if tops:  # also a batch of refused records only: its mark moves
                began, committed = time.monotonic(), False
                try:
                    await self._publisher.commit(records, tops)
                    committed = True
                finally:
                    if self._timed is not None:
                        self._timed(time.monotonic() - began, committed)
            for key, mark in tops.items():
                self._marks.note(key, mark)
        except Exception as exc:  # noqa: BLE001 - each upload's handler raises it; the loop goes on
            if not isinstance(exc, KafkaUnavailable):
                log.exception("event=commit_crashed uploads=%d", len(round_))
            for _, future in round_:
                if not future.done():
                    future.set_exception(exc)
            return
        for (_, future), count in zip(round_, counts):
            if not future.done():
                future.set_result(count)
