"""The pipeline's real commands as child processes: a collector per site, the gateway
(HTTPS, every site enrolled), the stream worker and the sink, each with its ops listener
on a port chosen here so the sampler knows where /metrics is. Process handling is
`benchmarks.chaos.Component` (start, SIGTERM then SIGKILL, exit code)."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import socket
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from benchmarks import isolation
from benchmarks.chaos import Component
from benchmarks.ingest.collector import COLLECTOR_ENV
from benchmarks.ingest.site import BenchError
from benchmarks.soak.simulator import SimSite
from common.kafka.settings import KafkaSettings
from common.tls import ensure_site_ca, issue_server_certificate
from deploy.settings import StackSettings
from producers.collector.config import Cadence, CollectorSettings, render
from producers.gateway.sites import SiteDirectory

STATUS_EVERY_S = 60  # status lines in the logs; the figures come from /metrics


@dataclass
class Pipeline:
    """The components by name (`collector-<site>`, `gateway`, `worker`, `sink`) and the
    URL of each one's ops listener."""

    components: dict[str, Component]
    ops: dict[str, str]
    collector_dirs: dict[str, Path]  # component name -> the collector's state folder

    @property
    def collectors(self) -> list[str]:
        return [name for name in self.components if name.startswith("collector-")]

    def pids(self) -> dict[str, int]:
        return {name: c.proc.pid for name, c in self.components.items() if c.proc is not None and c.alive()}

    async def start(self, names: list[str] | None = None) -> None:
        for name in names or list(self.components):
            await self.components[name].start()

    async def stop(self, names: list[str] | None = None) -> None:
        """SIGTERM (then SIGKILL after 60 s); a stopped component is down on purpose."""
        names = names or list(self.components)
        for n in names:
            self.components[n].down = True
        await asyncio.gather(*(self.components[n].stop() for n in names))

    def check(self) -> None:
        """Raise BenchError when a component ended on its own."""
        for name, part in self.components.items():
            if part.proc is not None and not part.alive() and not part.down:
                raise BenchError(f"{name} exited with {part.proc.returncode}; its log: {part.log}")

    async def ready(self, timeout_s: float) -> None:
        """Wait until every component's /readyz answers 200. Raises BenchError."""
        deadline = time.monotonic() + timeout_s
        waiting = set(self.ops)
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
            while waiting:
                self.check()
                for name in sorted(waiting):
                    try:
                        async with session.get(self.ops[name] + "/readyz") as resp:
                            if resp.status == 200:
                                waiting.discard(name)
                    except (aiohttp.ClientError, asyncio.TimeoutError):
                        pass
                if waiting and time.monotonic() > deadline:
                    raise BenchError(f"not ready after {timeout_s:.0f} s: {', '.join(sorted(waiting))}")
                await asyncio.sleep(1.0)


def free_port() -> int:
    """A loopback port nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def build(stack: StackSettings, kafka: KafkaSettings, database: str, home: Path, sites: dict[str, SimSite],
          app_id: str, history: bool = False) -> Pipeline:
    """Write the certificates, the sites file and each site.toml; nothing starts yet.

    Without `history`, each collector starts with its cursors at every printer's newest
    event, job snapshot and log, as at a site whose collector has been running: it reads
    what happens from now on, not the hours of history each simulated printer holds (a
    new site's first read, which `printfleet bench ingest` measures). The file is the
    collector's own `cursors.json` (device -> endpoint -> last seq read)."""
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("PRINTFLEET_")},
           **isolation.environment(kafka), "PRINTFLEET_STATE_DIR": str(stack.state_dir)}
    cloud = home / "cloud-ca"
    cert = issue_server_certificate(ensure_site_ca(cloud, "printfleet soak cloud"), cloud)
    tokens = {site_id: secrets.token_urlsafe(24) for site_id in sites}
    sites_file = home / "sites.toml"
    sites_file.write_text(SiteDirectory.render([(s, tokens[s], list(site.devices)) for s, site in sites.items()]))
    logs = home / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    gateway_port = free_port()
    components: dict[str, Component] = {}
    ops: dict[str, str] = {}
    dirs: dict[str, Path] = {}
    for site_id, site in sites.items():
        name = f"collector-{site_id}"
        port = free_port()
        settings = CollectorSettings(
            site_id=site_id, site_secret=secrets.token_urlsafe(32), state_dir=home / site_id / "collector",
            gateway_url=f"https://127.0.0.1:{gateway_port}", gateway_token=tokens[site_id],
            gateway_ca_file=cloud / "ca.pem", printer_urls=site.base_urls, printer_ca_file=site.ca_file,
            status_port=port, status_every_s=STATUS_EVERY_S, cadence=Cadence(),
        )
        config = home / site_id / "site.toml"
        config.write_text(render(settings))
        if not history:
            settings.state_dir.mkdir(parents=True, exist_ok=True)
            (settings.state_dir / "cursors.json").write_text(json.dumps(site.newest, sort_keys=True))
        components[name] = Component(name, ["collector", "--config", str(config)], {**env, **COLLECTOR_ENV},
                                     logs / f"{name}.log")
        ops[name] = f"http://127.0.0.1:{port}"
        dirs[name] = settings.state_dir
    ports = {name: free_port() for name in ("gateway", "worker", "sink")}
    components["gateway"] = Component("gateway", [
        "gateway", "--sites-file", str(sites_file), "--port", str(gateway_port), "--tls-cert", str(cert.cert_file),
        "--tls-key", str(cert.key_file), "--instance-id", app_id, "--status-every-s", str(STATUS_EVERY_S),
        "--ops-port", str(ports["gateway"])], env, logs / "gateway.log")
    components["worker"] = Component("worker", [
        "worker", "--app-id", app_id, "--data-dir", str(home / "worker"), "--ops-port", str(ports["worker"]),
        "--heartbeat-interval-s", f"{Cadence().heartbeat_s:g}"],
        {**env, "PRINTFLEET_WORKER_STATUS_EVERY_S": str(STATUS_EVERY_S)}, logs / "worker.log")
    components["sink"] = Component("sink", [
        "sink", "--clickhouse-database", database, "--clickhouse-url", stack.clickhouse_url,
        "--status-every-s", str(STATUS_EVERY_S), "--ops-port", str(ports["sink"])], env, logs / "sink.log")
    ops.update({name: f"http://127.0.0.1:{port}" for name, port in ports.items()})
    return Pipeline(components, ops, dirs)
