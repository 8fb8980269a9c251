"""The gateway stops gracefully: batches under way are finished and answered, new ones
get 503 `shutting_down` with Retry-After, and `printfleet gateway` exits 0 on SIGTERM."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import aiohttp

from deploy.settings import StackSettings
from producers.batch_format import CONTENT_TYPE, SEQUENCE_HEADER, UPLOADER_HEADER, encode_batch, format_sequence
from producers.gateway.gateway import Gateway, GatewaySettings
from producers.gateway.sites import SiteDirectory
from schemas import SchemaRegistry
from schemas.samples import sample_record

SITE, TOKEN, DEVICE = "site-stop", "token-of-site-stop", "dev-stop-1"


def _sites(tmp_path: Path) -> Path:
    path = tmp_path / "sites.toml"
    path.write_text(SiteDirectory.render([(SITE, TOKEN, [DEVICE])]))
    return path


def _batch(registry: SchemaRegistry, n: int) -> bytes:
    records = [{**sample_record("heartbeat", seed=i), "site_id": SITE, "device_id": DEVICE,
                "record_id": str(uuid.uuid4())} for i in range(n)]
    return encode_batch(registry.encode("heartbeat", r) for r in records)


async def _post(url: str, body: bytes, n: int) -> tuple[int, dict[str, Any], str]:
    headers = {"Content-Type": CONTENT_TYPE, "Authorization": f"Bearer {TOKEN}",
               UPLOADER_HEADER: uuid.uuid4().hex, SEQUENCE_HEADER: format_sequence(range(1, n + 1))}
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{url}/v1/records", data=body, headers=headers) as resp:
            return resp.status, await resp.json(), resp.headers.get("Retry-After", "")


async def test_a_stopping_gateway_finishes_the_batch_under_way_and_refuses_new_ones_with_503(
        stack: StackSettings, tmp_path: Path) -> None:
    registry = SchemaRegistry.load_default()
    settings = GatewaySettings(kafka=stack.kafka(), sites_file=_sites(tmp_path), port=0)
    gateway = Gateway(settings, registry, SiteDirectory.load(settings.sites_file))
    await gateway.start()
    try:
        n = 20_000
        under_way = asyncio.create_task(_post(gateway.url, _batch(registry, n), n))
        while gateway.batches_in_flight == 0:
            assert not under_way.done(), under_way.result()
            await asyncio.sleep(0.001)
        gateway.begin_stop()
        status, body, retry_after = await _post(gateway.url, _batch(registry, 1), 1)
        assert (status, body["error"]) == (503, "shutting_down") and retry_after
        await gateway.stop()  # waits for the batch under way
        assert under_way.done()
        status, body, _ = under_way.result()
        assert status == 200 and body["produced"] == n
    finally:
        await gateway.stop()


def test_printfleet_gateway_exits_0_on_sigterm(stack: StackSettings, tmp_path: Path) -> None:
    env_kafka = ["--kafka-bootstrap", stack.kafka_bootstrap, "--replication-factor", "1", "--min-insync-replicas", "1"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "printfleet", "gateway", "--sites-file", str(_sites(tmp_path)), "--port", "0",
         "--status-every-s", "0", "--ops-port", "0", *env_kafka],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert first.startswith("gateway listening on"), first
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
        assert proc.returncode == 0, first + out
        assert "gateway stopped" in out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
