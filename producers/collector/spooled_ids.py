"""Ids of stream records (events, jobs, logs) that a collector found in its spool at
start: `spooled-ids.json`."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from producers.collector.cursors import STREAM_OF_KIND, write_atomically


class SpooledIds:
    """Ids of stream records (events, jobs, logs) that were in the spool when a collector
    started, kept on disk per device and stream until a read of that stream has moved its
    cursor past them (`confirm`).

    A crash between spooling a page and writing its cursor leaves the page's records in
    the spool with the cursor behind them, so the next run reads the page again and must
    not spool them twice. Their being pending at that start is not enough: the run may
    upload and ack them and be killed before its driver gets to the page, and the run
    after would find them neither pending nor behind the cursor, and spool them again.
    The file is replaced atomically, like the cursors.
    """

    def __init__(self, path: Path) -> None:
        self._path = path
        self._lock = asyncio.Lock()
        try:
            data: dict[str, dict[str, list[str]]] = json.loads(path.read_text())
        except FileNotFoundError:
            data = {}
        self._by_source = {(device, stream): set(ids) for device, streams in data.items() for stream, ids in streams.items()}
        self._ids = set().union(*self._by_source.values())

    def __contains__(self, record_id: object) -> bool:
        return record_id in self._ids

    def add(self, device_id: str, kind: str, record_id: str) -> None:
        """Remember a pending record of `kind`; kinds that are not read as streams are
        ignored. Call `save` before anything can upload."""
        stream = STREAM_OF_KIND.get(kind)
        if stream is not None:
            self._by_source.setdefault((device_id, stream), set()).add(record_id)
            self._ids.add(record_id)

    def holds(self, device_id: str, stream: str) -> bool:
        """Whether ids of this device's stream are remembered (`confirm` would let them go)."""
        return (device_id, stream) in self._by_source

    def save(self) -> None:
        data: dict[str, dict[str, list[str]]] = {}
        for (device, stream), ids in sorted(self._by_source.items()):
            data.setdefault(device, {})[stream] = sorted(ids)
        write_atomically(self._path, json.dumps(data))

    async def confirm(self, device_id: str, stream: str) -> None:
        """The stream of this device was read to its end and its cursor written: its
        remembered ids are behind the cursor now and can go."""
        async with self._lock:
            ids = self._by_source.pop((device_id, stream), None)
            if ids:
                self._ids -= ids
                await asyncio.to_thread(self.save)
