"""The OPC UA half of `printfleet demo`'s mixed site: the secure set-up the simulator's
OPC UA server and the site's collector need (docs/opcua.md "Security"), made under the
demo's own folder with no manual step, each site's `[[printer]] driver = "opcua"` table,
and the closing lines on what came by OPC UA.

    prepare(home, sites, state_dirs)  before the simulator starts: it reads users and trust once
    site_tables(site, opcua, server)    when a site's collector settings are written
    closing_lines(...)                  after the sink has stored everything

Called only by `printfleet/cmd_demo.py`. asyncua is imported only when a site has OPC UA
printers: it takes time and memory a printer API demo has no use for.
"""

from __future__ import annotations

import secrets
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from common.errors import PrintfleetError
from printfleet import cmd_query
from printfleet.demo_fleet import DemoSite
from printfleet.demo_pipeline import DemoSetupError
from producers.collector.printer_tables import OpcUaPrinter
from sinks.connection import ClickHouseSettings

if TYPE_CHECKING:
    from producers.simulator.opcua_server import OpcUaServer

USER: Final = "collector"


@dataclass(frozen=True)
class DemoOpcUa:
    """What `prepare` made: the simulator's OPC UA state folder and users file, and each
    OPC UA site's password file (the password is new each run)."""

    state_dir: Path  # the simulator's --opcua-dir: server key pair, trusted/, event history
    users_file: Path
    password_files: Mapping[str, Path]  # site id -> its collector's password file


async def prepare(home: Path, sites: Sequence[DemoSite], state_dirs: Mapping[str, Path]) -> DemoOpcUa:
    """A new password in the server's users file and in each OPC UA site's password file
    (both mode 0600), and the trust folder holding exactly the certificates of those
    sites' collectors (made once in their state folders, `state_dirs` by site id, where
    the collector finds them again). The secure channel needs its client certificate
    trusted even with a user name as identity. Raises DemoSetupError."""
    state_dir = home / "opcua"
    try:
        return await _prepare(state_dir, sites, state_dirs)
    except (OSError, PrintfleetError) as exc:
        raise DemoSetupError(f"OPC UA set-up in {state_dir}: {exc}") from None


async def _prepare(state_dir: Path, sites: Sequence[DemoSite], state_dirs: Mapping[str, Path]) -> DemoOpcUa:
    from producers.collector.drivers.opcua import client_certificate

    trusted = state_dir / "trusted"
    trusted.mkdir(parents=True, exist_ok=True)
    for old in trusted.glob("*.der"):  # a site of an earlier run (another --sites) is no longer trusted
        old.unlink()
    password = secrets.token_urlsafe(18)
    users_file = _private(state_dir / "users.txt", f"{USER}:{password}\n")
    password_files: dict[str, Path] = {}
    for site in sites:
        if not site.opcua_ids:
            continue
        pair = await client_certificate(state_dirs[site.site_id], site.site_id)
        (trusted / f"{site.site_id}.der").write_bytes(pair.der())
        password_files[site.site_id] = _private(state_dirs[site.site_id].parent / "opcua-password", password + "\n")
    return DemoOpcUa(state_dir, users_file, password_files)


def _private(path: Path, text: str) -> Path:
    """`text` in `path`, readable by its owner only from the start."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.chmod(0o600)  # touch keeps an older file's mode
    path.write_text(text, encoding="utf-8")
    return path


def printer_table(site: DemoSite, opcua: DemoOpcUa, url: str, server_certificate: Path) -> OpcUaPrinter:
    """The site's `[[printer]]` table: the simulator's OPC UA server, its certificate pinned,
    the demo's user, and only this site's machines (the server holds every OPC UA printer)."""
    return OpcUaPrinter(url=url, server_certificate=server_certificate, user=USER,
                        password_file=opcua.password_files[site.site_id],
                        machines=tuple(p.printer_id for p in site.opcua_printers))


def start_line(site: DemoSite, url: str) -> str:
    """`2 of them by OPC UA (p019 p020 at opc.tcp://...)` for the site's start line."""
    return f"{len(site.opcua_ids)} of them by OPC UA ({' '.join(sorted(site.opcua_ids))} at {url})"


def site_tables(site: DemoSite, opcua: DemoOpcUa | None, server: OpcUaServer | None) -> tuple[OpcUaPrinter, ...]:
    """The site's `[[printer]]` tables once the simulator serves OPC UA: none for a site
    of printer API printers only. Raises DemoSetupError for a site with OPC UA printers
    when nothing was prepared or the simulator serves none."""
    if not site.opcua_ids:
        return ()
    if opcua is None or server is None or server.server_certificate is None:
        raise DemoSetupError(f"{site.site_id} has OPC UA printers but the simulator serves none")
    return (printer_table(site, opcua, server.url, server.server_certificate.cert_file),)


def setup_line(opcua: DemoOpcUa | None, server: OpcUaServer | None) -> str | None:
    """Where the demo put the OPC UA set-up (None without one): the collector's log asks
    for its certificate to be trusted, and this says it is."""
    if opcua is None or server is None or server.server_certificate is None:
        return None
    return (f"  OPC UA: server certificate {server.server_certificate.cert_file} (pinned by the collector), users "
            f"{opcua.users_file}, collector certificates trusted in {opcua.state_dir / 'trusted'}")


def spooled_line(site: DemoSite, printers: Sequence[Mapping[str, Any]]) -> str:
    """What the site's collector spooled from its OPC UA machines, from its status page's
    `printers` entries (those with driver "opcua")."""
    machines = [p for p in printers if p["driver"] == "opcua"]
    answering = sum(1 for p in machines if p["reachable"])

    def total(kind: str) -> int:
        return sum(int(p["spooled_by_kind"].get(kind, 0)) for p in machines)

    kinds = sorted({kind for p in machines for kind in p["spooled_by_kind"]}, key=lambda k: (-total(k), k))
    line = (f"{site.site_id}: {len(machines)} printers by OPC UA ({answering} answering), spooled "
            + (", ".join(f"{total(kind)} {kind}" for kind in kinds) or "nothing"))
    unmappable = sum(int(p["unmappable"]) for p in machines)
    if unmappable:
        line += f"; {unmappable} kept aside at the site as unmappable (docs/collector.md, \"OPC UA\")"
    return line


async def stored_per_device(clickhouse: ClickHouseSettings, device_ids: Sequence[str]) -> dict[str, tuple[int, int]]:
    """Heartbeats and system events ClickHouse holds per device id (every run's), for the
    devices given; a device with none is missing. Raises SinkError."""
    _, rows = await cmd_query.execute(
        clickhouse,
        "SELECT device_id, sum(beats), sum(events) FROM ("
        " SELECT device_id, count() AS beats, 0 AS events FROM heartbeat WHERE has({devices:Array(String)}, device_id)"
        " GROUP BY device_id UNION ALL"
        " SELECT device_id, 0, count() FROM system_event WHERE has({devices:Array(String)}, device_id)"
        " GROUP BY device_id) GROUP BY device_id",
        {"devices": list(device_ids)},
    )
    return {str(device): (int(beats), int(events)) for device, beats, events in rows}


async def print_stored(clickhouse: ClickHouseSettings, sites: Sequence[DemoSite]) -> None:
    """A line per mixed site: its OPC UA printers' heartbeats and events in ClickHouse
    (a line saying so when ClickHouse cannot answer)."""
    mixed = [s for s in sites if s.opcua_ids]
    if not mixed:
        return
    try:
        stored = await stored_per_device(clickhouse, [p.device_id for s in mixed for p in s.opcua_printers])
    except PrintfleetError as exc:
        print(f"OPC UA printers in ClickHouse: unavailable ({exc})", file=sys.stderr)
        return
    for site in mixed:
        print(stored_line(site, stored), flush=True)


def stored_line(site: DemoSite, stored: Mapping[str, tuple[int, int]]) -> str:
    """`demo-site-1's OPC UA printers in ClickHouse (...): p019 120 heartbeats, 14 events; ...`"""
    parts = []
    for p in site.opcua_printers:
        beats, events = stored.get(p.device_id, (0, 0))
        parts.append(f"{p.printer_id} {beats} heartbeats, {events} events" if beats or events
                     else f"{p.printer_id} NOTHING stored")
    return f"{site.site_id}'s OPC UA printers in ClickHouse (this run and earlier ones): " + "; ".join(parts)
