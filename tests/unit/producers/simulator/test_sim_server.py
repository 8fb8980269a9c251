"""The HTTPS server: TLS verified against the site CA, the printer API as the fleet
renders it, the control API, and faults that behave as documented."""

from __future__ import annotations

import asyncio
import json
import ssl
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from producers.simulator import Fleet, SimulatorError, SimulatorServer, SimulatorSettings
from sim_helpers import START_MS

pytestmark = pytest.mark.timeout(60)


def _settings(ca_dir: Path, **kw: object) -> SimulatorSettings:
    values: dict[str, object] = {"printers": 3, "seed": 4, "port": 0, "ca_dir": ca_dir, "start_ms": START_MS, "acceleration": 1e-6}
    values.update(kw)
    return SimulatorSettings(**values)  # type: ignore[arg-type]


@pytest.fixture
async def sim(tmp_path: Path) -> AsyncIterator[SimulatorServer]:
    async with SimulatorServer(_settings(tmp_path)) as server:
        yield server


@pytest.fixture
async def http(sim: SimulatorServer) -> AsyncIterator[aiohttp.ClientSession]:
    context = ssl.create_default_context(cafile=str(sim.ca_file))
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context)) as session:
        yield session


async def _get(http: aiohttp.ClientSession, url: str) -> dict[str, object]:
    async with http.get(url) as response:
        assert response.status == 200, await response.text()
        data = await response.json()
        assert isinstance(data, dict)
        return data


async def _fault(http: aiohttp.ClientSession, sim: SimulatorServer, printer_id: str, body: object) -> aiohttp.ClientResponse:
    async with http.post(f"{sim.url}/sim/printers/{printer_id}/fault", json=body) as response:
        await response.read()
        return response


async def test_tls_verifies_with_the_site_ca_and_fails_without(sim: SimulatorServer, http: aiohttp.ClientSession) -> None:
    url = sim.base_urls["p001"] + "api/v1/identity"
    assert (await _get(http, url))["printer_id"] == "p001"
    async with aiohttp.ClientSession() as plain:  # system trust store only
        with pytest.raises(aiohttp.ClientConnectorCertificateError):
            async with plain.get(url):
                pass
    context = ssl.create_default_context(cafile=str(sim.ca_file))
    context.check_hostname = True
    async with aiohttp.ClientSession() as by_name:  # the certificate names localhost too
        async with by_name.get(url.replace("127.0.0.1", "localhost"), ssl=context) as response:
            assert response.status == 200


async def test_printer_endpoints_answer_what_the_fleet_renders(sim: SimulatorServer, http: aiohttp.ClientSession) -> None:
    base = sim.base_urls["p002"]
    for endpoint in ("identity", "status", "counters", "consumables", "events", "jobs", "logs"):
        body = await _get(http, base + f"api/v1/{endpoint}")
        assert body == json.loads(json.dumps(sim.fleet.read("p002", endpoint))), endpoint
    page = await _get(http, base + "api/v1/events?after=1&limit=2")
    events = page["events"]
    assert isinstance(events, list) and [e["seq"] for e in events] == [2, 3]
    assert page["last_seq"] == sim.fleet.printer("p002").events.last_seq and page["more"] is True
    logs = await _get(http, base + "api/v1/logs")
    first = logs["logs"][0]  # type: ignore[index]
    async with http.get(base + first["content_path"]) as response:
        assert response.status == 200 and len(await response.read()) == first["size_bytes"]


async def test_errors_are_json_with_status(sim: SimulatorServer, http: aiohttp.ClientSession) -> None:
    for url, status in (
        (f"{sim.url}/printers/nope/api/v1/status", 404),
        (sim.base_urls["p001"] + "api/v1/nothing", 404),
        (sim.base_urls["p001"] + "api/v1/events?after=x", 400),
        (sim.base_urls["p001"] + "api/v1/jobs?limit=100000", 400),
        (sim.base_urls["p001"] + "api/v1/logs/L999999/content", 404),
    ):
        async with http.get(url) as response:
            assert response.status == status, url
            assert "error" in await response.json()
    for body in ({"mode": "broken"}, {"mode": "slow", "delay_s": -1}, ["dark"]):
        assert (await _fault(http, sim, "p001", body)).status == 400
    assert (await _fault(http, sim, "nope", {"mode": "dark"})).status == 404


async def test_dark_closes_the_connection_without_an_answer(sim: SimulatorServer, http: aiohttp.ClientSession) -> None:
    assert (await _fault(http, sim, "p001", {"mode": "dark"})).status == 200
    with pytest.raises(aiohttp.ClientConnectionError):
        async with http.get(sim.base_urls["p001"] + "api/v1/status") as response:
            await response.read()
    # other printers and the control API are not affected
    assert (await _get(http, sim.base_urls["p002"] + "api/v1/status"))["printer_id"] == "p002"
    assert (await _get(http, f"{sim.url}/sim/printers/p001/fault"))["mode"] == "dark"
    assert (await _fault(http, sim, "p001", {"mode": "ok"})).status == 200
    assert (await _get(http, sim.base_urls["p001"] + "api/v1/status"))["printer_id"] == "p001"


async def test_slow_delays_every_answer(sim: SimulatorServer, http: aiohttp.ClientSession) -> None:
    await _fault(http, sim, "p003", {"mode": "slow", "delay_s": 0.4})
    started = time.monotonic()
    await _get(http, sim.base_urls["p003"] + "api/v1/counters")
    assert time.monotonic() - started >= 0.4
    with pytest.raises(asyncio.TimeoutError):
        async with http.get(sim.base_urls["p003"] + "api/v1/status", timeout=aiohttp.ClientTimeout(total=0.1)):
            pass


async def test_garbage_answers_200_with_a_body_that_is_not_json(sim: SimulatorServer, http: aiohttp.ClientSession) -> None:
    await _fault(http, sim, "p002", {"mode": "garbage"})
    async with http.get(sim.base_urls["p002"] + "api/v1/events") as response:
        assert response.status == 200
        body = await response.read()
    with pytest.raises(ValueError):
        json.loads(body)


async def test_control_api_lists_printers_clock_and_truth(sim: SimulatorServer, http: aiohttp.ClientSession) -> None:
    listed = await _get(http, f"{sim.url}/sim/printers")
    assert [p["base_url"] for p in listed["printers"]] == list(sim.base_urls.values())  # type: ignore[attr-defined]
    clock = await _get(http, f"{sim.url}/sim/clock")
    assert clock["start_ms"] == START_MS and clock["acceleration"] == 1e-6
    truth = await _get(http, f"{sim.url}/sim/truth")
    printers = truth["printers"]
    assert isinstance(printers, list) and len(printers) == 3
    for entry in printers:
        events = await _get(http, entry["base_url"] + "api/v1/events?limit=5000")
        assert entry["events"]["count"] == entry["events"]["max_seq"] == events["last_seq"]
        jobs = await _get(http, entry["base_url"] + "api/v1/jobs?limit=50")
        private = set(entry["private_strings"])
        for job in jobs["jobs"]:  # type: ignore[attr-defined]
            assert {job["job_name"], job["user_name"], job["computer_name"], job["file_name"], job["file_path"]} <= private
            assert {p["part_name"] for p in job["parts"]} <= private


async def test_simulated_time_runs_with_the_acceleration(tmp_path: Path) -> None:
    async with SimulatorServer(_settings(tmp_path, acceleration=3600.0)) as fast:
        first = fast.clock.now_ms()
        await asyncio.sleep(0.2)
        fast.sync()
        assert fast.fleet.now_ms - first >= 0.2 * 3600 * 1000 * 0.9


async def test_lifecycle_is_idempotent_and_reuses_the_ca(tmp_path: Path) -> None:
    server = SimulatorServer(_settings(tmp_path))
    await server.stop()  # before start: nothing to do
    with pytest.raises(SimulatorError):
        server.port
    await server.start()
    await server.start()
    ca = (tmp_path / "ca.pem").read_bytes()
    await server.stop()
    await server.stop()
    fleet = Fleet(_settings(tmp_path))
    async with SimulatorServer(_settings(tmp_path), fleet=fleet) as again:
        assert again.fleet is fleet
        assert (tmp_path / "ca.pem").read_bytes() == ca


async def test_a_taken_port_is_a_retriable_start_error(sim: SimulatorServer, tmp_path: Path) -> None:
    from producers.simulator import ServerStartError

    other = SimulatorServer(_settings(tmp_path / "other", port=sim.port))
    with pytest.raises(ServerStartError) as info:
        await other.start()
    assert info.value.retriable
    await other.stop()
