"""The gateway reloads its sites file without a restart: when the file changes, and when
asked (SIGHUP, through `request_reload`; `printfleet gateway` installs the handler).

Owned by `Gateway` (producers/gateway/gateway.py): started with it, stopped with it. Every
`interval_s` (0: never; SIGHUP only) the watcher compares the file's inode, size and modification time with those
of the last load; a change (an edit by `printfleet sites`, which replaces the file, or
by hand) reloads it. A file that does not load keeps the previous directory, logs one
error line for that version of the file, and the gateway goes on serving. A load that
succeeds hands the new `SiteDirectory` to `on_reload`, which swaps it in whole: a
request already under way keeps the site it authenticated with.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from producers.gateway.sites import SiteDirectory

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FileStamp:
    inode: int
    size: int
    mtime_ns: int


def stamp(path: Path) -> FileStamp | None:
    """What tells one version of the file from another; None when it is not there."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return FileStamp(st.st_ino, st.st_size, st.st_mtime_ns)


class SitesWatcher:
    """Reloads `path` on change or request; `async with` or start()/stop()."""

    def __init__(self, path: Path, interval_s: float, on_reload: Callable[[SiteDirectory], None]) -> None:
        self.path = path
        self.interval_s = interval_s
        self.on_reload = on_reload
        # Taken now, close to the load the caller did before: a change after it is seen.
        self._seen = stamp(path)
        self._asked = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.reloads = 0
        self.failures = 0

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="sites-watcher")

    async def stop(self) -> None:
        """Stop watching; safe without start and safe to repeat."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass

    def request_reload(self) -> None:
        """Reload at once whether the file changed or not (the SIGHUP handler). Must be
        called on the event loop's thread (`loop.add_signal_handler` does)."""
        self._asked.set()

    async def check(self, force: bool = False) -> bool | None:
        """Reload when the file changed since the last attempt, or when `force`. True:
        reloaded; False: the file did not load (the previous directory stays); None: no
        change."""
        now = stamp(self.path)
        if not force and now == self._seen:
            return None
        # Remembered before the load: a broken version is reported once, not every poll.
        self._seen = now
        try:
            sites = await asyncio.to_thread(SiteDirectory.load, self.path)
        except ValueError as exc:
            self.failures += 1
            log.error("event=sites_reload_failed keeping=previous error=%s", exc)
            return False
        self.on_reload(sites)
        self.reloads += 1
        # WARNING: the default log level shows it, and an operator who just enrolled a
        # printer wants to see that the gateway took the change.
        log.warning(
            "event=sites_reloaded file=%s sites=%d devices=%d reason=%s",
            self.path, len(sites.sites), sum(len(s.devices) for s in sites.sites.values()),
            "request" if force else "changed",
        )
        return True

    async def _run(self) -> None:
        while True:
            try:
                # 0: no polling, reload on request only.
                await asyncio.wait_for(self._asked.wait(), self.interval_s or None)
            except asyncio.TimeoutError:
                pass
            forced = self._asked.is_set()
            self._asked.clear()
            await self.check(force=forced)
