"""The operations endpoints every long-running component serves: metrics and health.

    ops = OpsServer(OpsSettings(port=18445), "gateway")
    ops.check("kafka", kafka_check)                  # readiness: one async check per dependency
    ops.collect(lambda: [...])                       # metric families read at each scrape
    async with ops:
        ...                                          # ops.url is where it listens

`GET /metrics`  Prometheus text format, from this server's own `CollectorRegistry`
                (never the library's global one: two components in one process, or one
                test after another, do not see each other's metrics).
`GET /livez`    200 `{"live": true}` while the event loop runs and answers.
`GET /readyz`   200 `{"ready": true, "checks": {"kafka": "ok", ...}}`, or 503 with each
                failing dependency's reason in place of "ok".

A readiness check is an async callable that returns None when its dependency is fine,
or a short reason (e.g. "unreachable: nothing listens on ...") when it is not; an
exception or a timeout counts as a reason too. Each result is kept for `cache_s`, so a
probe or a scrape every second does not open a connection to Kafka every second.
`before_scrape` hooks update gauges that need I/O (consumer lag) just before a scrape.

The listener is separate from any public port: metrics name topics, printers and
error texts that the internet has no business reading. Port 0 picks a free port (tests);
a negative port turns the server off.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.metrics_core import Metric

from common.errors import PrintfleetError

log = logging.getLogger(__name__)

Check = Callable[[], Awaitable[str | None]]
Refresh = Callable[[], Awaitable[None]]
OK = "ok"

# Port defaults, one per component, so that several run side by side on one host.
GATEWAY_OPS_PORT = 18445
WORKER_OPS_PORT = 18446
SINK_OPS_PORT = 18447
WEBHOOK_OPS_PORT = 18450  # printfleet alerts forward
COLLECTOR_OPS_PORT = 8080  # the collector's status page (status_port) is its ops port


class OpsListenError(PrintfleetError):
    """The ops listener cannot bind its address (in use, or not this host's)."""


@dataclass(frozen=True)
class OpsSettings:
    host: str = "127.0.0.1"
    port: int = -1  # negative: off; 0: any free port
    cache_s: float = 1.5  # how long a readiness result is reused
    check_timeout_s: float = 3.0  # a check slower than this is a failure

    @property
    def enabled(self) -> bool:
        return self.port >= 0


@dataclass
class _Cached:
    reason: str | None = None
    at: float = float("-inf")
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class _Families:
    """A prometheus collector that asks a function for its families at each scrape: the
    components' own counters are read where they are kept, never booked twice."""

    def __init__(self, families: Callable[[], Iterable[Metric]]) -> None:
        self._families = families

    def collect(self) -> Iterable[Metric]:
        return list(self._families())


class OpsServer:
    """`/metrics`, `/livez` and `/readyz` on their own listener; `async with` starts and
    stops it. `stop()` is idempotent and safe without `start()`; with a negative port
    neither does anything."""

    def __init__(self, settings: OpsSettings, component: str) -> None:
        self.settings = settings
        self.component = component
        self.registry = CollectorRegistry(auto_describe=True)
        self.url = ""  # http://host:port once listening
        self._checks: dict[str, Check] = {}
        self._cached: dict[str, _Cached] = {}
        self._refresh: list[Refresh] = []
        self._extra_routes: list[tuple[str, Callable[[web.Request], Awaitable[web.StreamResponse]]]] = []
        self._runner: web.AppRunner | None = None

    def check(self, name: str, check: Check) -> None:
        """Register the readiness check of dependency `name` (before `start()`)."""
        self._checks[name] = check
        self._cached[name] = _Cached()

    def collect(self, families: Callable[[], Iterable[Metric]]) -> None:
        """Register a function whose metric families are read at every scrape."""
        self.registry.register(_Families(families))

    def before_scrape(self, refresh: Refresh) -> None:
        """Register an async hook run before every scrape (gauges that need I/O)."""
        self._refresh.append(refresh)

    def route(self, path: str, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> None:
        """Serve one more GET path on this listener (the collector's /status)."""
        self._extra_routes.append((path, handler))

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/metrics", self.handle_metrics)
        app.router.add_get("/livez", self.handle_live)
        app.router.add_get("/readyz", self.handle_ready)
        for path, handler in self._extra_routes:
            app.router.add_get(path, handler)
        return app

    async def __aenter__(self) -> OpsServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        if not self.settings.enabled or self._runner is not None:
            return
        runner = web.AppRunner(self.app(), access_log=None)
        await runner.setup()
        try:
            await web.TCPSite(runner, self.settings.host, self.settings.port).start()
        except OSError as exc:
            await runner.cleanup()
            raise OpsListenError(
                f"the {self.component}'s metrics and health listener cannot bind "
                f"{self.settings.host}:{self.settings.port} ({exc.strerror or exc}): choose another "
                f"--ops-port (0: any free port, -1: none) or --ops-host"
            ) from None
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        host, port = runner.addresses[0][:2]
        shown = f"[{host}]" if ":" in host else host
        self.url = f"http://{shown}:{port}"
        log.info("event=ops_listening component=%s url=%s", self.component, self.url)

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def readiness(self) -> tuple[bool, dict[str, str]]:
        """Every check's result (cached for `cache_s`), run concurrently."""
        names = list(self._checks)
        reasons = await asyncio.gather(*(self._result(n) for n in names))
        checks = {n: OK if r is None else r for n, r in zip(names, reasons)}
        return all(r is None for r in reasons), checks

    async def _result(self, name: str) -> str | None:
        cached = self._cached[name]
        async with cached.lock:  # one probe at a time per dependency, whatever the scrape rate
            if time.monotonic() - cached.at >= self.settings.cache_s:
                cached.reason = await self._run(name)
                cached.at = time.monotonic()
            return cached.reason

    async def _run(self, name: str) -> str | None:
        try:
            return await asyncio.wait_for(self._checks[name](), self.settings.check_timeout_s)
        except asyncio.TimeoutError:
            return f"no answer within {self.settings.check_timeout_s:g}s"
        except Exception as exc:  # a check that fails is a dependency not ready, with its reason
            log.warning("event=readiness_check_failed check=%s error=%r", name, exc)
            return f"check failed: {exc!r}"

    async def handle_metrics(self, request: web.Request) -> web.Response:
        for refresh in self._refresh:
            await refresh()
        body = generate_latest(self.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def handle_live(self, request: web.Request) -> web.Response:
        return web.json_response({"live": True})

    async def handle_ready(self, request: web.Request) -> web.Response:
        ready, checks = await self.readiness()
        return web.json_response({"ready": ready, "checks": checks}, status=200 if ready else 503)


# The units a gauge or histogram name may end with (Prometheus: base units, in the name).
UNITS = ("_seconds", "_bytes", "_records", "_partitions", "_printers", "_ratio")
# Labels that would make a series per record: never allowed.
PER_RECORD_LABELS = frozenset({"record_id", "seq", "offset", "batch", "upload", "message"})


def naming_problems(registry: CollectorRegistry, component: str) -> list[str]:
    """What in `registry` breaks Prometheus' naming conventions (empty: nothing): the
    `printfleet_<component>_` prefix, counters ending in `_total`, a unit at the end of
    gauges and histograms, no per-record labels. Reads the families as a scrape would."""
    problems = []
    prefix = f"printfleet_{component}_"
    for family in registry.collect():
        name = family.name
        if not name.startswith(prefix):
            problems.append(f"{name}: not prefixed {prefix}")
        if family.type == "counter":
            if not any(s.name == f"{name}_total" for s in family.samples) and family.samples:
                problems.append(f"{name}: a counter without _total")
        elif family.type in ("gauge", "histogram") and not name.endswith(UNITS):
            problems.append(f"{name}: a {family.type} without a unit ({', '.join(UNITS)})")
        labels = {label for s in family.samples for label in s.labels} - {"le"}
        if labels & PER_RECORD_LABELS:
            problems.append(f"{name}: per-record labels {sorted(labels & PER_RECORD_LABELS)}")
    return problems
