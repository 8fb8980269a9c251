"""`printfleet dashboard` on the real stack: the fleet and open alerts from Kafka, recent
alerts, utilisation and consumables from ClickHouse (stored by the real sink), the live
event stream, and access: a site's token never sees another site's data.

Every test of the module shares one dashboard over topics of its own (a unique prefix)
and a database of its own; records are produced as the stream worker writes them, and
the ClickHouse rows are stored by the sink from those topics."""

from __future__ import annotations

import asyncio
import copy
import json
import ssl
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from dashboard.access import add_user
from dashboard.server import DashboardServer
from dashboard.settings import DashboardSettings
from common.tls import ensure_site_ca, issue_server_certificate
from deploy.settings import StackSettings
from schemas import SchemaRegistry
from schemas.samples import sample_record
from sinks.clickhouse import ClickHouseSink, SinkSettings
import sink_harness as h

HOUR, MIN = 3_600_000, 60_000
SINK_KINDS = ("utilisation,printhead_system,agent_system,cleaning_roll,build_unit,alert,device_identity,benchmark,"
              "update_advisory")
REGISTRY = SchemaRegistry.load_default()


@dataclass(frozen=True)
class World:
    sink: SinkSettings
    server: DashboardServer
    url: str
    site: str  # the site user's
    other: str  # a site they may not see
    now: int
    tokens: dict[str, str]
    ids: dict[str, list[str]]  # site -> its printers' ids and alert ids, to look for in bodies

    def auth(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}


def _rec(kind: str, site: str, device: str, at: int, **fields: Any) -> dict[str, Any]:
    record = copy.deepcopy(sample_record(kind))
    record.update(site_id=site, device_id=device, record_id=str(uuid.uuid4()), event_time=at, **fields)
    return record


def _state(site: str, device: str, at: int, *, heard: int | None = None, name: str = "", **fields: Any) -> dict[str, Any]:
    return _rec("fleet_state", site, device, at, last_heartbeat_at=at if heard is None else heard,
                printer_name=name or device, **fields)


def _alert(site: str, device: str, at: int, alert_id: str, lifecycle: str = "RAISED", **fields: Any) -> dict[str, Any]:
    values: dict[str, Any] = dict(alert_id=alert_id, lifecycle=lifecycle, raised_at=at, cleared_at=None,
                                  dedup_key=f"{fields.get('rule_id', 'printhead-wear')}:{device}:{alert_id}")
    values.update(fields)
    return _rec("alert", site, device, at, **values)


def _data(site: str, other: str, u: str, now: int) -> tuple[dict[str, list[dict[str, Any]]], dict[str, list[str]]]:
    a1, a2, a3, b1 = f"pa1-{u}", f"pa2-{u}", f"pa3-{u}", f"pb1-{u}"
    hour = now - now % HOUR - HOUR  # the last whole hour
    zero: dict[str, Any] = dict(warming_s=0.0, cooling_s=0.0, error_s=0.0, unreachable_s=0.0, packing_density_pct=10.0)
    fleet_state = [
        _state(site, a1, now - 2 * MIN, name="A-1", status="POWERED_ON", activity="PRINTING"),
        _state(site, a2, now - 2 * HOUR, name="A-2", status="POWERED_ON", activity="IDLE"),  # silent for 2 h
        _state(site, a3, now - MIN, heard=now - 10 * MIN, name="A-3", status="UNREACHABLE", activity="UNKNOWN"),
        _state(other, b1, now - MIN, name="B-1"),
    ]
    alerts = [
        _alert(site, a1, now - 30 * MIN, f"al-warn-{u}", severity="WARNING", rule_id="system-event"),
        _alert(site, a1, now - 20 * MIN, f"al-crit-{u}", severity="CRITICAL", rule_id="printer-offline"),
        _alert(site, a2, now - 50 * MIN, f"al-gone-{u}", severity="ERROR", rule_id="system-event"),
        _alert(site, a2, now - 40 * MIN, f"al-gone-{u}", "CLEARED", severity="ERROR", rule_id="system-event",
               raised_at=now - 50 * MIN, cleared_at=now - 40 * MIN),
        _alert(site, a1, now - 10 * MIN, f"al-wear-{u}", severity="WARNING", rule_id="predicted-wear",
               dedup_key=f"predicted-wear:{a1}:cleaning-roll", predicted_failure_at=now + 3 * 24 * HOUR, confidence=0.7,
               recommended_parts=[{"part_number": "3ED60A", "description": "Cleaning roll", "quantity": 1}]),
        _alert(other, b1, now - 10 * MIN, f"al-other-{u}", severity="CRITICAL", rule_id="system-event"),
    ]
    utilisation = [
        _rec("utilisation", site, a1, now - 5 * MIN, window_start=hour, window_end=hour + HOUR, printing_s=1800.0,
             idle_s=1800.0, jobs_completed=1, layers_printed=100, material_consumed_kg=1.0, **zero),
        # the same window again, later and corrected: only this one counts
        _rec("utilisation", site, a1, now - 4 * MIN, window_start=hour, window_end=hour + HOUR, printing_s=2700.0,
             idle_s=900.0, jobs_completed=2, layers_printed=150, material_consumed_kg=1.5, **zero),
        _rec("utilisation", site, a2, now - 4 * MIN, window_start=hour, window_end=hour + HOUR, printing_s=900.0,
             idle_s=2700.0, jobs_completed=0, layers_printed=50, material_consumed_kg=0.5, **zero),
        _rec("utilisation", other, b1, now - 4 * MIN, window_start=hour, window_end=hour + HOUR, printing_s=3600.0,
             idle_s=0.0, jobs_completed=9, layers_printed=999, material_consumed_kg=9.0, **zero),
    ]
    day = now - now % (24 * HOUR)
    benchmark = [copy.deepcopy(sample_record("benchmark")) | dict(
        record_id=str(uuid.uuid4()), event_time=now - 5 * MIN, cohort_id=f"M-{u}|{day}", model_number=f"M-{u}",
        window_start=day - 24 * HOUR, window_end=day, site_count=7, utilisation_p25_pct=20.0,
        utilisation_p50_pct=50.0, utilisation_p75_pct=70.0)]
    heads = sample_record("printhead_system")["printheads"][0]
    data = {
        "fleet_state": fleet_state, "alert": alerts, "utilisation": utilisation, "benchmark": benchmark,
        "device_identity": [_rec("device_identity", site, a1, now - HOUR, model_number=f"M-{u}")],
        "cleaning_roll": [_rec("cleaning_roll", site, a1, now - 20 * MIN, usage_pct=70.0, status="OK"),
                          _rec("cleaning_roll", site, a1, now - 10 * MIN, usage_pct=75.0, status="OK"),
                          _rec("cleaning_roll", other, b1, now - 10 * MIN, usage_pct=10.0, status="OK")],
        "printhead_system": [_rec("printhead_system", site, a1, now - 10 * MIN,
                                  printheads=[heads | {"slot": 2, "usage_time_s": 700 * 3600, "status": "OK"}])],
        "agent_system": [_rec("agent_system", site, a1, now - 10 * MIN)],
        "build_unit": [_rec("build_unit", site, a1, now - 10 * MIN)],
        "update_advisory": [
            _rec("update_advisory", site, a1, now - 30 * MIN, advisory_id=f"adv-{u}", installed_version="5.3.1",
                 available_version="5.4.0"),
            _rec("update_advisory", site, a1, now - 20 * MIN, advisory_id=f"adv-{u}", installed_version="5.3.1",
                 available_version="5.4.0"),  # given again (a replay): shown once
            _rec("update_advisory", other, b1, now - 20 * MIN, advisory_id=f"adv-other-{u}"),
        ],
    }
    ids = {site: [a1, a2, a3] + [a["alert_id"] for a in alerts if a["site_id"] == site] + [f"adv-{u}"],
           other: [b1, f"al-other-{u}", f"adv-other-{u}"]}
    return data, ids


def dashboard_settings(sink: SinkSettings, users: Path, **overrides: Any) -> DashboardSettings:
    values: dict[str, Any] = dict(kafka=sink.kafka, clickhouse=sink.clickhouse, port=0, ops_port=0, users_file=users,
                                  offline_after_s=3600.0)
    values.update(overrides)
    return DashboardSettings(**values)


async def until_ready(server: DashboardServer, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not server.feed.ready:
        assert server.feed.failure is None, server.feed.failure
        assert time.monotonic() < deadline, "the dashboard's feed never caught up"
        await asyncio.sleep(0.1)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def world(stack: StackSettings, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    u = uuid.uuid4().hex[:10]
    site, other = f"site-a-{u}", f"site-b-{u}"
    sink = h.settings(stack, u, SINK_KINDS)
    now = int(time.time() * 1000)
    data, ids = _data(site, other, u, now)
    for kind, batch in data.items():
        await h.produce_records(stack.kafka_bootstrap, REGISTRY, sink, kind, batch)
    async with ClickHouseSink(sink, REGISTRY) as s:
        await h.run_until(s, sum(len(b) for k, b in data.items() if k != "fleet_state"))
    # An alert raised 10 days ago and open since: in ClickHouse, no longer in the topic
    # (here: stored from topics of another prefix, which the dashboard does not read).
    aged = h.settings(stack, u, "alert", topic_prefix=f"t{u}aged.", group_id=f"sink-aged-{u}")
    old = _alert(site, ids[site][2], now - 10 * 24 * HOUR, f"al-old-{u}", severity="INFO", rule_id="system-event")
    await h.produce_records(stack.kafka_bootstrap, REGISTRY, aged, "alert", [old])
    async with ClickHouseSink(aged, REGISTRY) as s:
        await h.run_until(s, 1)
    ids[site].append(old["alert_id"])
    users = tmp_path_factory.mktemp("dashboard") / "users.toml"
    tokens = {"site": add_user(users, "alice", [site], operator=False),
              "other": add_user(users, "bob", [other], operator=False),
              "operator": add_user(users, "ops", [], operator=True)}
    server = DashboardServer(dashboard_settings(sink, users))
    async with server:
        await until_ready(server)
        yield World(sink, server, server.url.rstrip("/"), site, other, now, tokens, ids)
    await h.drop_database(sink)


async def get(world: World, path: str, who: str = "site", **params: str) -> tuple[int, Any, str]:
    async with aiohttp.ClientSession() as session:
        async with session.get(world.url + path, params=params, headers=world.auth(who)) as r:
            text = await r.text()
            return r.status, json.loads(text), text


@pytest.mark.asyncio(loop_scope="module")
async def test_the_fleet_lists_a_sites_printers_with_offline_last_seen_and_open_alerts(world: World) -> None:
    status, body, _ = await get(world, "/api/fleet", site=world.site)
    assert status == 200 and body["site_id"] == world.site
    printers = {p["printer_name"]: p for p in body["printers"]}
    assert list(printers) == ["A-1", "A-2", "A-3"]
    a1, a2, a3 = printers["A-1"], printers["A-2"], printers["A-3"]
    assert a1["offline"] is False and a1["activity"] == "PRINTING" and a1["last_seen"] == world.now - 2 * MIN
    assert a1["open_alerts"] == 3  # warning, critical and the wear alert; not the other site's
    assert a2["offline"] is True and a2["open_alerts"] == 0  # silent longer than offline_after_s; its alert cleared
    assert a3["offline"] is True and a3["status"] == "UNREACHABLE" and a3["last_seen"] == world.now - 10 * MIN
    assert a3["open_alerts"] == 1  # raised 10 days ago: known from ClickHouse, not the topic
    assert {"estimated_completion_at", "pending_job_count", "current_job_id", "firmware_release"} <= set(a1)


@pytest.mark.asyncio(loop_scope="module")
async def test_without_a_valid_token_every_api_answers_401(world: World) -> None:
    async with aiohttp.ClientSession() as session:
        for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": f"Basic {world.tokens['site']}"}):
            for path in ("/api/me", f"/api/fleet?site={world.site}", f"/api/events?site={world.site}"):
                async with session.get(world.url + path, headers=headers) as r:
                    assert r.status == 401, (path, headers)
                    assert "error" in await r.json()


@pytest.mark.asyncio(loop_scope="module")
async def test_login_sets_an_httponly_strict_cookie_that_signs_in_and_logout_clears_it(world: World) -> None:
    # unsafe: the client's jar keeps cookies of an IP address (127.0.0.1) only when told to
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        async with session.post(world.url + "/login", data={"token": "wrong"}, allow_redirects=False) as r:
            assert r.status == 303 and "printfleet_session" not in r.cookies
        async with session.post(world.url + "/login", data={"token": world.tokens["site"]}, allow_redirects=False) as r:
            assert r.status == 303 and r.headers["Location"] == "/"
            cookie = r.headers["Set-Cookie"]
            assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
        async with session.get(world.url + "/api/me") as r:
            assert r.status == 200 and await r.json() == {"name": "alice", "operator": False, "sites": [world.site]}
        async with session.post(world.url + "/logout", allow_redirects=False) as r:
            assert r.status == 303
        async with session.get(world.url + "/api/me") as r:
            assert r.status == 401


@pytest.mark.asyncio(loop_scope="module")
async def test_with_a_certificate_it_serves_https_and_the_session_cookie_is_secure(world: World, tmp_path: Path) -> None:
    ca = ensure_site_ca(tmp_path / "ca", "dashboard test")
    cert = issue_server_certificate(ca, tmp_path / "ca")
    settings = dashboard_settings(world.sink, world.server.settings.users_file, tls_cert=cert.cert_file,
                                  tls_key=cert.key_file)
    trusted = ssl.create_default_context(cafile=ca.cert_file)
    async with DashboardServer(settings) as server:
        assert server.url.startswith("https://127.0.0.1:")
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=trusted)) as session:
            async with session.post(server.url + "login", data={"token": world.tokens["site"]}, allow_redirects=False) as r:
                assert r.status == 303 and "Secure" in r.headers["Set-Cookie"]
            async with session.get(server.url + "api/me", headers=world.auth("site")) as r:
                assert r.status == 200 and (await r.json())["name"] == "alice"
        async with aiohttp.ClientSession() as session:  # plain HTTP to the TLS port: no answer
            with pytest.raises(aiohttp.ClientError):
                async with session.get(server.url.replace("https://", "http://") + "api/me") as r:
                    await r.read()


def _endpoints(world: World, site: str) -> list[tuple[str, dict[str, str]]]:
    device = world.ids[site][0]
    return [("/api/fleet", {"site": site}), ("/api/alerts", {"site": site}),
            ("/api/alerts", {"site": site, "state": "recent"}), ("/api/utilisation", {"site": site}),
            ("/api/utilisation", {"site": site, "grain": "day"}), (f"/api/printers/{device}", {"site": site}),
            ("/api/advisories", {"site": site}),
            ("/api/events", {"site": site})]


async def _body(session: aiohttp.ClientSession, world: World, path: str, params: dict[str, str], who: str) -> tuple[int, str]:
    async with session.get(world.url + path, params=params, headers=world.auth(who)) as r:
        if r.headers.get("Content-Type", "").startswith("text/event-stream"):
            chunks = []
            try:
                async with asyncio.timeout(1.5):  # the snapshot, then whatever comes
                    async for line in r.content:
                        chunks.append(line.decode())
            except TimeoutError:
                pass
            return r.status, "".join(chunks)
        return r.status, await r.text()


@pytest.mark.asyncio(loop_scope="module")
async def test_a_site_token_gets_403_for_another_site_and_no_response_carries_its_data(world: World) -> None:
    other_ids = [world.other, *world.ids[world.other]]
    async with aiohttp.ClientSession() as session:
        for path, params in _endpoints(world, world.other):
            status, text = await _body(session, world, path, params, "site")
            assert status == 403, (path, params, text)
            assert "error" in json.loads(text) and not [i for i in other_ids if i in text]
        for path, params in _endpoints(world, world.site):
            status, text = await _body(session, world, path, params, "site")
            assert status == 200, (path, params, text)
            assert world.ids[world.site][0] in text or path == "/api/utilisation", (path, text[:300])
            assert not [i for i in other_ids if i in text], (path, params)
        status, text = await _body(session, world, "/api/me", {}, "site")
        assert status == 200 and world.other not in text


@pytest.mark.asyncio(loop_scope="module")
async def test_an_operator_sees_both_sites(world: World) -> None:
    status, me, _ = await get(world, "/api/me", "operator")
    assert status == 200 and me["operator"] is True and {world.site, world.other} <= set(me["sites"])
    for site in (world.site, world.other):
        status, body, _ = await get(world, "/api/fleet", "operator", site=site)
        assert status == 200 and {p["device_id"] for p in body["printers"]} == set(world.ids[site][:3 if site == world.site else 1])


@pytest.mark.asyncio(loop_scope="module")
async def test_the_alerts_api_filters_open_alerts_by_severity_rule_and_printer(world: World) -> None:
    a1, a2, a3 = world.ids[world.site][:3]
    u = a1.split("-", 1)[1]
    _, body, _ = await get(world, "/api/alerts", site=world.site)
    # al-old: open for 10 days, older than the topic holds: loaded from ClickHouse at start
    assert [a["alert_id"] for a in body["alerts"]] == [f"al-crit-{u}", f"al-warn-{u}", f"al-wear-{u}", f"al-old-{u}"]
    old = body["alerts"][-1]
    assert old["raised_at"] == world.now - 10 * 24 * HOUR and old["lifecycle"] == "RAISED" and old["device_id"] == a3
    _, body, _ = await get(world, "/api/alerts", site=world.site, severity="ERROR")
    assert [a["alert_id"] for a in body["alerts"]] == [f"al-crit-{u}"]
    _, body, _ = await get(world, "/api/alerts", site=world.site, rule="predicted-wear")
    assert [a["alert_id"] for a in body["alerts"]] == [f"al-wear-{u}"]
    wear = body["alerts"][0]
    assert wear["recommended_parts"] == [{"part_number": "3ED60A", "description": "Cleaning roll", "quantity": 1}]
    assert wear["recommended_action"] and wear["predicted_failure_at"] == world.now + 3 * 24 * HOUR
    _, body, _ = await get(world, "/api/alerts", site=world.site, printer=a2)
    assert body["alerts"] == []
    status, body, _ = await get(world, "/api/alerts", site=world.site, severity="LOUD")
    assert status == 400 and "severity" in body["error"]


@pytest.mark.asyncio(loop_scope="module")
async def test_recent_alerts_come_from_clickhouse_with_cleared_ones_and_their_parts(world: World) -> None:
    u = world.ids[world.site][0].split("-", 1)[1]
    _, body, _ = await get(world, "/api/alerts", site=world.site, state="recent")
    by_id = {a["alert_id"]: a for a in body["alerts"]}
    assert set(by_id) == {f"al-warn-{u}", f"al-crit-{u}", f"al-gone-{u}", f"al-wear-{u}"}
    assert by_id[f"al-gone-{u}"]["lifecycle"] == "CLEARED" and by_id[f"al-gone-{u}"]["cleared_at"] == world.now - 40 * MIN
    assert by_id[f"al-wear-{u}"]["recommended_parts"] == [
        {"part_number": "3ED60A", "description": "Cleaning roll", "quantity": 1}]
    _, body, _ = await get(world, "/api/alerts", site=world.site, state="recent", severity="ERROR")
    assert {a["alert_id"] for a in body["alerts"]} == {f"al-crit-{u}", f"al-gone-{u}"}


@pytest.mark.asyncio(loop_scope="module")
async def test_utilisation_rows_come_from_clickhouse_per_site_and_per_printer(world: World) -> None:
    a1 = world.ids[world.site][0]
    hour = world.now - world.now % HOUR - HOUR
    _, body, _ = await get(world, "/api/utilisation", site=world.site, grain="hour")
    assert [r["bucket"] for r in body["rows"]] == [hour]
    row = body["rows"][0]
    # a1's corrected window (2700 s) and a2's (900 s); not the other site's 3600 s
    assert row["printers"] == 2 and row["printing_s"] == 3600.0 and row["idle_s"] == 3600.0
    assert row["utilisation_pct"] == 50.0 and row["jobs_completed"] == 2 and row["layers_printed"] == 200
    assert row["material_consumed_kg"] == 2.0 and row["packing_density_pct"] == 10.0
    _, body, _ = await get(world, "/api/utilisation", site=world.site, grain="day", printer=a1, days="3")
    assert len(body["rows"]) == 1 and body["rows"][0]["printing_s"] == 2700.0 and body["rows"][0]["printers"] == 1
    assert body["rows"][0]["bucket"] == hour - hour % (24 * HOUR)
    assert [b["utilisation_p50_pct"] for b in body["benchmark"]] == [50.0]
    status, body, _ = await get(world, "/api/utilisation", site=world.site, grain="week")
    assert status == 400


@pytest.mark.asyncio(loop_scope="module")
async def test_the_printer_page_has_consumables_with_remaining_life_and_predicted_end_of_life(world: World) -> None:
    a1 = world.ids[world.site][0]
    status, body, _ = await get(world, f"/api/printers/{a1}", site=world.site)
    assert status == 200 and body["printer"]["device_id"] == a1
    items = {c["item"]: c for c in body["consumables"]}
    assert items["cleaning-roll"]["remaining_pct"] == 25.0  # the newest report: 75 % used
    assert items["cleaning-roll"]["predicted_end_of_life_at"] == world.now + 3 * 24 * HOUR
    assert items["printhead-2"]["remaining_pct"] == 50.0  # 700 h of a nominal 1,400 h
    assert items["printhead-2"]["predicted_end_of_life_at"] is None
    assert any(i.startswith("agent-") for i in items) and "build-unit" in items
    assert {a["device_id"] for a in body["alerts"]} == {a1} and len(body["alerts"]) == 3
    assert [(a["advisory_id"], a["available_version"]) for a in body["advisories"]] == [(_advisory_id(world), "5.4.0")]
    status, body, _ = await get(world, f"/api/printers/{world.ids[world.other][0]}", site=world.site)
    assert status == 404 and world.other not in json.dumps(body)


def _advisory_id(world: World) -> str:
    return next(i for i in world.ids[world.site] if i.startswith("adv-"))


@pytest.mark.asyncio(loop_scope="module")
async def test_advisories_come_from_clickhouse_once_per_printer_and_advisory(world: World) -> None:
    status, body, _ = await get(world, "/api/advisories", site=world.site)
    assert status == 200
    a1 = world.ids[world.site][0]
    assert [(a["device_id"], a["advisory_id"], a["installed_version"]) for a in body["advisories"]] == [
        (a1, _advisory_id(world), "5.3.1")]
    status, body, _ = await get(world, "/api/advisories", site=world.site, printer=world.ids[world.site][1])
    assert status == 200 and body["advisories"] == []


async def _events(response: aiohttp.ClientResponse, wanted: int, timeout_s: float) -> list[tuple[str, dict[str, Any]]]:
    """The next `wanted` events of an SSE response (keepalive comments skipped)."""
    out: list[tuple[str, dict[str, Any]]] = []
    event = ""
    async with asyncio.timeout(timeout_s):
        async for raw in response.content:
            line = raw.decode().rstrip("\n")
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: "):
                out.append((event, json.loads(line[6:])))
                if len(out) >= wanted:
                    return out
    return out


@pytest.mark.asyncio(loop_scope="module")
async def test_the_event_stream_delivers_a_change_an_alert_and_an_offline_transition(world: World, tmp_path: Path) -> None:
    users = tmp_path / "users.toml"
    token = add_user(users, "alice", [world.site], operator=False)
    quick = DashboardServer(dashboard_settings(world.sink, users, offline_after_s=2.0, offline_check_s=0.2))
    device, other_device = f"live-{uuid.uuid4().hex[:8]}", f"live-other-{uuid.uuid4().hex[:8]}"
    async with quick:
        await until_ready(quick)
        async with aiohttp.ClientSession() as session:
            async with session.get(quick.url + "api/events", params={"site": world.site},
                                   headers={"Authorization": f"Bearer {token}"}) as r:
                assert r.status == 200 and r.headers["Content-Type"].startswith("text/event-stream")
                snapshot = await _events(r, 3, 10)  # the site's three printers, as of now
                assert {d["device_id"] for _, d in snapshot} == set(world.ids[world.site][:3])
                now = int(time.time() * 1000)
                await h.produce_records(world.sink.kafka.bootstrap_servers, REGISTRY, world.sink, "fleet_state",
                                        [_state(world.other, other_device, now), _state(world.site, device, now)])
                await h.produce_records(world.sink.kafka.bootstrap_servers, REGISTRY, world.sink, "alert",
                                        [_alert(world.site, device, now, f"al-live-{device}", severity="ERROR")])
                events = await _events(r, 4, 20)  # online, alert (+ its printer's new count), then offline by the clock
    kinds = [(e, d.get("device_id"), d.get("offline"), d.get("lifecycle")) for e, d in events]
    assert all(d["site_id"] == world.site for _, d in events), kinds
    assert ("printer", device, False, None) == kinds[0]
    assert ("alert", device, None, "RAISED") in kinds
    assert kinds[-1] == ("printer", device, True, None)
