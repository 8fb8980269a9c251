"""Where each device's streams of records (events, jobs, logs) were read up to: the
collector's `cursors.json`, and how any driver names those streams.

A stream is named after its record kind (`STREAM_OF_KIND`), not after a driver's
endpoint, so that what a run left in the spool (which knows only device and kind) maps to
the cursor that covers it, whichever driver read it. A cursor is what its driver reads
from: the printer API's last seq (an integer), or an OPC UA event id or time (a string
or an integer). A cursor moves only after the records it covers are in the spool
(`DeviceSink.spool_page`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from pathlib import Path
from typing import TypeAlias

from producers.spool.async_spool import AsyncSpool
from producers.spool.spool import Batch, Spool

log = logging.getLogger(__name__)

# Cursor values as cursors.json holds them: a driver reads back only its own.
Cursor: TypeAlias = int | str

# Record kinds read as streams, each once, by cursor -> the stream's name in cursors.json
# and spooled-ids.json (the printer API's endpoints, which named them first).
STREAM_OF_KIND = {"system_event": "events", "job": "jobs", "device_log": "logs"}


# How long a cursor move may wait in memory before cursors.json is written. The file
# holds every printer's cursors (tens of kB at 1,000 printers) and was written with an
# fsync at every move; now the moves of this long share one write, and an ack of the
# spool writes them first (`CursorSafeSpool`), which is what makes the wait safe.
CURSOR_WRITE_DELAY_S = 1.0


class CursorStore:
    """Per device and stream, the cursor that is safely in the spool.

    A move (`set`) is kept in memory and written with the moves that follow it within
    `write_delay_s`, or sooner by `flush`: before the spool acks anything
    (`CursorSafeSpool`), before spooled ids are let go (`DeviceSink.caught_up`) and at
    `close`. A kill in between loses moves whose records are all still in the spool: the
    next run reads those pages again, finds their records pending and does not spool them
    twice. The JSON file is replaced atomically: a crash leaves the old cursors or the new
    ones, never a torn file. Shared by all drivers of a collector; use it from the event loop.
    """

    def __init__(self, path: Path, write_delay_s: float = CURSOR_WRITE_DELAY_S) -> None:
        self._path = path
        self._write_delay_s = write_delay_s
        self._lock = asyncio.Lock()
        try:
            self._data: dict[str, dict[str, Cursor]] = json.loads(path.read_text())
        except FileNotFoundError:
            self._data = {}
        self._moves = self._written = 0  # moves made, and how many of them the file holds
        self._timer: asyncio.Task[None] | None = None

    def get(self, device: str, stream: str) -> Cursor | None:
        """The cursor of `stream` (e.g. "events") of `device`; None before its first move."""
        return self._data.get(device, {}).get(stream)

    async def set(self, device: str, stream: str, cursor: Cursor) -> None:
        """Move the cursor; written within `write_delay_s` (at once when that is 0).
        Call only once the records it covers are in the spool."""
        self._data.setdefault(device, {})[stream] = cursor
        self._moves += 1
        if self._write_delay_s <= 0:
            await self.flush()
        elif self._timer is None or self._timer.done():
            self._timer = asyncio.create_task(self._flush_later())

    async def flush(self) -> None:
        """Write the moves made so far, unless the file holds them already; returns once
        they are durable. Raises OSError when the file cannot be written (the moves stay
        in memory, for the next flush)."""
        async with self._lock:
            if self._written == self._moves:
                return
            moves, text = self._moves, json.dumps(self._data, sort_keys=True)
            await asyncio.to_thread(self._write, text)
            self._written = moves

    async def close(self) -> None:
        """Write what is left. Safe to call twice; the store stays usable."""
        timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await timer
        await self.flush()

    async def _flush_later(self) -> None:
        await asyncio.sleep(self._write_delay_s)
        try:
            await self.flush()
        except OSError as exc:  # the moves stay in memory; the next flush (an ack, a move) tries again
            log.error("event=cursors_write_failed path=%s error=%r", self._path, exc)

    def _write(self, text: str) -> None:
        write_atomically(self._path, text)


class CursorSafeSpool(AsyncSpool):
    """The spool as the collector's uploader uses it: an ack first writes the cursors.

    A record must not leave the spool while the cursor that covers it could still be
    lost, or a restart would read it again and find it nowhere: spooled twice. Appends
    and cursor moves happen together under `commit_lock` and the uploader peeks under it,
    so every cursor covering a peeked record has moved by then; writing them before the
    ack makes them durable before the records go.
    """

    def __init__(self, spool: Spool, cursors: CursorStore) -> None:
        super().__init__(spool)
        self.cursors = cursors

    async def ack(self, batch: Batch) -> int:
        await self.cursors.flush()
        return await super().ack(batch)


def write_atomically(path: Path, text: str) -> None:
    """Replace `path` with `text`, durably: a crash leaves the old file or the new one."""
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(path)
