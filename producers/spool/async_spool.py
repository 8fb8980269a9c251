"""The spool as the collector's coroutines use it: file work off the event loop.

`Spool` serialises its callers with its own lock; this adapter runs each call that may
fsync in a worker thread, so an fsync never stalls the pollers or the uploader.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from producers.spool.spool import Batch, RecordClass, Spool, SpoolStats


class AsyncSpool:
    def __init__(self, spool: Spool) -> None:
        self._spool = spool
        # Held by a device sink from its append until its cursor has moved, and by the
        # uploader while it peeks: every cursor covering a peeked record has moved, and the
        # collector writes the cursors before an ack (producers/collector/cursors.py), so a
        # record never leaves the spool while its cursor could still be lost, which would
        # make a restart read it again.
        self.commit_lock = asyncio.Lock()

    async def append_many(self, items: Sequence[tuple[RecordClass, bytes]]) -> int:
        return await asyncio.to_thread(self._spool.append_many, items)

    async def peek(self, max_records: int, max_bytes: int) -> Batch:
        return await asyncio.to_thread(self._spool.peek, max_records, max_bytes)

    async def ack(self, batch: Batch) -> int:
        return await asyncio.to_thread(self._spool.ack, batch)

    async def number_past(self, seq: int) -> None:
        await asyncio.to_thread(self._spool.number_past, seq)

    def stats(self) -> SpoolStats:
        return self._spool.stats()  # a snapshot without I/O: fine on the event loop
