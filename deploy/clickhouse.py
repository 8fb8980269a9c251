"""The local ClickHouse server, served by chdb on 127.0.0.1 (HTTP and native TCP).

Project code reaches it only through clickhouse-connect and a URL, so a production
ClickHouse server behaves the same for everything above `deploy/`.

Its configuration, beside the ports:
- users (users.xml): `default` (no password, loopback only, every right) and `reader`
  (password `reader`, a read-only profile, SELECT on every database) to try and test
  `printfleet query` with SELECT rights only. chdb reads users only from users.xml: like
  clickhouse-local it has no writable access storage, so `CREATE USER` fails with
  ACCESS_STORAGE_FOR_INSERTION_NOT_FOUND even with `<user_directories>` configured;
- a cluster `printfleet_local` of one shard with one replica, this server itself (over
  its native TCP port), and the macros `{shard}` and `{replica}`, so Distributed tables
  can be tried. There is no Keeper: ON CLUSTER statements and Replicated tables fail here
  (docs/sink.md, "Cluster mode").
"""

from __future__ import annotations

import asyncio
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from deploy.errors import StartFailed
from deploy.process import ServerProcess, check_port_free, is_alive, log_tail
from deploy.settings import StackSettings

LOCAL_CLUSTER = "printfleet_local"
READER_USER = "reader"
READER_PASSWORD = "reader"

_CONFIG = """<clickhouse>
  <listen_host>127.0.0.1</listen_host>
  <http_port>{http_port}</http_port>
  <tcp_port>{tcp_port}</tcp_port>
  <users_config>users.xml</users_config>
  <remote_servers>
    <{cluster}>
      <shard>
        <internal_replication>true</internal_replication>
        <replica><host>127.0.0.1</host><port>{tcp_port}</port></replica>
      </shard>
    </{cluster}>
  </remote_servers>
  <macros><shard>01</shard><replica>local</replica></macros>
</clickhouse>
"""

_USERS = """<clickhouse>
  <profiles>
    <default/>
    <readonly><readonly>1</readonly></readonly>
  </profiles>
  <users>
    <default>
      <password></password>
      <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
      <profile>default</profile>
      <quota>default</quota>
      <access_management>1</access_management>
    </default>
    <{reader}>
      <password>{reader_password}</password>
      <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
      <profile>readonly</profile>
      <quota>default</quota>
      <grants><query>GRANT SELECT ON *.*</query></grants>
    </{reader}>
  </users>
  <quotas><default/></quotas>
</clickhouse>
"""


@dataclass(frozen=True)
class ClickHouseServer:
    settings: StackSettings

    @property
    def home(self) -> Path:
        return self.settings.state_dir / "clickhouse"

    @property
    def data_dir(self) -> Path:
        return self.home / "data"

    @property
    def log_file(self) -> Path:
        return self.settings.logs / "clickhouse" / "clickhouse.out"

    @property
    def process(self) -> ServerProcess:
        return ServerProcess("clickhouse", self.home / "clickhouse.pid", marker="deploy.clickhouse_serve")

    def check_ports(self) -> None:
        check_port_free(self.settings.clickhouse_http_port, "ClickHouse HTTP")
        check_port_free(self.settings.clickhouse_tcp_port, "ClickHouse TCP")

    def launch(self) -> int:
        """Write config.xml into the run folder and start the server; returns its PID."""
        run_dir = self.home / "run"
        run_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "config.xml").write_text(
            _CONFIG.format(
                http_port=self.settings.clickhouse_http_port,
                tcp_port=self.settings.clickhouse_tcp_port,
                cluster=LOCAL_CLUSTER,
            )
        )
        (run_dir / "users.xml").write_text(_USERS.format(reader=READER_USER, reader_password=READER_PASSWORD))
        argv = [sys.executable, "-m", "deploy.clickhouse_serve", str(self.data_dir)]
        return self.process.launch(argv, cwd=run_dir, log_file=self.log_file)

    async def wait_ready(self, pid: int, timeout_s: float) -> float:
        """Wait until `/ping` answers `Ok.`; returns seconds waited."""
        started = time.monotonic()
        while True:
            # is_alive, not process.pid(): until exec the child's command line is still ours.
            if not is_alive(pid):
                raise StartFailed(
                    f"ClickHouse exited during start-up; last lines of {self.log_file}:\n"
                    f"{log_tail(self.log_file)}"
                )
            if await self.answers():
                return time.monotonic() - started
            if time.monotonic() - started > timeout_s:
                raise StartFailed(
                    f"ClickHouse did not answer {self.settings.clickhouse_url}/ping within "
                    f"{timeout_s:.0f} s; see {self.log_file}"
                )
            await asyncio.sleep(0.1)

    async def answers(self) -> bool:
        return await asyncio.to_thread(self._http, "/ping") == "Ok."

    def version(self) -> str | None:
        """The version the running server reports, asked the way project code asks."""
        import clickhouse_connect  # slow import, needed only here

        try:
            client = clickhouse_connect.get_client(
                host="127.0.0.1", port=self.settings.clickhouse_http_port, connect_timeout=2
            )
        except Exception:
            return None
        try:
            return str(client.server_version)
        finally:
            client.close()

    def _http(self, path: str) -> str | None:
        try:
            with urllib.request.urlopen(self.settings.clickhouse_url + path, timeout=2) as resp:
                body: bytes = resp.read()
                return body.decode().strip()
        except (OSError, urllib.error.URLError):
            return None
