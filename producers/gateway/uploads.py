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
"""

from __future__ import annotations

import asyncio
import logging
import time

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


def encode_mark(seq: int) -> bytes:
    return str(seq).encode()


class UploadMarks:
    """The gateway's view of `gateway.uploads`: key -> highest sequence number produced."""

    def __init__(self, kafka: KafkaSettings, *, timeout_s: float) -> None:
        self._kafka = kafka
        self._timeout_s = timeout_s
        self._tp = TopicPartition(kafka.topic(GATEWAY_UPLOADS), 0)
        self._marks: dict[str, int] = {}
        self._consumer: AIOKafkaConsumer | None = None
        self._lock = asyncio.Lock()

    def acked(self, key: str) -> int:
        """The highest sequence number of `key` known to be in Kafka; 0 for none."""
        return self._marks.get(key, 0)

    def note(self, key: str, seq: int) -> None:
        """`seq` of `key` was committed by this gateway (its own writes, before it reads them)."""
        if seq > self._marks.get(key, 0):
            self._marks[key] = seq

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
                    seq = int(message.value)
                except ValueError:
                    log.warning("event=upload_mark_unreadable offset=%d", message.offset)
                    continue
                self.note(message.key.decode(errors="replace"), seq)

    async def _close(self) -> None:
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            try:
                await consumer.stop()
            except (KafkaError, OSError) as exc:
                log.debug("closing the upload marks consumer: %r", exc)
