"""The ingestion gateway on the real broker: what it accepts lands in Kafka keyed by
device, acknowledged only after Kafka acked; what it refuses leaves Kafka untouched."""

from __future__ import annotations

import dataclasses
import gzip
import time
import socket
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from common.kafka import deadletter
from common.kafka.settings import KafkaSettings
from deploy.settings import StackSettings
from producers.batch_format import (
    CONTENT_TYPE, SEQUENCE_HEADER, UPLOADER_HEADER, FramingError, encode_batch, format_sequence, split_frames,
)
from producers.gateway.gateway import Gateway, GatewaySettings
from producers.gateway.sites import SiteDirectory
from schemas import DEVICE_KINDS, SchemaRegistry
from schemas.samples import sample_record
from common.kafka.topics import DEAD_LETTER, PARTITIONS, telemetry_topics, topic_for

SITE_A, TOKEN_A, DEVICES_A = "site-a", "token-of-site-a", ("dev-a1", "dev-a2", "dev-a3")
SITE_B, TOKEN_B, DEVICES_B = "site-b", "token-of-site-b", ("dev-b1",)


@pytest.fixture(scope="module")
def registry() -> SchemaRegistry:
    return SchemaRegistry.load_default()


def _settings(tmp_path: Path, kafka: KafkaSettings, **overrides: Any) -> GatewaySettings:
    sites = tmp_path / "sites.toml"
    sites.write_text(SiteDirectory.render([(SITE_A, TOKEN_A, DEVICES_A), (SITE_B, TOKEN_B, DEVICES_B)]))
    return GatewaySettings(kafka=kafka, sites_file=sites, port=0, **overrides)


@pytest.fixture
async def gateway(stack: StackSettings, tmp_path: Path, registry: SchemaRegistry) -> AsyncIterator[Gateway]:
    settings = _settings(tmp_path, stack.kafka(), max_body_bytes=256 << 10)
    async with Gateway(settings, registry, SiteDirectory.load(settings.sites_file)) as gw:
        yield gw


def _record(kind: str, site: str, device: str, seed: int) -> dict[str, Any]:
    record = sample_record(kind, seed=seed)
    record.update(site_id=site, device_id=device, record_id=str(uuid.uuid4()))
    return record


def _count(body: bytes) -> int:
    try:
        return len(split_frames(gzip.decompress(body), 1 << 20))
    except (OSError, EOFError, FramingError):
        return 1  # not a batch: the gateway refuses it before it looks at the numbers


async def _post(
    url: str, token: str | None, body: bytes, content_type: str = CONTENT_TYPE, *,
    uploader: str | None = None, seqs: str | None = None,
) -> tuple[int, dict[str, Any], str]:
    """POST a batch; without `uploader` as a collector never seen before, numbering its
    records from 1 (`seqs`: the Printfleet-Sequence header)."""
    headers = {
        "Content-Type": content_type,
        UPLOADER_HEADER: uploader or uuid.uuid4().hex,
        SEQUENCE_HEADER: seqs or format_sequence(range(1, _count(body) + 1)),
    }
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    async with aiohttp.ClientSession(auto_decompress=False) as session:
        async with session.post(f"{url}/v1/records", data=body, headers=headers) as resp:
            return resp.status, await resp.json(), resp.headers.get("Retry-After", "")


def _reader(bootstrap: str) -> AIOKafkaConsumer:
    # A group id although nothing is committed: without one, aiokafka 0.14 may raise
    # CancelledError from stop() (its NoGroupCoordinator task is cancelled before it ran).
    return AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=f"it-reader-{uuid.uuid4().hex}", enable_auto_commit=False,
                            isolation_level="read_committed")


async def _end_offsets(bootstrap: str) -> dict[TopicPartition, int]:
    consumer = _reader(bootstrap)
    await consumer.start()
    try:
        tps = [TopicPartition(t, p) for t in telemetry_topics() for p in range(PARTITIONS)]
        return dict(await consumer.end_offsets(tps))
    finally:
        await consumer.stop()


async def _read_new(bootstrap: str, since: dict[TopicPartition, int], count: int) -> list[Any]:
    """The committed messages after `since`: at least `count` of them, and whatever more
    arrives within half a second (a repeat would). Kafka makes a commit visible a moment
    after it answered the producer (the markers are written after the commit)."""
    consumer = _reader(bootstrap)
    await consumer.start()
    try:
        consumer.assign(list(since))
        for tp, offset in since.items():
            consumer.seek(tp, offset)
        out: list[Any] = []
        deadline = time.monotonic() + 15
        while len(out) < count and time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=200)).values():
                out.extend(records)
        for records in (await consumer.getmany(timeout_ms=500)).values():
            out.extend(records)
        return out
    finally:
        await consumer.stop()


async def test_accepted_batch_lands_in_kafka_per_kind_keyed_by_device(
    gateway: Gateway, stack: StackSettings, registry: SchemaRegistry
) -> None:
    records = [
        _record(kind, SITE_A, DEVICES_A[i % 3], seed=i) for i, kind in enumerate(DEVICE_KINDS * 3)
    ]
    messages = [registry.encode(r_kind, r) for r_kind, r in zip(DEVICE_KINDS * 3, records)]
    collector = uuid.uuid4().hex
    before = await _end_offsets(stack.kafka_bootstrap)
    status, body, _ = await _post(gateway.url, TOKEN_A, encode_batch(messages), uploader=collector)
    assert (status, body) == (200, {"accepted": len(messages), "produced": len(messages), "duplicate": False,
                                    "refused": []})

    landed = await _read_new(stack.kafka_bootstrap, before, len(messages))
    assert sorted(m.value for m in landed) == sorted(messages)
    for m in landed:
        decoded = registry.decode(m.value)
        assert m.topic == topic_for(decoded.kind)
        assert m.key == decoded.record["device_id"].encode()
        # Stamped when produced, not with the record's (possibly skewed) event time.
        assert abs(m.timestamp - time.time() * 1000) < 120_000
    # All records of one device of one kind share one partition: per-device order holds.
    partitions: dict[tuple[str, bytes], set[int]] = {(m.topic, m.key): set() for m in landed}
    for m in landed:
        partitions[(m.topic, m.key)].add(m.partition)
    assert all(len(p) == 1 for p in partitions.values())

    # The same batch again (its answer was lost, say): acknowledged, not produced twice.
    again = await _end_offsets(stack.kafka_bootstrap)
    status, body, _ = await _post(gateway.url, TOKEN_A, encode_batch(messages), uploader=collector)
    assert (status, body) == (200, {"accepted": len(messages), "produced": 0, "duplicate": True, "refused": []})
    assert await _end_offsets(stack.kafka_bootstrap) == again


def _garbage_cases(registry: SchemaRegistry) -> list[tuple[str, str | None, bytes, str, int, str]]:
    """Batches refused as a whole: the credential, the framing, the body."""
    ok = registry.encode("heartbeat", _record("heartbeat", SITE_A, DEVICES_A[0], 1))
    return [
        ("no credential", None, encode_batch([ok]), CONTENT_TYPE, 401, "unauthorized"),
        ("wrong credential", "not-a-token", encode_batch([ok]), CONTENT_TYPE, 401, "unauthorized"),
        ("garbage body", TOKEN_A, b"\x00garbage" * 50, CONTENT_TYPE, 400, "bad_framing"),
        ("garbage frames", TOKEN_A, gzip.compress(b"\x00\x00\x00\x05abc"), CONTENT_TYPE, 400, "bad_framing"),
        ("uncompressed", TOKEN_A, ok, "application/octet-stream", 415, "unsupported_media_type"),
        ("oversized body", TOKEN_A, b"\x1f\x8b" + bytes(300 << 10), CONTENT_TYPE, 413, "body_too_large"),
        (
            "compression bomb",
            TOKEN_A,
            gzip.compress(b"\x00" * (80 << 20)),
            CONTENT_TYPE, 413, "body_too_large",
        ),
    ]


async def test_every_batch_refusal_has_its_own_error_and_produces_nothing(
    gateway: Gateway, stack: StackSettings, registry: SchemaRegistry
) -> None:
    before = await _end_offsets(stack.kafka_bootstrap)
    for name, token, body, content_type, want_status, want_code in _garbage_cases(registry):
        status, answer, _ = await _post(gateway.url, token, body, content_type)
        assert (status, answer["error"]) == (want_status, want_code), f"{name}: {answer}"
        assert answer["message"], name
    assert await _end_offsets(stack.kafka_bootstrap) == before, "a refused batch produced records"
    assert gateway.counters.records_produced == 0


def _bad_records(registry: SchemaRegistry) -> list[tuple[bytes, int, str, bool]]:
    """Records the gateway refuses on their own: (message, status, code, dead-lettered)."""
    ok = registry.encode("heartbeat", _record("heartbeat", SITE_A, DEVICES_A[0], 1))
    return [
        (registry.encode("heartbeat", _record("heartbeat", SITE_A, DEVICES_B[0], 2)), 403, "foreign_device", False),
        (registry.encode("heartbeat", _record("heartbeat", SITE_B, DEVICES_B[0], 3)), 403, "wrong_site", True),
        (b'{"json": true}', 400, "not_single_object", True),
        (b"\xc3\x01" + b"\x01" * 8 + ok[10:], 400, "unknown_fingerprint", False),
        (ok[:-3], 400, "corrupt_record", True),
        (registry.encode("alert", {**sample_record("alert"), "site_id": SITE_A, "device_id": DEVICES_A[0]}),
         400, "kind_not_accepted", True),
    ]


async def _dead_letters(bootstrap: str, since_ms: int) -> list[Any]:
    """The committed dead letters written since `since_ms`."""
    consumer = _reader(bootstrap)
    await consumer.start()
    try:
        tps = [TopicPartition(DEAD_LETTER, p) for p in range(PARTITIONS)]
        consumer.assign(tps)
        end = await consumer.end_offsets(tps)
        await consumer.seek_to_beginning(*tps)
        out: list[Any] = []
        while any([await consumer.position(tp) < end[tp] for tp in tps]):
            for records in (await consumer.getmany(timeout_ms=1000, max_records=10_000)).values():
                out.extend(m for m in records if m.timestamp >= since_ms)
        return out
    finally:
        await consumer.stop()


async def test_a_mixed_batch_produces_its_good_records_and_refuses_the_bad_ones_one_by_one(
    gateway: Gateway, stack: StackSettings, registry: SchemaRegistry
) -> None:
    started_ms = int(time.time() * 1000)
    bad = _bad_records(registry)
    good = [registry.encode("heartbeat", _record("heartbeat", SITE_A, DEVICES_A[i % 3], 10 + i)) for i in range(6)]
    messages = [m for pair in zip(good, (b[0] for b in bad)) for m in pair]  # good, bad, good, bad, ...
    collector = uuid.uuid4().hex
    before = await _end_offsets(stack.kafka_bootstrap)
    status, body, _ = await _post(gateway.url, TOKEN_A, encode_batch(messages), uploader=collector,
                                  seqs=format_sequence(range(1, len(messages) + 1)))
    assert status == 200, body
    assert (body["accepted"], body["produced"], body["duplicate"]) == (6, 6, False)
    refused = [(r["record"], r["status"], r["error"], r["device_id"]) for r in body["refused"]]
    assert [r[:3] for r in refused] == [
        (2 * i + 1, want_status, code) for i, (_, want_status, code, _) in enumerate(bad)
    ]
    assert all(r["message"] for r in body["refused"])
    assert refused[0][3] == DEVICES_B[0]  # the operator sees which printer
    landed = await _read_new(stack.kafka_bootstrap, before, len(good))
    assert sorted(m.value for m in landed) == sorted(good)

    # The mark covers the whole batch: sent again, nothing is produced, the refusals are
    # listed again (the first answer may be lost), and no dead letter is written twice.
    again = await _end_offsets(stack.kafka_bootstrap)
    status, repeat, _ = await _post(gateway.url, TOKEN_A, encode_batch(messages), uploader=collector,
                                    seqs=format_sequence(range(1, len(messages) + 1)))
    assert (status, repeat["produced"]) == (200, 0)
    assert [(r["record"], r["status"], r["error"], r["device_id"]) for r in repeat["refused"]] == refused
    assert await _end_offsets(stack.kafka_bootstrap) == again
    # ... also when it reaches another instance, which asks Kafka for the mark.
    other_settings = dataclasses.replace(gateway.settings, port=0, instance_id="")
    async with Gateway(other_settings, registry, gateway.sites) as other:
        status, repeat, _ = await _post(other.url, TOKEN_A, encode_batch(messages), uploader=collector,
                                        seqs=format_sequence(range(1, len(messages) + 1)))
    assert (status, repeat["produced"]) == (200, 0)
    assert [(r["record"], r["status"], r["error"], r["device_id"]) for r in repeat["refused"]] == refused
    assert await _end_offsets(stack.kafka_bootstrap) == again

    letters = [m for m in await _dead_letters(stack.kafka_bootstrap, started_ms) if m.value in messages]
    want = sorted(message for message, _, _, dead in bad if dead)
    assert sorted(m.value for m in letters) == want, "dead letters: the refusals for good, once each"
    assert {deadletter.read(m.headers)["error"] for m in letters} == {code for _, _, code, dead in bad if dead}
    assert gateway.counters.records_refused == 2 * len(bad)
    assert gateway.counters.records_dead_lettered == len(want)


async def test_a_batch_of_refused_records_only_is_answered_200_and_moves_the_mark(
    gateway: Gateway, stack: StackSettings, registry: SchemaRegistry
) -> None:
    foreign = [registry.encode("heartbeat", _record("heartbeat", SITE_A, DEVICES_B[0], i)) for i in range(3)]
    collector = uuid.uuid4().hex
    before = await _end_offsets(stack.kafka_bootstrap)
    status, body, _ = await _post(gateway.url, TOKEN_A, encode_batch(foreign), uploader=collector,
                                  seqs="1-3")
    assert (status, body["accepted"], body["produced"], body["duplicate"]) == (200, 0, 0, False)
    assert [(r["record"], r["error"]) for r in body["refused"]] == [(0, "foreign_device"), (1, "foreign_device"),
                                                                      (2, "foreign_device")]
    assert await _end_offsets(stack.kafka_bootstrap) == before
    await gateway.marks.catch_up()
    assert gateway.marks.acked(f"{SITE_A}/{collector}") == 3


async def test_a_record_refused_when_first_sent_is_refused_again_after_its_printer_was_enrolled(
    gateway: Gateway, stack: StackSettings, registry: SchemaRegistry
) -> None:
    """The answer to a batch was lost and the printer enrolled before the collector sent
    the batch again: the record never reached Kafka, so the repeat must still refuse it
    (the collector keeps it aside and sends it anew), on this instance and on another."""
    newcomer = "dev-a-new"
    messages = [registry.encode("heartbeat", _record("heartbeat", SITE_A, DEVICES_A[0], 1)),
                registry.encode("heartbeat", _record("heartbeat", SITE_A, newcomer, 2))]
    collector = uuid.uuid4().hex
    status, first, _ = await _post(gateway.url, TOKEN_A, encode_batch(messages), uploader=collector, seqs="1-2")
    assert (status, first["produced"], [r["error"] for r in first["refused"]]) == (200, 1, ["foreign_device"])

    gateway.settings.sites_file.write_text(SiteDirectory.render(
        [(SITE_A, TOKEN_A, (*DEVICES_A, newcomer)), (SITE_B, TOKEN_B, DEVICES_B)]))
    assert await gateway.sites_watcher.check(force=True)
    assert newcomer in gateway.sites.sites[SITE_A].devices

    again = await _end_offsets(stack.kafka_bootstrap)
    other_settings = dataclasses.replace(gateway.settings, port=0, instance_id="")
    async with Gateway(other_settings, registry, gateway.sites) as other:
        for url in (gateway.url, other.url):
            status, repeat, _ = await _post(url, TOKEN_A, encode_batch(messages), uploader=collector, seqs="1-2")
            assert (status, repeat["produced"]) == (200, 0)
            assert [(r["record"], r["error"], r["device_id"]) for r in repeat["refused"]] == [
                (1, "foreign_device", newcomer)]
    assert await _end_offsets(stack.kafka_bootstrap) == again
    # Sent anew under a new number, as the collector does with what it kept aside: produced.
    status, anew, _ = await _post(gateway.url, TOKEN_A, encode_batch(messages[1:]), uploader=collector, seqs="3")
    assert (status, anew["produced"], anew["refused"]) == (200, 1, [])


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_kafka_unavailable_answers_503_with_retry_after(tmp_path: Path, registry: SchemaRegistry) -> None:
    settings = _settings(tmp_path, KafkaSettings(f"127.0.0.1:{_closed_port()}"), kafka_timeout_s=2.0)
    async with Gateway(settings, registry, SiteDirectory.load(settings.sites_file)) as gw:
        ok = registry.encode("heartbeat", _record("heartbeat", SITE_A, DEVICES_A[0], 1))
        status, answer, retry_after = await _post(gw.url, TOKEN_A, encode_batch([ok]))
    assert (status, answer["error"]) == (503, "kafka_unavailable")
    assert int(retry_after) > 0
