"""The demo's OPC UA set-up, made with no manual step: one new password in the server's
users file and the mixed site's password file, both private; exactly the mixed sites'
collector certificates trusted; the site's `[[printer]]` table naming only its machines;
and the closing lines. Files only (no server)."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from printfleet import demo_opcua
from printfleet.demo_fleet import DemoPrinter, DemoSite
from printfleet.demo_pipeline import DemoSetupError
from producers.collector.drivers.opcua import client_certificate
from producers.simulator.opcua_users import parse_users

A, B, C = DemoPrinter("p001", "d-1", "M1"), DemoPrinter("p002", "d-2", "M1"), DemoPrinter("p003", "d-3", "M2")
MIXED = DemoSite(1, "s-1", (A, B), opcua_ids=frozenset({"p002"}))
PLAIN = DemoSite(2, "s-2", (C,))


def _state_dirs(home: Path) -> dict[str, Path]:
    return {s.site_id: home / f"site-{s.number}" / "collector" for s in (MIXED, PLAIN)}


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_prepare_makes_one_private_password_and_trusts_only_the_mixed_sites_collector(tmp_path: Path) -> None:
    stale = tmp_path / "opcua" / "trusted" / "s-old.der"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"a site of an earlier run")
    made = await demo_opcua.prepare(tmp_path, [MIXED, PLAIN], _state_dirs(tmp_path))
    assert made.state_dir == tmp_path / "opcua" and set(made.password_files) == {"s-1"}
    users = parse_users(made.users_file.read_text(), "users")
    password = made.password_files["s-1"].read_text().strip()
    assert users == {demo_opcua.USER: password} and len(password) >= 20
    assert _mode(made.users_file) == 0o600 and _mode(made.password_files["s-1"]) == 0o600
    # The certificate the collector finds again in its state folder is the one trusted.
    pair = await client_certificate(_state_dirs(tmp_path)["s-1"], "s-1")
    assert {p.name: p.read_bytes() for p in (tmp_path / "opcua" / "trusted").iterdir()} == {"s-1.der": pair.der()}


async def test_each_run_has_a_new_password(tmp_path: Path) -> None:
    first = await demo_opcua.prepare(tmp_path, [MIXED], _state_dirs(tmp_path))
    old = first.password_files["s-1"].read_text()
    again = await demo_opcua.prepare(tmp_path, [MIXED], _state_dirs(tmp_path))
    assert again.password_files["s-1"].read_text() != old
    assert again.users_file.read_text() == f"{demo_opcua.USER}:{again.password_files['s-1'].read_text()}"


def test_the_sites_table_pins_the_server_and_names_only_its_own_machines(tmp_path: Path) -> None:
    made = demo_opcua.DemoOpcUa(tmp_path, tmp_path / "users.txt", {"s-1": tmp_path / "pw"})
    table = demo_opcua.printer_table(MIXED, made, "opc.tcp://127.0.0.1:4840/printfleet/", tmp_path / "server-cert.der")
    assert (table.url, table.server_certificate, table.user, table.password_file, table.machines) == (
        "opc.tcp://127.0.0.1:4840/printfleet/", tmp_path / "server-cert.der", "collector", tmp_path / "pw", ("p002",))


def test_the_lines_say_what_came_by_opcua_and_what_did_not_arrive() -> None:
    assert demo_opcua.start_line(MIXED, "opc.tcp://h:1/") == "1 of them by OPC UA (p002 at opc.tcp://h:1/)"
    printers = [
        {"driver": "printer-api", "reachable": True, "spooled_by_kind": {"heartbeat": 50}, "unmappable": 0},
        {"driver": "opcua", "reachable": True, "spooled_by_kind": {"heartbeat": 7, "system_event": 3, "job": 3},
         "unmappable": 2},
    ]
    assert demo_opcua.spooled_line(MIXED, printers).startswith(
        "s-1: 1 printers by OPC UA (1 answering), spooled 7 heartbeat, 3 job, 3 system_event; 2 kept aside")
    printers[1]["unmappable"] = 0
    assert demo_opcua.spooled_line(MIXED, printers).endswith("3 system_event")
    assert demo_opcua.stored_line(MIXED, {"d-2": (7, 3)}).endswith("ClickHouse (this run and earlier ones): "
                                                                     "p002 7 heartbeats, 3 events")
    assert demo_opcua.stored_line(MIXED, {"d-1": (9, 9)}).endswith(": p002 NOTHING stored")


def test_a_printer_api_site_has_no_opcua_table_and_a_mixed_one_without_a_server_is_a_clear_error() -> None:
    assert demo_opcua.site_tables(PLAIN, None, None) == ()
    with pytest.raises(DemoSetupError, match="s-1 has OPC UA printers but the simulator serves none"):
        demo_opcua.site_tables(MIXED, None, None)
