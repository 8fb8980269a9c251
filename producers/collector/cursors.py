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
import json
import os
from pathlib import Path
from typing import TypeAlias

# Cursor values as cursors.json holds them: a driver reads back only its own.
Cursor: TypeAlias = int | str

# Record kinds read as streams, each once, by cursor -> the stream's name in cursors.json
# and spooled-ids.json (the printer API's endpoints, which named them first).
STREAM_OF_KIND = {"system_event": "events", "job": "jobs", "device_log": "logs"}


class CursorStore:
    """Per device and stream, the cursor that is safely in the spool.

    A JSON file replaced atomically: a crash leaves the old cursors, never a torn file.
    Shared by all drivers of a collector; the lock keeps their writes from interleaving.
    """

    def __init__(self, path: Path) -> None:
        self._path = path
        self._lock = asyncio.Lock()
        try:
            self._data: dict[str, dict[str, Cursor]] = json.loads(path.read_text())
        except FileNotFoundError:
            self._data = {}

    def get(self, device: str, stream: str) -> Cursor | None:
        """The cursor of `stream` (e.g. "events") of `device`; None before its first move."""
        return self._data.get(device, {}).get(stream)

    async def set(self, device: str, stream: str, cursor: Cursor) -> None:
        """Move the cursor, durably: returns once the file holds it."""
        async with self._lock:
            self._data.setdefault(device, {})[stream] = cursor
            await asyncio.to_thread(write_atomically, self._path, json.dumps(self._data, sort_keys=True))


def write_atomically(path: Path, text: str) -> None:
    """Replace `path` with `text`, durably: a crash leaves the old file or the new one."""
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(path)
