"""A batch sent again is produced once, whichever gateway instance gets it and however
often the gateway was killed in between: the records and their collector's sequence mark
go to Kafka in one transaction (producers/gateway/uploads.py). Read back from the real
broker with read_committed, as every printfleet consumer reads."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import aiohttp
from aiokafka import AIOKafkaConsumer, TopicPartition

from common.kafka import admin
from common.kafka.settings import KafkaSettings
from common.kafka.topics import PARTITIONS, pipeline_topics, topic_for
from deploy.settings import StackSettings
from producers.batch_format import encode_batch
from producers.gateway.gateway import Gateway, GatewaySettings
from producers.gateway.sites import SiteDirectory
from schemas import SchemaRegistry
from test_gateway import DEVICES_A, SITE_A, TOKEN_A, _closed_port, _post, _record

PRINTFLEET = str(Path(sys.executable).parent / "printfleet")


def _batch(registry: SchemaRegistry, n: int) -> tuple[bytes, list[str]]:
    records = [_record("heartbeat", SITE_A, DEVICES_A[i % 3], seed=i) for i in range(n)]
    return encode_batch(registry.encode("heartbeat", r) for r in records), [r["record_id"] for r in records]


def _sites(tmp_path: Path) -> Path:
    path = tmp_path / "sites.toml"
    path.write_text(SiteDirectory.render([(SITE_A, TOKEN_A, DEVICES_A)]))
    return path


async def _record_ids(kafka: KafkaSettings, registry: SchemaRegistry, at_least: int) -> Counter[str]:
    """Record id -> how many times it is in the heartbeat topic (committed records only):
    at least `at_least` messages, and whatever more comes within a second."""
    consumer = AIOKafkaConsumer(bootstrap_servers=kafka.bootstrap_servers, group_id=f"it-{uuid.uuid4().hex}",
                                enable_auto_commit=False, isolation_level="read_committed",
                                auto_offset_reset="earliest")
    await consumer.start()
    try:
        consumer.assign([TopicPartition(kafka.topic(topic_for("heartbeat")), p) for p in range(PARTITIONS)])
        seen: Counter[str] = Counter()
        deadline = time.monotonic() + 20
        while sum(seen.values()) < at_least and time.monotonic() < deadline:
            for messages in (await consumer.getmany(timeout_ms=200)).values():
                seen.update(str(registry.decode(m.value).record["record_id"]) for m in messages)
        for messages in (await consumer.getmany(timeout_ms=1000)).values():
            seen.update(str(registry.decode(m.value).record["record_id"]) for m in messages)
        return seen
    finally:
        await consumer.stop()


@contextlib.contextmanager
def _gateway_process(kafka: KafkaSettings, sites: Path, port: int, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    args = [PRINTFLEET, "gateway", "--sites-file", str(sites), "--port", str(port), "--instance-id", "it-gw",
            "--kafka-bootstrap", kafka.bootstrap_servers, "--topic-prefix", kafka.topic_prefix,
            "--replication-factor", "1", "--min-insync-replicas", "1", "--status-every-s", "0", "--ops-port", "0"]
    with log.open("ab") as out:
        proc = subprocess.Popen(args, env=dict(os.environ), stdout=out, stderr=subprocess.STDOUT)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


async def _wait_until_up(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    async with aiohttp.ClientSession() as session:
        while True:
            assert proc.poll() is None, log.read_text()
            with contextlib.suppress(aiohttp.ClientError, OSError):
                async with session.get(f"{url}/healthz") as resp:
                    if resp.status == 200:
                        return
            assert time.monotonic() < deadline, log.read_text()
            await asyncio.sleep(0.2)


async def test_a_batch_resent_after_a_sigkill_of_the_gateway_is_not_produced_again(
    stack: StackSettings, unique: str, tmp_path: Path,
) -> None:
    """The reproduction of the issue: POST a batch, SIGKILL the gateway, start it again,
    POST the same bytes: the topic holds each record once."""
    kafka = stack.kafka(topic_prefix=f"rep-{unique}.")
    registry = SchemaRegistry.load_default()
    await admin.apply(kafka, pipeline_topics())
    sites, port, log = _sites(tmp_path), _closed_port(), tmp_path / "gateway.log"
    url = f"http://127.0.0.1:{port}"
    body, ids = _batch(registry, 200)
    collector = uuid.uuid4().hex
    with _gateway_process(kafka, sites, port, log) as first:
        await _wait_until_up(url, first, log)
        status, answer, _ = await _post(url, TOKEN_A, body, uploader=collector)
        assert (status, answer["produced"]) == (200, 200), answer
        first.send_signal(signal.SIGKILL)  # as if its answer had been lost on the way
        first.wait(10)
    with _gateway_process(kafka, sites, port, log) as second:
        await _wait_until_up(url, second, log)
        status, answer, _ = await _post(url, TOKEN_A, body, uploader=collector)
        assert (status, answer) == (200, {"accepted": 200, "produced": 0, "duplicate": True, "refused": []}), answer
    seen = await _record_ids(kafka, registry, len(ids))
    assert set(seen) == set(ids)
    assert max(seen.values()) == 1, [i for i, n in seen.items() if n > 1][:5]


async def test_any_instance_recognises_what_another_produced_and_takes_only_the_new_part(
    stack: StackSettings, unique: str, tmp_path: Path,
) -> None:
    kafka = stack.kafka(topic_prefix=f"rep-{unique}.")
    registry = SchemaRegistry.load_default()
    sites = _sites(tmp_path)
    directory = SiteDirectory.load(sites)
    records = [_record("heartbeat", SITE_A, DEVICES_A[i % 3], seed=i) for i in range(16)]
    messages = [registry.encode("heartbeat", r) for r in records]  # record i has sequence number i + 1

    def numbered(first: int, last: int) -> tuple[bytes, str]:
        return encode_batch(messages[first - 1:last]), f"{first}-{last}"

    collector = uuid.uuid4().hex
    a_settings = GatewaySettings(kafka=kafka, sites_file=sites, port=0, instance_id=f"a-{unique}")
    b_settings = GatewaySettings(kafka=kafka, sites_file=sites, port=0, instance_id=f"b-{unique}")
    async with Gateway(a_settings, registry, directory) as a, Gateway(b_settings, registry, directory) as b:
        async def post(gateway: Gateway, first: int, last: int) -> int:
            body, seqs = numbered(first, last)
            status, answer, _ = await _post(gateway.url, TOKEN_A, body, uploader=collector, seqs=seqs)
            assert status == 200, answer
            return int(answer["produced"])

        assert await post(a, 1, 10) == 10
        await asyncio.sleep(0.5)  # Kafka shows a commit to readers a moment after it answered
        assert await post(b, 1, 10) == 0  # the same batch at another instance: a repeat
        assert await post(b, 5, 15) == 5  # half a repeat (the spool lost the end of it): 11-15 only
        await asyncio.sleep(0.5)
        assert await post(a, 15, 15) == 0  # the mark's edge: 15 is the mark itself
        assert await post(a, 16, 16) == 1  # and 16 the first number above it
    assert a.counters.records_repeated == 1 and b.counters.records_repeated == 10 + 6
    seen = await _record_ids(kafka, registry, 16)
    assert set(seen) == {r["record_id"] for r in records}
    assert max(seen.values()) == 1


async def test_concurrent_collectors_each_land_exactly_once(
    stack: StackSettings, unique: str, tmp_path: Path,
) -> None:
    """Many uploads in flight at once share transactions (group commit); each collector
    resends every batch once, as after a lost answer."""
    kafka = stack.kafka(topic_prefix=f"rep-{unique}.")
    registry = SchemaRegistry.load_default()
    sites = _sites(tmp_path)
    settings = GatewaySettings(kafka=kafka, sites_file=sites, port=0, max_batches_in_flight=64)
    ids: list[str] = []
    async with Gateway(settings, registry, SiteDirectory.load(sites)) as gateway:
        async def collector() -> None:
            uploader = uuid.uuid4().hex
            for n in range(5):
                body, batch_ids = _batch(registry, 50)
                ids.extend(batch_ids)
                seqs = f"{n * 50 + 1}-{n * 50 + 50}"
                for _ in range(2):
                    status, answer, _ = await _post(gateway.url, TOKEN_A, body, uploader=uploader, seqs=seqs)
                    assert status == 200, answer

        await asyncio.gather(*(collector() for _ in range(12)))
        assert gateway.counters.records_produced == len(ids) == 12 * 5 * 50
        assert gateway.counters.records_repeated == len(ids)
    seen = await _record_ids(kafka, registry, len(ids))
    assert set(seen) == set(ids) and max(seen.values()) == 1
