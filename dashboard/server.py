"""The dashboard's HTTP server: the page's files, sign-in, and the JSON API of
docs/dashboard.md. Every `/api/` request is authenticated (`access`); every answer is
about one site the user may see, so no response carries another site's data.

    async with DashboardServer(settings) as server:   # starts the feed, then listens
        print(server.url)
        await server.wait()                           # until the feed fails or stop()
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any, Final

from aiohttp import web
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from common.alert_view import AlertFilter
from common.ops import OpsServer, OpsSettings
from common.tls import server_context
from dashboard.access import User, UsersFile
from dashboard.errors import UsersFileError
from dashboard.feed import Feed, Hub, wall_ms
from dashboard.fleet import Fleet, Record
from dashboard.settings import DashboardSettings
from dashboard.store import Store
from sinks.errors import ClickHouseRejected, ClickHouseUnavailable

log = logging.getLogger(__name__)

STATIC_DIR: Final = Path(__file__).resolve().parent / "static"
COOKIE: Final = "printfleet_session"
USER_KEY: Final = web.RequestKey("user", User)
MAX_DAYS: Final = {"hour": 31, "day": 366}
DEFAULT_DAYS: Final = {"hour": 2, "day": 30}
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def bearer(request: web.Request) -> str:
    """The token of the request: the Authorization header's, else the session cookie's."""
    header = request.headers.get("Authorization", "")
    if header:
        scheme, _, token = header.partition(" ")
        return token.strip() if scheme.lower() == "bearer" else ""
    return request.cookies.get(COOKIE, "")


def _int(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query.get(name, "")
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise web.HTTPBadRequest(text=f'{{"error": "{name} must be a whole number"}}',
                                 content_type="application/json") from None
    if not low <= value <= high:
        raise web.HTTPBadRequest(text=f'{{"error": "{name} must be from {low} to {high}"}}',
                                 content_type="application/json")
    return value


class DashboardServer:
    """The dashboard: feed, store, HTTP listener and ops listener. `stop()` is idempotent
    and safe without `start()`."""

    def __init__(self, settings: DashboardSettings) -> None:
        self.settings = settings
        self.users = UsersFile(settings.users_file)
        self.fleet = Fleet(round(settings.offline_after_s * 1000))
        self.hub = Hub(settings.sse_queue_max)
        self.store = Store(settings.clickhouse)
        self.feed = Feed(settings.kafka, self.fleet, self.hub, offline_check_s=settings.offline_check_s,
                         seed=self.store.open_alerts)
        self.url = ""
        self.streams_opened = 0
        self.streams_closed = 0
        self.ops = OpsServer(OpsSettings(settings.ops_host, settings.ops_port), "dashboard")
        self.ops.check("feed", self._feed_check)
        self.ops.collect(self._families)  # reads the counters above at once (auto_describe)
        self._runner: web.AppRunner | None = None

    async def __aenter__(self) -> DashboardServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        """Start the feed (raises `KafkaUnavailable` or `TopicMismatch`), the ops
        listener and the HTTP listener (raises OSError when the port is taken)."""
        if self._runner is not None:
            return
        try:
            await self.feed.start()
            await self.ops.start()
            # SSE streams never end on their own: without a short timeout a stop would
            # wait for each page to go away.
            runner = web.AppRunner(self.app(), access_log=None, shutdown_timeout=2.0)
            await runner.setup()
            try:
                tls = server_context(self.settings.tls_cert, self.settings.tls_key)
                await web.TCPSite(runner, self.settings.host, self.settings.port, ssl_context=tls).start()
            except BaseException:
                await runner.cleanup()
                raise
        except BaseException:
            await self.feed.stop()
            await self.ops.stop()
            raise
        self._runner = runner
        host, port = runner.addresses[0][:2]
        scheme = "https" if self.settings.tls_cert else "http"
        self.url = f"{scheme}://{f'[{host}]' if ':' in host else host}:{port}/"
        log.info("event=dashboard_listening url=%s", self.url)

    async def wait(self) -> None:
        """Until the feed stops; raises FeedFailed when it failed."""
        await self.feed.wait()

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        self.hub.close_all()
        if runner is not None:
            await runner.cleanup()
        await self.feed.stop()
        await self.store.close()
        await self.ops.stop()

    # -- the application ------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._authenticate])
        app.router.add_get("/", self.handle_index)
        app.router.add_get("/static/{path:.+}", self.handle_static)
        app.router.add_post("/login", self.handle_login)
        app.router.add_post("/logout", self.handle_logout)
        app.router.add_get("/api/me", self.handle_me)
        app.router.add_get("/api/fleet", self.handle_fleet)
        app.router.add_get("/api/events", self.handle_events)
        app.router.add_get("/api/alerts", self.handle_alerts)
        app.router.add_get("/api/utilisation", self.handle_utilisation)
        app.router.add_get("/api/advisories", self.handle_advisories)
        app.router.add_get("/api/printers/{device_id}", self.handle_printer)
        return app

    @web.middleware
    async def _authenticate(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if not request.path.startswith("/api/"):
            return await handler(request)
        user = self._user(bearer(request))
        if user is None:
            return error(401, "sign in: a valid token (Authorization: Bearer <token>, or POST /login) is needed")
        request[USER_KEY] = user
        return await handler(request)

    def _user(self, token: str) -> User | None:
        try:
            self.users.reload()
        except UsersFileError as exc:  # keep the users of the last good version
            log.error("event=dashboard_users_file_broken error=%s", exc)
        return self.users.users.authenticate(token)

    def _site(self, request: web.Request) -> str:
        """The `site` parameter, which the user must be allowed to see (else 400/403)."""
        site = request.query.get("site", "")
        if not site:
            raise web.HTTPBadRequest(text='{"error": "give the site: ?site=<site id>"}', content_type="application/json")
        if not request[USER_KEY].may_see(site):
            raise web.HTTPForbidden(text='{"error": "this site is not yours to see"}', content_type="application/json")
        return site

    # -- page and sign-in -------------------------------------------------------------

    async def handle_index(self, request: web.Request) -> web.StreamResponse:
        return self._file(STATIC_DIR / "index.html")

    async def handle_static(self, request: web.Request) -> web.StreamResponse:
        wanted = (STATIC_DIR / request.match_info["path"]).resolve()
        if not wanted.is_relative_to(STATIC_DIR):
            return error(404, "no such file")
        return self._file(wanted)

    def _file(self, path: Path) -> web.StreamResponse:
        if not path.is_file():
            return error(404, "no such file")
        return web.FileResponse(path, headers={"Cache-Control": "no-cache"})

    async def handle_login(self, request: web.Request) -> web.StreamResponse:
        field = (await request.post()).get("token")
        token = field.strip() if isinstance(field, str) else ""
        user = self._user(token)
        if user is None:
            log.warning("event=dashboard_login_failed remote=%s", request.remote)
            raise web.HTTPSeeOther("/?login=failed")
        response = web.HTTPSeeOther("/")
        # The token itself is the session: HttpOnly keeps it from the page's scripts,
        # SameSite=Strict from other sites' forms; no server-side session to keep.
        # Secure under TLS: the browser then never sends it over plain HTTP.
        response.set_cookie(COOKIE, token, httponly=True, samesite="Strict", path="/",
                            secure=self.settings.tls_cert is not None)
        log.info("event=dashboard_login user=%s", user.name)
        raise response

    async def handle_logout(self, request: web.Request) -> web.StreamResponse:
        response = web.HTTPSeeOther("/")
        response.del_cookie(COOKIE, path="/")
        raise response

    # -- the API ----------------------------------------------------------------------

    async def handle_me(self, request: web.Request) -> web.StreamResponse:
        user = request[USER_KEY]
        return web.json_response({"name": user.name, "operator": user.operator,
                                  "sites": user.visible(self.fleet.sites)})

    async def handle_fleet(self, request: web.Request) -> web.StreamResponse:
        site = self._site(request)
        return web.json_response({"site_id": site, "printers": self.fleet.printers(site, wall_ms())})

    async def handle_events(self, request: web.Request) -> web.StreamResponse:
        site = self._site(request)
        response = web.StreamResponse(headers={
            "Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        sub = self.hub.subscribe(site)  # before the snapshot: no change falls between the two
        self.streams_opened += 1
        try:
            await response.prepare(request)
            for printer in self.fleet.printers(site, wall_ms()):
                await response.write(_event("printer", printer))
            while True:
                try:
                    event, data = await asyncio.wait_for(sub.queue.get(), self.settings.keepalive_s)
                except asyncio.TimeoutError:
                    await response.write(b": keepalive\n\n")
                    continue
                if sub.dropped:
                    break
                await response.write(f"event: {event}\ndata: {data}\n\n".encode())
        except ConnectionResetError:
            pass  # the page went away
        finally:
            self.hub.unsubscribe(sub)
            self.streams_closed += 1
        return response

    async def handle_alerts(self, request: web.Request) -> web.StreamResponse:
        site = self._site(request)
        state = request.query.get("state", "open")
        if state not in ("open", "recent"):
            return error(400, "state must be open or recent")
        try:
            wanted = AlertFilter(printer=request.query.get("printer", ""), rule=request.query.get("rule", ""),
                                 min_severity=request.query.get("severity", ""))
        except ValueError as exc:
            return error(400, str(exc))
        if state == "open":
            return web.json_response({"alerts": self.fleet.open_alerts(site, wanted)})
        days = _int(request, "days", 7, 1, 90)
        return await self._from_store(lambda: self._recent(site, wanted, days))

    async def _recent(self, site: str, wanted: AlertFilter, days: int) -> Record:
        return {"alerts": await self.store.recent_alerts(site, wanted, days, self.settings.recent_alerts_max)}

    async def handle_utilisation(self, request: web.Request) -> web.StreamResponse:
        site = self._site(request)
        grain = request.query.get("grain", "hour")
        if grain not in MAX_DAYS:
            return error(400, "grain must be hour or day")
        printer = request.query.get("printer", "")
        days = _int(request, "days", DEFAULT_DAYS[grain], 1, MAX_DAYS[grain])

        async def read() -> Record:
            rows = await self.store.utilisation(site, grain, printer, days)
            benchmark = await self.store.benchmark(site, printer, max(days, 1))
            return {"site_id": site, "grain": grain, "printer": printer or None, "rows": rows, "benchmark": benchmark}

        return await self._from_store(read)

    async def handle_advisories(self, request: web.Request) -> web.StreamResponse:
        site = self._site(request)
        printer = request.query.get("printer", "")

        async def read() -> Record:
            return {"advisories": await self.store.advisories(site, printer, self.settings.recent_alerts_max)}

        return await self._from_store(read)

    async def handle_printer(self, request: web.Request) -> web.StreamResponse:
        site = self._site(request)
        device_id = request.match_info["device_id"]
        printer = self.fleet.printer(site, device_id, wall_ms())
        if printer is None:
            return error(404, f"site {site} has no printer {device_id}")
        alerts = self.fleet.open_alerts(site, AlertFilter(printer=device_id))

        async def read() -> Record:
            rows = await self.store.consumables(site, device_id, self.settings.printhead_life_h)
            advisories = await self.store.advisories(site, device_id, self.settings.recent_alerts_max)
            return {"printer": printer, "consumables": consumables(rows, alerts, device_id), "alerts": alerts,
                    "advisories": advisories}

        return await self._from_store(read)

    async def _from_store(self, read: Callable[[], Awaitable[Record]]) -> web.StreamResponse:
        try:
            return web.json_response(await read())
        except ClickHouseUnavailable as exc:
            log.warning("event=dashboard_clickhouse_unavailable error=%s", exc)
            return error(503, f"ClickHouse is unavailable: {exc}")
        except ClickHouseRejected as exc:
            log.error("event=dashboard_clickhouse_rejected error=%s", exc)
            return error(500, f"ClickHouse refused the query: {exc}")

    # -- ops --------------------------------------------------------------------------

    async def _feed_check(self) -> str | None:
        if self.feed.failure is not None:
            return f"failed: {self.feed.failure}"
        return None if self.feed.ready else "still reading fleet.state and alerts from the beginning"

    def _families(self) -> Iterable[Metric]:
        printers = GaugeMetricFamily("printfleet_dashboard_printers", "Printers in the fleet view.")
        printers.add_metric([], self.fleet.printer_count)
        records = CounterMetricFamily("printfleet_dashboard_feed_records", "Records read by the feed.", labels=["kind"])
        for kind, n in sorted(self.feed.records.items()):
            records.add_metric([kind], n)
        bad = CounterMetricFamily("printfleet_dashboard_feed_undecodable", "Messages the feed could not show.")
        bad.add_metric([], self.feed.undecodable)
        opened = CounterMetricFamily("printfleet_dashboard_sse_opened", "Event streams opened.")
        opened.add_metric([], self.streams_opened)
        closed = CounterMetricFamily("printfleet_dashboard_sse_closed", "Event streams closed.")
        closed.add_metric([], self.streams_closed)
        dropped = CounterMetricFamily("printfleet_dashboard_sse_dropped",
                                      "Event streams closed because the page did not keep up (queue full).")
        dropped.add_metric([], self.hub.dropped_total)
        return [printers, records, bad, opened, closed, dropped]


def _event(event: str, data: Any) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'), ensure_ascii=False)}\n\n".encode()


_AGENT_DESCRIPTION: Final = "{} agent cartridge"


def consumables(rows: list[Record], open_alerts: list[Record], device_id: str) -> list[Record]:
    """The printer's consumables (ClickHouse rows of DASHBOARD_CONSUMABLES) with their
    description and the predicted end of life of the worker's open `predicted-wear`
    alert for each item (dedup key `predicted-wear:<device>:<item>`), if one is open."""
    predicted = {str(a["dedup_key"]): a for a in open_alerts if a.get("rule_id") == "predicted-wear"}
    out = []
    for row in rows:
        item, kind = str(row["item"]), str(row["kind"])
        if kind == "printhead":
            description = f"Printhead in slot {item.removeprefix('printhead-')}"
        elif kind == "agent":
            description = _AGENT_DESCRIPTION.format(item.removeprefix("agent-").capitalize())
        else:
            description = {"cleaning-roll": "Printhead cleaning roll", "build-unit": "Build unit"}.get(kind, kind)
        alert = predicted.get(f"predicted-wear:{device_id}:{item}")
        out.append({**row, "description": description,
                    "predicted_end_of_life_at": alert.get("predicted_failure_at") if alert else None,
                    "prediction_confidence": alert.get("confidence") if alert else None})
    return out
