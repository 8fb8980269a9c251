"""The dashboard page in a real browser (headless Chromium from Debian, driven by
Playwright) against the real pipeline: simulated printers' records on the real Kafka,
`printfleet worker` making fleet state, utilisation and alerts of them, the sink writing
to the real ClickHouse, and the dashboard server reading both.

One pipeline for the module (it takes a while to start); each test looks at one view.
Screenshots of every view, 1280x800, land in .build/screenshots/."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest
import pytest_asyncio
from browser_harness import (
    SCREENSHOTS, VIEWPORT, LiveHeartbeats, Users, dashboard_running, launch, make_users, screenshot, sign_in,
    sink_running, site_history,
)
from playwright.async_api import Browser, BrowserContext, Page, async_playwright, expect
from stream_harness import Worker, produce
from stream_scenarios import HOUR_MS, Printer

from dashboard.server import DashboardServer
from deploy.settings import StackSettings
from schemas.samples import sample_record

pytestmark = pytest.mark.asyncio(loop_scope="module")

PRINTERS_A = 6
PRINTERS_B = 2
# The worker's offline detection, sped up: 5 s heartbeats, checked every second. 3 missed
# = 15 s: more than the history's 10 s between heartbeats, and room for a busy machine to
# be late with the live ones (every 2 s) without a printer blinking offline.
WORKER_ENV = {
    "PRINTFLEET_WORKER_START_AT": "latest",
    "PRINTFLEET_WORKER_HEARTBEAT_INTERVAL_S": "5",
    "PRINTFLEET_WORKER_TICK_EVERY_S": "1",
    "PRINTFLEET_WORKER_ALLOWED_LATENESS_S": "1",
}
WAIT_MS = 90_000


@dataclass
class Pipeline:
    site_a: str
    site_b: str
    bootstrap: str
    devices_a: list[str]
    devices_b: list[str]
    names_a: dict[str, str]  # device_id -> printer name, from the printers' identities
    codes_a: dict[str, set[str]]  # device_id -> the event codes its history holds
    server: DashboardServer
    users: Users
    browser: Browser
    live: LiveHeartbeats


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def pipeline(stack: StackSettings, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Pipeline]:
    tmp = tmp_path_factory.mktemp("dashboard-browser")
    unique = uuid.uuid4().hex[:8]
    site_a, site_b = f"site-a{unique}", f"site-b{unique}"
    history_a = site_history(site_a, PRINTERS_A, hours=2.5, seed=11)
    worn = devices(history_a)[3]
    history_a = with_worn_cleaning_roll(history_a, Printer(site_a, worn, 0))
    history_b = site_history(site_b, PRINTERS_B, hours=0.2, seed=12)
    users = make_users(tmp, {"alice": site_a, "bob": site_b})
    database = f"dash_{unique}"
    worker = Worker(stack.kafka_bootstrap, f"dash-{unique}", tmp, **WORKER_ENV).start()
    live = LiveHeartbeats.of(stack.kafka_bootstrap, [*history_a, *history_b])
    try:
        await worker.ready()
        await produce(stack.kafka_bootstrap, [*history_a, *history_b, *advisories(history_a, history_b)])
        await live.start()
        async with sink_running(stack, unique, database), dashboard_running(stack, database, users) as server:
            async with async_playwright() as playwright:
                browser = await launch(playwright)
                try:
                    yield Pipeline(
                        site_a, site_b, stack.kafka_bootstrap, devices(history_a), devices(history_b),
                        {r["device_id"]: r["printer_name"] for k, r in history_a if k == "device_identity"},
                        {d: {r["code"] for k, r in history_a if k == "system_event" and r["device_id"] == d}
                         for d in devices(history_a)},
                        server, users, browser, live,
                    )
                finally:
                    await browser.close()
        live.check()
        worker.check()
    finally:
        await live.stop()
        await worker.stop()


def devices(history: list[tuple[str, dict[str, Any]]]) -> list[str]:
    return sorted({r["device_id"] for k, r in history if k == "heartbeat"})


def advisories(*histories: list[tuple[str, dict[str, Any]]]) -> list[tuple[str, dict[str, Any]]]:
    """An update advisory for the second printer of each site, as the worker writes one
    when a signed release is newer than the printer's firmware (that decision has its own
    tests, and the demo's test runs it end to end): here the page's part is under test."""
    chosen = [next(r for k, r in history if k == "device_identity" and r["device_id"] == devices(history)[1])
              for history in histories]
    return [("update_advisory", sample_record("update_advisory") | {
        "record_id": str(uuid.uuid4()), "site_id": identity["site_id"], "device_id": identity["device_id"],
        "event_time": int(time.time() * 1000), "advisory_id": f"adv-{identity['device_id']}",
        "model_number": identity["model_number"], "installed_version": "5.3.1", "available_version": "5.4.0",
        "summary": "Faster warm-up"}) for identity in chosen]


def with_worn_cleaning_roll(history: list[tuple[str, dict[str, Any]]], printer: Printer) -> list[tuple[str, dict[str, Any]]]:
    """`history`, but the printer's cleaning roll wears 1.5 % an hour over the last day, up
    to 90 %: the worker predicts its end of life in about 7 hours."""
    now = int(time.time() * 1000)
    readings = [printer.record("cleaning_roll", now - (23 - h) * HOUR_MS, usage_pct=55.5 + 1.5 * h,
                               status="OK" if h < 17 else "LOW", part_number="3ED60A") for h in range(24)]
    kept = [(k, r) for k, r in history if not (k == "cleaning_roll" and r["device_id"] == printer.device_id)]
    return sorted([*kept, *readings], key=lambda kr: int(kr[1]["event_time"]))


async def signed_in(p: Pipeline, user: str) -> tuple[BrowserContext, Page]:
    context = await p.browser.new_context(viewport=VIEWPORT)
    page = await context.new_page()
    await sign_in(page, p.server.url, p.users.tokens[user])
    return context, page


async def mark_page(page: Page) -> None:
    """A mark that a reload would wipe: the page must update itself."""
    await page.evaluate("window.__printfleetNoReload = true")


async def not_reloaded(page: Page) -> bool:
    return bool(await page.evaluate("window.__printfleetNoReload === true"))


async def until_api(page: Page, path: str, done: Callable[[Any], bool]) -> Any:
    """Ask the API from the signed-in page until `done(answer)`: for what the sink writes
    to ClickHouse a moment after the worker published it."""
    deadline = time.monotonic() + WAIT_MS / 1000
    while True:
        answer = await page.evaluate("path => fetch(path).then(r => r.json())", path)
        if done(answer):
            return answer
        assert time.monotonic() < deadline, f"{path} never answered what the test waits for: {answer}"
        await page.wait_for_timeout(1000)


async def test_fleet_view_lists_the_simulated_printers(pipeline: Pipeline, capsys: pytest.CaptureFixture[str]) -> None:
    p = pipeline
    context, page = await signed_in(p, "alice")
    try:
        rows = page.get_by_test_id("printer-row")
        await expect(rows).to_have_count(PRINTERS_A, timeout=WAIT_MS)
        assert sorted([await r.get_attribute("data-device-id") or "" for r in await rows.all()]) == p.devices_a
        for device_id, name in p.names_a.items():
            await expect(page.locator(f'[data-device-id="{device_id}"] [data-testid=printer-link]')).to_have_text(name)
        await expect(page.get_by_test_id("live-status")).to_have_attribute("data-state", "live")
        await expect(page.get_by_test_id("site-name")).to_have_text(p.site_a)
        await expect(page.get_by_test_id("stat-printers")).to_contain_text(str(PRINTERS_A))
        await screenshot(page, "fleet")
        with capsys.disabled():
            print(f"\ndashboard screenshots (1280x800): {SCREENSHOTS}")
    finally:
        await context.close()


async def test_a_printer_that_goes_dark_turns_offline_without_a_reload(pipeline: Pipeline) -> None:
    p = pipeline
    context, page = await signed_in(p, "alice")
    dark = p.devices_a[0]
    try:
        row = page.locator(f'[data-testid=printer-row][data-device-id="{dark}"]')
        await expect(row).to_have_attribute("data-offline", "false", timeout=WAIT_MS)
        await mark_page(page)
        p.live.dark.add(dark)
        await expect(row).to_have_attribute("data-offline", "true", timeout=WAIT_MS)
        await expect(row.get_by_test_id("offline-badge")).to_have_text("OFFLINE")
        assert await not_reloaded(page), "the page reloaded to show the change"
        # Only the one that went dark: the others still send heartbeats.
        await expect(page.locator("[data-testid=printer-row][data-offline=true]")).to_have_count(1)
        await expect(page.get_by_test_id("stat-offline")).to_contain_text("1")
        await screenshot(page, "fleet-offline")
    finally:
        await context.close()


async def test_the_page_reconnects_and_reads_the_fleet_again(pipeline: Pipeline) -> None:
    p = pipeline
    context, page = await signed_in(p, "alice")
    try:
        live = page.get_by_test_id("live-status")
        await expect(live).to_have_attribute("data-opens", "1", timeout=WAIT_MS)
        await expect(page.get_by_test_id("printer-row")).to_have_count(PRINTERS_A, timeout=WAIT_MS)
        await mark_page(page)
        async with page.expect_request(lambda r: "/api/fleet?" in r.url, timeout=WAIT_MS) as fleet_read:
            # The server ends the page's stream, as it does when the page fell behind.
            p.server.hub.close_all()
            await expect(live).to_have_attribute("data-opens", "2", timeout=WAIT_MS)
        assert (await fleet_read.value).url.endswith(f"site={p.site_a}")
        await expect(live).to_have_attribute("data-state", "live")
        await expect(page.get_by_test_id("printer-row")).to_have_count(PRINTERS_A)
        assert await not_reloaded(page), "the page reloaded instead of reconnecting"
    finally:
        await context.close()


async def test_an_alert_raised_by_the_worker_appears(pipeline: Pipeline) -> None:
    p = pipeline
    context, page = await signed_in(p, "alice")
    code = "0057-0001-0053"  # a printhead failure; a printer whose history has none, so the alert is new
    device = next(d for d in p.devices_a[1:] if code not in p.codes_a[d])
    try:
        await page.get_by_test_id("nav-alerts").click()
        await expect(page.get_by_test_id("alert-list")).not_to_contain_text("Loading", timeout=WAIT_MS)
        await expect(page.get_by_test_id("live-status")).to_have_attribute("data-state", "live", timeout=WAIT_MS)
        card = page.locator(f'[data-testid=alert-row][data-dedup-key="system-event:{device}:{code}"]')
        await expect(card).to_have_count(0)
        await mark_page(page)
        # The printer reports a printhead failure: the worker's system-event rule raises an alert.
        printer = Printer(p.site_a, device, int(time.time() * 1000))
        await produce(p.bootstrap, [printer.event(printer.t0, code, "ERROR", "printhead", 1)])
        await expect(card).to_have_count(1, timeout=WAIT_MS)
        await expect(card.get_by_test_id("alert-severity")).to_have_text("ERROR")
        await expect(card.get_by_test_id("alert-action")).to_contain_text("What to do:")
        await expect(page.get_by_test_id("alert-toast")).to_be_visible()
        assert await not_reloaded(page), "the page reloaded to show the alert"
        await screenshot(page, "alerts")
        # Filters: the printer's own list has it, a severity above it hides it.
        await page.get_by_test_id("filter-printer").select_option(device)
        await expect(card).to_have_count(1, timeout=WAIT_MS)
        await page.get_by_test_id("filter-severity").select_option("CRITICAL")
        await expect(card).to_have_count(0, timeout=WAIT_MS)
        # Recent alerts come from ClickHouse: once the sink stored this one, the list has it.
        key = f"system-event:{device}:{code}"
        await until_api(page, f"/api/alerts?site={p.site_a}&state=recent&printer={device}",
                        lambda answer: any(a["dedup_key"] == key for a in answer["alerts"]))
        await page.get_by_test_id("filter-severity").select_option("")
        await page.get_by_test_id("alerts-state").select_option("recent")
        recent = page.locator(f'[data-testid=alert-list][data-state=recent] [data-dedup-key="{key}"]')
        await expect(recent).to_have_count(1, timeout=WAIT_MS)
        # The printer page: its consumables with their remaining life, and the alert.
        await until_api(page, f"/api/printers/{device}?site={p.site_a}", lambda answer: bool(answer["consumables"]))
        await page.goto(f"{p.server.url}#/printer/{device}?site={p.site_a}")
        await expect(page.get_by_test_id("consumable-row").first).to_be_visible(timeout=WAIT_MS)
        await expect(page.locator('[data-testid=consumable-row][data-kind="printhead"] [data-testid=consumable-remaining]').first
                     ).to_contain_text("%")
        await expect(page.locator(f'[data-testid=printer-alerts] [data-dedup-key="system-event:{device}:{code}"]')).to_have_count(1)
        await screenshot(page, "printer-alert")
    finally:
        await context.close()


async def test_a_consumable_shows_its_predicted_end_of_life(pipeline: Pipeline) -> None:
    p = pipeline
    context, page = await signed_in(p, "alice")
    worn = p.devices_a[3]
    try:
        # Consumables come from ClickHouse, the prediction from the worker's alert: both there.
        await until_api(page, f"/api/printers/{worn}?site={p.site_a}", lambda answer: any(
            c["item"] == "cleaning-roll" and c["predicted_end_of_life_at"] for c in answer["consumables"]))
        await page.locator(f'[data-device-id="{worn}"] [data-testid=printer-link]').click()
        roll = page.locator('[data-testid=consumable-row][data-item="cleaning-roll"]')
        await expect(roll.get_by_test_id("consumable-remaining")).to_contain_text("%", timeout=WAIT_MS)
        await expect(roll.get_by_test_id("consumable-eol")).to_contain_text("confidence", timeout=WAIT_MS)
        await expect(page.locator(f'[data-testid=printer-alerts] [data-dedup-key="predicted-wear:{worn}:cleaning-roll"]')
                     ).to_have_count(1)
        await screenshot(page, "printer")
    finally:
        await context.close()


async def test_an_update_advisory_shows_on_the_printer_page_and_with_the_alerts(pipeline: Pipeline) -> None:
    p = pipeline
    context, page = await signed_in(p, "alice")
    advised = p.devices_a[1]
    try:
        await until_api(page, f"/api/advisories?site={p.site_a}", lambda answer: len(answer["advisories"]) == 1)
        await page.locator(f'[data-device-id="{advised}"] [data-testid=printer-link]').click()
        row = page.locator(f'[data-testid=advisories] [data-testid=advisory-row][data-device-id="{advised}"]')
        await expect(row.get_by_test_id("advisory-version")).to_contain_text("5.4.0", timeout=WAIT_MS)
        await page.goto(f"{p.server.url}#/alerts?site={p.site_a}")
        rows = page.locator("[data-testid=advisory-list] [data-testid=advisory-row]")
        await expect(rows).to_have_count(1, timeout=WAIT_MS)
        assert await rows.get_attribute("data-device-id") == advised  # site B's advisory is not there
        await rows.scroll_into_view_if_needed()
        await screenshot(page, "alerts-advisories")
    finally:
        await context.close()


async def test_a_utilisation_chart_has_data_points(pipeline: Pipeline) -> None:
    p = pipeline
    context, page = await signed_in(p, "alice")
    try:
        # The worker publishes an hour when it closes and the sink stores it: ask until it is there.
        answer = await until_api(page, f"/api/utilisation?site={p.site_a}&grain=hour", lambda answer: bool(answer["rows"]))
        rows = answer["rows"]
        await page.get_by_test_id("nav-utilisation").click()
        chart = page.get_by_test_id("chart-state-time")
        await expect(chart.locator("canvas")).to_have_count(1, timeout=WAIT_MS)
        assert int(await chart.get_attribute("data-points") or 0) == len(rows) > 0
        utilisation = page.get_by_test_id("chart-utilisation")
        assert int(await utilisation.get_attribute("data-points") or 0) > 0
        await expect(page.get_by_test_id("util-buckets")).to_contain_text(str(len(rows)))
        await screenshot(page, "utilisation")
        # One printer's hours, then the site's days: new charts, with points.
        device = p.devices_a[2]
        await page.get_by_test_id("util-printer").select_option(device)
        shown = page.locator(f'[data-testid=charts][data-grain=hour][data-printer="{device}"] [data-testid=chart-state-time]')
        await expect(shown.locator("canvas")).to_have_count(1, timeout=WAIT_MS)
        assert int(await shown.get_attribute("data-points") or 0) > 0
        await expect(page.get_by_test_id("view").locator("h1")).to_contain_text(p.names_a[device])
        await page.get_by_test_id("util-printer").select_option("")
        await page.get_by_test_id("util-grain").select_option("day")
        shown = page.locator('[data-testid=charts][data-grain=day][data-printer=""] [data-testid=chart-state-time]')
        await expect(shown.locator("canvas")).to_have_count(1, timeout=WAIT_MS)
        assert int(await shown.get_attribute("data-points") or 0) >= 1
    finally:
        await context.close()


async def test_a_site_token_cannot_see_another_site(pipeline: Pipeline) -> None:
    p = pipeline
    # The operator sees both sites: the other site exists, so what follows is a refusal.
    ops, ops_page = await signed_in(p, "ops")
    try:
        picker = ops_page.get_by_test_id("site-picker")
        await expect(picker.locator(f'option[value="{p.site_b}"]')).to_have_count(1, timeout=WAIT_MS)
        await picker.select_option(p.site_b)
        await expect(ops_page.get_by_test_id("printer-row")).to_have_count(PRINTERS_B, timeout=WAIT_MS)
    finally:
        await ops.close()

    context = await p.browser.new_context(viewport=VIEWPORT)
    page = await context.new_page()
    try:
        # Without a session the page asks for a token, and says when one is not accepted.
        await page.goto(p.server.url)
        await expect(page.get_by_test_id("login-view")).to_be_visible()
        await screenshot(page, "sign-in")
        await page.get_by_test_id("login-token").fill("not-a-token")
        await page.get_by_test_id("login-submit").click()
        await expect(page.get_by_test_id("login-error")).to_be_visible()
        await expect(page.get_by_test_id("printer-row")).to_have_count(0)
        await sign_in(page, p.server.url, p.users.tokens["alice"])
        await expect(page.get_by_test_id("printer-row")).to_have_count(PRINTERS_A, timeout=WAIT_MS)
        await expect(page.get_by_test_id("site-picker")).to_be_hidden()
        await page.goto(f"{p.server.url}#/fleet?site={p.site_b}")
        await page.reload()
        await expect(page.get_by_test_id("view-error")).to_contain_text("403", timeout=WAIT_MS)
        await expect(page.get_by_test_id("printer-row")).to_have_count(0)
        await screenshot(page, "other-site-refused")
        # Every API the page uses refuses the other site, the live stream included.
        statuses = await page.evaluate(
            """site => Promise.all(["/api/fleet", "/api/events", "/api/alerts", "/api/utilisation",
                                    "/api/alerts?state=recent"].map(path =>
                fetch(path + (path.includes("?") ? "&" : "?") + "site=" + site).then(r => r.status)))""", p.site_b)
        assert statuses == [403] * 5, statuses
        # A printer of the other site asked for under one's own site is not found.
        other = await page.evaluate("([d, site]) => fetch(`/api/printers/${d}?site=${site}`).then(r => r.status)",
                                    [p.devices_b[0], p.site_a])
        assert other == 404, other
        # And nothing of the other site's printers reached this browser.
        html = await page.content()
        for device_id in p.devices_b:
            assert device_id not in html
    finally:
        await context.close()
