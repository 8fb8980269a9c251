"""The gateway's sites file reloads (producers/gateway/sites_watch.py): a changed file is
loaded and handed over whole; a broken one keeps the previous directory and is reported
once; a request reloads at once, with or without polling."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from producers.gateway.enrolment import SitesFile, write_atomically
from producers.gateway.sites import SiteDirectory
from producers.gateway.sites_watch import SitesWatcher

PRINTER = "0b6c2f1e-3a4d-4c5e-9f60-7a8b9c0d1e2f"


class Taken:
    """What the watcher hands to the gateway, in order."""

    def __init__(self) -> None:
        self.directories: list[SiteDirectory] = []
        self.changed = asyncio.Event()

    def __call__(self, sites: SiteDirectory) -> None:
        self.directories.append(sites)
        self.changed.set()


@pytest.fixture
def sites(tmp_path: Path) -> SitesFile:
    sites = SitesFile(tmp_path / "sites.toml")
    sites.add_site("acme")
    return sites


async def test_no_change_no_reload_and_an_edit_is_reloaded(sites: SitesFile) -> None:
    taken = Taken()
    watcher = SitesWatcher(sites.path, 0, taken)
    assert await watcher.check() is None
    sites.enrol("acme", [PRINTER])
    assert await watcher.check() is True
    assert [d.sites["acme"].devices for d in taken.directories] == [{PRINTER}]
    assert await watcher.check() is None


async def test_a_broken_file_keeps_the_previous_directory_and_is_reported_once(
    sites: SitesFile, caplog: pytest.LogCaptureFixture,
) -> None:
    taken = Taken()
    watcher = SitesWatcher(sites.path, 0, taken)
    good = sites.path.read_text()
    write_atomically(sites.path, "[sites.acme\n")
    with caplog.at_level(logging.WARNING, "producers.gateway.sites_watch"):
        assert await watcher.check() is False
        assert await watcher.check() is None
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "sites_reload_failed" in errors[0].getMessage() and str(sites.path) in errors[0].getMessage()
    assert taken.directories == [] and watcher.failures == 1
    write_atomically(sites.path, good)
    assert await watcher.check() is True and list(taken.directories[0].sites) == ["acme"]


async def test_a_reload_logs_one_line_with_the_counts(sites: SitesFile, caplog: pytest.LogCaptureFixture) -> None:
    watcher = SitesWatcher(sites.path, 0, Taken())
    sites.enrol("acme", [PRINTER])
    with caplog.at_level(logging.WARNING, "producers.gateway.sites_watch"):
        await watcher.check()
    assert [r.getMessage().split(" file=")[0] for r in caplog.records] == ["event=sites_reloaded"]
    assert "sites=1 devices=1 reason=changed" in caplog.records[0].getMessage()


async def test_a_removed_file_keeps_the_previous_directory(sites: SitesFile) -> None:
    taken = Taken()
    watcher = SitesWatcher(sites.path, 0, taken)
    sites.path.unlink()
    assert await watcher.check() is False and taken.directories == []


async def test_polling_finds_an_edit_without_being_asked(sites: SitesFile) -> None:
    taken = Taken()
    watcher = SitesWatcher(sites.path, 0.05, taken)
    watcher.start()
    try:
        sites.enrol("acme", [PRINTER])
        await asyncio.wait_for(taken.changed.wait(), 5)
    finally:
        await watcher.stop()
        await watcher.stop()  # safe to repeat
    assert taken.directories[-1].sites["acme"].devices == {PRINTER}


async def test_a_request_reloads_at_once_even_without_polling_or_change(sites: SitesFile) -> None:
    taken = Taken()
    watcher = SitesWatcher(sites.path, 0, taken)
    watcher.start()
    try:
        await asyncio.sleep(0.05)
        assert taken.directories == []
        watcher.request_reload()
        await asyncio.wait_for(taken.changed.wait(), 5)
    finally:
        await watcher.stop()
    assert watcher.reloads == 1


async def test_stop_without_start_is_safe(sites: SitesFile) -> None:
    await SitesWatcher(sites.path, 1, Taken()).stop()
