"""What every gateway produced, per site collector: the highest sequence number.

A collector numbers its records (its spool's sequence numbers, never reused) and sends
them in order, so one number per collector says what has arrived: every record at or
below it. The gateway writes that number to the compacted topic `gateway.uploads` in the
same Kafka transaction as the batch's records (`Publisher.commit`), so it is in Kafka if
and only if the records are. Every gateway instance reads the whole topic at start and
catches up with it before it decides what of a batch is new (`catch_up`, from the
committer); a batch resent after a crash, or sent again to another instance, is
recognised however long ago its first upload was: the memory is one number per collector
and has no window.

Keys are `<site id>/<uploader id>`: a site cannot mark another site's records as arrived.

A mark also says which records of the batch that set it were refused one by one
(`Mark.refused`, for the numbers in (`floor`, `top`]): a collector whose answer was lost
sends that batch again, and a record refused then must be refused again, so that the
collector keeps it aside and sends it anew, even if its printer was enrolled meanwhile
(a check now would pass it, and the mark would acknowledge it without producing it).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from common.kafka import clients
from common.kafka.diagnose import failure
from common.kafka.errors import KafkaUnavailable
from common.kafka.settings import KafkaSettings
from common.kafka.topics import GATEWAY_UPLOADS

log = logging.getLogger(__name__)


def upload_key(site_id: str, uploader: str) -> str:
    return f"{site_id}/{uploader}"


# A mark is one Kafka record: past this many refused numbers, the mark keeps none of them
# (a resend is then checked anew, as a mark without them, from before, is).
MAX_REFUSALS_KEPT = 20_000


@dataclass(frozen=True, slots=True)
class Mark:
    """A collector's highest sequence number in Kafka (`top`), and of the numbers in
    (`floor`, `top`], committed last, those refused one by one: number -> error code."""

    top: int
    floor: int = -1  # -1: refusals unknown (floor = top says the same)
    refused: Mapping[int, str] = field(default_factory=dict)

    def refused_earlier(self, seqs: Sequence[int]) -> dict[int, str] | None:
        """Which of these numbers (ascending) were refused when first committed, by index;
        None when this mark does not know all of them."""
        if self.floor < 0 or not seqs or seqs[0] <= self.floor or seqs[-1] > self.top:
            return None
        return {i: self.refused[seq] for i, seq in enumerate(seqs) if seq in self.refused}


def encode_mark(mark: Mark) -> bytes:
    if mark.floor < 0 or len(mark.refused) > MAX_REFUSALS_KEPT:
        return str(mark.top).encode()
    by_code: dict[str, list[int]] = {}
    for seq, code in sorted(mark.refused.items()):
        by_code.setdefault(code, []).append(seq)
    return json.dumps({"top": mark.top, "floor": mark.floor, "refused": by_code}, separators=(",", ":")).encode()


def decode_mark(value: bytes) -> Mark:
    """Raises ValueError for a value that is no mark. A plain number (the first format)
    is a mark that knows no refusals."""
    text = value.decode()
    if text.isdigit():
        return Mark(int(text))
    data = json.loads(text)
    refused = {int(seq): str(code) for code, seqs in data.get("refused", {}).items() for seq in seqs}
    return Mark(int(data["top"]), int(data["floor"]), refused)


class UploadMarks:
    """The gateway's view of `gateway.uploads`: key -> its latest mark."""

    def __init__(self, kafka: KafkaSettings, *, timeout_s: float) -> None:
        self._kafka = kafka
        self._timeout_s = timeout_s
        self._tp = TopicPartition(kafka.topic(GATEWAY_UPLOADS), 0)
        self._marks: dict[str, Mark] = {}
        self._consumer: AIOKafkaConsumer | None = None
        self._lock = asyncio.Lock()

    def acked(self, key: str) -> int:
        """The highest sequence number of `key` known to be in Kafka; 0 for none."""
        mark = self._marks.get(key)
        return 0 if mark is None else mark.top

    def mark(self, key: str) -> Mark | None:
        return self._marks.get(key)

    def note(self, key: str, mark: Mark) -> None:
        """`mark` of `key` was committed (by this gateway: its own writes, before it reads them)."""
        if mark.top > self.acked(key):
            self._marks[key] = mark

    def __len__(self) -> int:
        return len(self._marks)

    async def catch_up(self) -> None:
        """Read the topic up to what is committed now, starting the consumer if needed.
        Raises KafkaUnavailable when that does not happen within the timeout."""
        async with self._lock:
            try:
                await asyncio.wait_for(self._catch_up(), self._timeout_s)
            except (KafkaError, OSError, asyncio.TimeoutError) as exc:
                await self._close()
                raise await failure(self._kafka, exc, f"cannot read {self._tp.topic} from Kafka") from exc

    async def stop(self) -> None:
        async with self._lock:
            await self._close()

    async def _catch_up(self) -> None:
        consumer = self._consumer
        if consumer is None:
            started = time.monotonic()
            # Kept at once, so that a failure below closes it (`catch_up`).
            consumer = self._consumer = clients.consumer(self._kafka, group_id=None, auto_offset_reset="earliest")
            await consumer.start()
            consumer.assign([self._tp])
            await consumer.seek_to_beginning(self._tp)
            await self._read_to_end(consumer)
            log.info("event=upload_marks_loaded collectors=%d duration_ms=%.0f",
                     len(self._marks), (time.monotonic() - started) * 1000)
            return
        await self._read_to_end(consumer)

    async def _read_to_end(self, consumer: AIOKafkaConsumer) -> None:
        # With read_committed the end offset is the last stable one: nothing of an open
        # transaction is waited for, everything committed before this call is read.
        end = (await consumer.end_offsets([self._tp]))[self._tp]
        while await consumer.position(self._tp) < end:
            batches = await consumer.getmany(self._tp, timeout_ms=200, max_records=10_000)
            for message in batches.get(self._tp, ()):
                if message.key is None or message.value is None:
                    continue  # not ours; tombstones are not written
                try:
                    mark = decode_mark(message.value)
                except (ValueError, KeyError, TypeError, AttributeError):
                    log.warning("event=upload_mark_unreadable offset=%d", message.offset)
                    continue
                self.note(message.key.decode(errors="replace"), mark)

    async def _close(self) -> None:
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            try:
                await consumer.stop()
            except (KafkaError, OSError) as exc:
                log.debug("closing the upload marks consumer: %r", exc)
