"""Enrolment without a restart, on the real broker: `printfleet sites` (the real CLI, in
a subprocess) edits the sites file, and a running gateway takes the edit when the file
changes or on SIGHUP. A printer's record is not produced before its enrolment and is
after it; a rotated token is refused once the gateway reloaded; a broken file keeps the
previous directory and the gateway keeps serving.

"Not produced" is checked as an answer that is not a 200, or a 200 whose `produced` is 0:
it holds whether the gateway refuses such a batch whole or record by record."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from deploy.settings import StackSettings
from producers.batch_format import CONTENT_TYPE, SEQUENCE_HEADER, UPLOADER_HEADER, encode_batch, format_sequence
from producers.gateway.gateway import Gateway, GatewaySettings
from producers.gateway.sites import SiteDirectory
from schemas import SchemaRegistry
from schemas.samples import sample_record
from ports import free_ports

PRINTFLEET = str(Path(sys.executable).parent / "printfleet")
SITE = "enrol-site"


@pytest.fixture(scope="module")
def registry() -> SchemaRegistry:
    return SchemaRegistry.load_default()


def sites_cli(sites_file: Path, *args: str) -> str:
    """Run `printfleet sites ...` on `sites_file`; its stdout (a token for add/rotate-token)."""
    done = subprocess.run([PRINTFLEET, "sites", *args, "--sites-file", str(sites_file)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.fixture
def sites_file(tmp_path: Path) -> tuple[Path, str]:
    """A sites file made by the CLI: one site, no printers; and the site's token."""
    path = tmp_path / "sites.toml"
    return path, sites_cli(path, "add", SITE)


@pytest.fixture
async def gateway(stack: StackSettings, sites_file: tuple[Path, str], registry: SchemaRegistry) -> AsyncIterator[Gateway]:
    path, _ = sites_file
    settings = GatewaySettings(kafka=stack.kafka(), sites_file=path, port=0, sites_reload_s=0.2)
    async with Gateway(settings, registry, SiteDirectory.load(path)) as gw:
        yield gw


async def upload_one(registry: SchemaRegistry, url: str, token: str, printer: str) -> tuple[int, dict[str, Any]]:
    """One batch holding one heartbeat of `printer`, from a collector never seen before."""
    record = sample_record("heartbeat", seed=1)
    record.update(site_id=SITE, device_id=printer, record_id=str(uuid.uuid4()))
    headers = {"Content-Type": CONTENT_TYPE, UPLOADER_HEADER: uuid.uuid4().hex, SEQUENCE_HEADER: format_sequence([1]),
               "Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession(auto_decompress=False) as session:
        body = encode_batch([registry.encode("heartbeat", record)])
        async with session.post(f"{url}/v1/records", data=body, headers=headers) as resp:
            return resp.status, await resp.json()


def produced(answer: tuple[int, dict[str, Any]]) -> bool:
    status, body = answer
    return status == 200 and body.get("produced") == 1


async def until(condition: Callable[[], bool], timeout_s: float = 15) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_a_printer_enrolled_by_the_cli_is_accepted_at_the_next_poll_and_refused_after_revoke(
    gateway: Gateway, sites_file: tuple[Path, str], registry: SchemaRegistry,
) -> None:
    path, token = sites_file
    printer = str(uuid.uuid4())
    assert not produced(await upload_one(registry, gateway.url, token, printer))

    sites_cli(path, "enrol", SITE, printer)
    await until(lambda: gateway.sites_watcher.reloads == 1)
    assert produced(await upload_one(registry, gateway.url, token, printer))

    sites_cli(path, "revoke", SITE, printer)
    await until(lambda: gateway.sites_watcher.reloads == 2)
    assert not produced(await upload_one(registry, gateway.url, token, printer))


async def test_a_rotated_token_is_refused_after_the_reload_and_the_new_one_accepted(
    gateway: Gateway, sites_file: tuple[Path, str], registry: SchemaRegistry,
) -> None:
    path, old = sites_file
    printer = str(uuid.uuid4())
    sites_cli(path, "enrol", SITE, printer)
    await until(lambda: gateway.sites_watcher.reloads == 1)
    assert produced(await upload_one(registry, gateway.url, old, printer))

    new = sites_cli(path, "rotate-token", SITE)
    await until(lambda: gateway.sites_watcher.reloads == 2)
    status, body = await upload_one(registry, gateway.url, old, printer)
    assert (status, body["error"]) == (401, "unauthorized")
    assert produced(await upload_one(registry, gateway.url, new, printer))


async def test_a_broken_file_keeps_the_previous_directory_and_the_gateway_serving(
    gateway: Gateway, sites_file: tuple[Path, str], registry: SchemaRegistry,
) -> None:
    path, token = sites_file
    printer = str(uuid.uuid4())
    sites_cli(path, "enrol", SITE, printer)
    await until(lambda: gateway.sites_watcher.reloads == 1)
    good = path.read_text()

    path.write_text(good.replace("[sites.", "[sites"))  # a hand edit gone wrong
    await until(lambda: gateway.sites_watcher.failures == 1)
    assert produced(await upload_one(registry, gateway.url, token, printer))
    assert gateway.sites_watcher.reloads == 1

    path.write_text(good)
    await until(lambda: gateway.sites_watcher.reloads == 2)
    assert produced(await upload_one(registry, gateway.url, token, printer))


async def test_sighup_makes_a_gateway_process_take_an_enrolment(
    stack: StackSettings, sites_file: tuple[Path, str], registry: SchemaRegistry, tmp_path: Path,
) -> None:
    path, token = sites_file
    (port,) = free_ports(1)
    log = tmp_path / "gateway.log"
    # --sites-reload-s 0: no polling, so only the signal can make it reload.
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [PRINTFLEET, "gateway", "--sites-file", str(path), "--port", str(port), "--sites-reload-s", "0",
             "--status-every-s", "0", "--ops-port", "0", "--kafka-bootstrap", stack.kafka_bootstrap,
             "--instance-id", f"it-enrol-{uuid.uuid4().hex[:8]}"],
            stdout=out, stderr=subprocess.STDOUT,
        )
    try:
        url = f"http://127.0.0.1:{port}"
        await until(lambda: "gateway listening" in log.read_text(), timeout_s=60)
        printer = str(uuid.uuid4())
        sites_cli(path, "enrol", SITE, printer)
        await asyncio.sleep(0.5)
        assert not produced(await upload_one(registry, url, token, printer))

        os.kill(proc.pid, signal.SIGHUP)
        await until(lambda: "event=sites_reloaded" in log.read_text())
        assert "sites=1 devices=1 reason=request" in log.read_text()
        assert produced(await upload_one(registry, url, token, printer))
        assert proc.poll() is None
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
