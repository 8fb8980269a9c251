"""Helpers of the dashboard's browser tests: Debian's Chromium driven by Playwright, the
real `printfleet dashboard` server and sink running in the test's process, a simulated
site's history, and printers that keep sending heartbeats until one goes dark.

The browser is /usr/bin/chromium (deploy/bootstrap.sh installs Debian's package);
Playwright never downloads one. Screenshots go to .build/screenshots/ at 1280x800."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer
from playwright.async_api import Browser, Page, Playwright, ViewportSize
from sink_harness import drop_database

from common.kafka.topics import topic_for
from dashboard.access import add_user
from dashboard.server import DashboardServer
from dashboard.settings import DashboardSettings
from deploy.settings import StackSettings
from producers.simulator.replay import new_fleet, replay
from schemas import SchemaRegistry
from sinks.clickhouse import ClickHouseSink, SinkSettings
from sinks.connection import ClickHouseSettings

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / ".build" / "screenshots"
CHROMIUM = Path("/usr/bin/chromium")
# Flags that work on these machines: no sandbox (root, no user namespaces), no GPU, and
# nothing that would reach out to the internet on its own.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
VIEWPORT: ViewportSize = {"width": 1280, "height": 800}
REGISTRY = SchemaRegistry.load_default()
# What the dashboard reads from ClickHouse: utilisation, recent alerts, benchmarks, consumables.
SINK_KINDS = "utilisation,alert,benchmark,printhead_system,cleaning_roll,agent_system,build_unit,update_advisory"


async def launch(playwright: Playwright) -> Browser:
    """Headless Chromium from Debian's package; a clear failure when it is missing."""
    assert CHROMIUM.exists(), f"{CHROMIUM} is missing: `bash deploy/bootstrap.sh` installs Debian's chromium"
    # Playwright gives every launch a new, empty profile (user-data-dir) of its own.
    return await playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)


async def screenshot(page: Page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    await page.screenshot(path=str(path))
    return path


async def sign_in(page: Page, url: str, token: str) -> None:
    """Sign in through the page's own form, as a person would."""
    await page.goto(url)
    await page.get_by_test_id("login-token").fill(token)
    await page.get_by_test_id("login-submit").click()
    await page.get_by_test_id("user").wait_for(state="visible")


def site_history(site_id: str, printers: int, hours: float, seed: int) -> list[tuple[str, dict[str, Any]]]:
    """What a simulated site sent in the last `hours`, every kind, ending now: closed
    utilisation hours for the charts, consumables for the printer page, names from the
    printers' identities."""
    now = int(time.time() * 1000)
    duration = int(hours * 3_600_000)
    return replay(new_fleet(printers, seed, now - duration), REGISTRY, duration_ms=duration, site_id=site_id,
                  heartbeat_s=10).records


@dataclass
class LiveHeartbeats:
    """Keeps the printers of a site alive: every `every_s` a heartbeat per printer, as its
    newest one but stamped now. A printer in `dark` sends nothing more."""

    bootstrap: str
    last: dict[str, dict[str, Any]]  # device_id -> its newest heartbeat
    every_s: float = 2.0
    dark: set[str] = field(default_factory=set)
    _producer: AIOKafkaProducer | None = None
    _task: asyncio.Task[None] | None = None

    @classmethod
    def of(cls, bootstrap: str, history: Iterable[tuple[str, dict[str, Any]]]) -> LiveHeartbeats:
        last: dict[str, dict[str, Any]] = {}
        for kind, record in history:
            if kind == "heartbeat":
                last[record["device_id"]] = record
        return cls(bootstrap, last)

    async def start(self) -> None:
        self._producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, acks="all", enable_idempotence=True, linger_ms=5)
        await self._producer.start()
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        assert self._producer is not None
        topic = topic_for("heartbeat")
        while True:
            now = int(time.time() * 1000)
            sent = []
            for device_id, record in self.last.items():
                if device_id in self.dark:
                    continue
                beat = {**record, "event_time": now, "record_id": str(uuid.uuid4())}
                sent.append(await self._producer.send(topic, REGISTRY.encode("heartbeat", beat), key=device_id.encode()))
            await asyncio.gather(*sent)
            await asyncio.sleep(self.every_s)

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        producer, self._producer = self._producer, None
        if producer is not None:
            await producer.stop()

    def check(self) -> None:
        """Raise what stopped the heartbeats, if they stopped."""
        if self._task is not None and self._task.done():
            self._task.result()


@contextlib.asynccontextmanager
async def sink_running(stack: StackSettings, unique: str, database: str) -> AsyncIterator[ClickHouseSink]:
    """`printfleet sink`'s ClickHouseSink on the shared topics, into `database`."""
    settings = SinkSettings(
        kafka=stack.kafka(), clickhouse=ClickHouseSettings(stack.clickhouse_url, database=database, timeout_s=10.0),
        group_id=f"dash-sink-{unique}", kinds=SINK_KINDS, batch_max_age_s=0.3, retry_initial_s=0.2, retry_max_s=1.0,
    )
    stop = asyncio.Event()
    try:
        async with ClickHouseSink(settings, REGISTRY) as sink:
            task = asyncio.create_task(sink.run(stop))
            try:
                yield sink
            finally:
                stop.set()
                await task
    finally:
        await drop_database(settings)


@dataclass(frozen=True)
class Users:
    """Tokens of the users file: a user of each site, and an operator."""

    file: Path
    tokens: dict[str, str]


def make_users(folder: Path, sites: dict[str, str]) -> Users:
    """`sites`: user name -> the one site they see; plus "ops", an operator. Through the
    function `printfleet dashboard users add` calls."""
    file = folder / "dashboard-users.toml"
    tokens = {name: add_user(file, name, [site], operator=False) for name, site in sites.items()}
    tokens["ops"] = add_user(file, "ops", [], operator=True)
    return Users(file, tokens)


@contextlib.asynccontextmanager
async def dashboard_running(stack: StackSettings, database: str, users: Users) -> AsyncIterator[DashboardServer]:
    """The dashboard server (what `printfleet dashboard` runs) on a free port, reading the
    real topics and the sink's database; offline re-evaluated every second."""
    settings = DashboardSettings(
        kafka=stack.kafka(), clickhouse=ClickHouseSettings(stack.clickhouse_url, database=database, timeout_s=10.0),
        port=0, users_file=users.file, offline_check_s=1.0,
    )
    async with DashboardServer(settings) as server:
        yield server
