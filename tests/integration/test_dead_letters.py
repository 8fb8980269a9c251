"""One dead-letter contract: the gateway, the worker and the sink each put a message they
cannot process on the registry's dead-letter topic with the same headers
(`common.kafka.deadletter`), read back from the real broker."""

from __future__ import annotations

from pathlib import Path

from aiokafka.structs import ConsumerRecord

from common.kafka import admin, deadletter
from common.kafka.topics import DEAD_LETTER, pipeline_topics, worker_topics
from deploy.settings import StackSettings
from producers.batch_format import encode_batch
from producers.gateway.gateway import Gateway, GatewaySettings
from producers.gateway.sites import SiteDirectory
from schemas import SchemaRegistry
from sinks.deadletter import DeadLetter, DeadLetterProducer
from streams.partition_transactions import PartitionTransactions
import sink_harness as h
from test_gateway import DEVICES_A, SITE_A, TOKEN_A, _post, _record

CONTRACT = {"reason", "error", "component", "stage", "origin.topic", "origin.partition", "origin.offset",
            "origin.timestamp"}


async def test_gateway_worker_and_sink_put_the_same_dead_letter_headers(
    stack: StackSettings, unique: str, tmp_path: Path,
) -> None:
    kafka = stack.kafka(topic_prefix=f"dl-{unique}.")
    registry = SchemaRegistry.load_default()
    await admin.apply(kafka, (*pipeline_topics(), *worker_topics("it")))
    bad = b"\xc3\x01" + b"\x00" * 8 + b"not avro"  # an unknown fingerprint

    # the gateway: a record it refuses for good (sent twice: dead-lettered once)
    not_avro = b'{"json": true}'
    sites = tmp_path / "sites.toml"
    sites.write_text(SiteDirectory.render([(SITE_A, TOKEN_A, DEVICES_A)]))
    settings = GatewaySettings(kafka=kafka, sites_file=sites, port=0)
    async with Gateway(settings, registry, SiteDirectory.load(sites)) as gateway:
        batch = encode_batch([registry.encode("heartbeat", _record("heartbeat", SITE_A, DEVICES_A[0], 1)), not_avro])
        collector = "0123456789abcdef"
        for _ in range(2):
            status, answer, _ = await _post(gateway.url, TOKEN_A, batch, uploader=collector)
            assert status == 200
            assert [(r["status"], r["error"], r["record"]) for r in answer["refused"]] == [(400, "not_single_object", 1)]
    # the worker: its partition transaction's dead-letter path, as the device agent calls it
    worker = PartitionTransactions(kafka, registry, [("app_id", b"it")], app_id="it")
    await worker.own([3])
    try:
        await worker.dead_letter(3, b"dev-w", bad, "no such fingerprint", "telemetry.heartbeat", 3, 42, 1_700_000_000_000)
        await worker.commit(3, {}, b"{}")
    finally:
        await worker.stop()
    # the sink
    sink = DeadLetterProducer(kafka)
    message = ConsumerRecord(kafka.topic("telemetry.heartbeat"), 4, 7, 1_700_000_000_000, 0, b"dev-s", bad, None,
                             len(bad), 5, [("app_id", b"it")])
    try:
        await sink.send([DeadLetter(message.topic, 4, message, "no such fingerprint", "UnknownFingerprintError", "decode")])
    finally:
        await sink.stop()

    letters = await h.consume_all(kafka.bootstrap_servers, kafka.topic(DEAD_LETTER), 3)
    assert len(letters) == 3
    read = {deadletter.read(m.headers)["component"]: (m, deadletter.read(m.headers)) for m in letters}
    assert set(read) == {"gateway", "worker", "sink"}
    for component, (m, headers) in read.items():
        assert set(headers) == CONTRACT, component
        assert m.value == (not_avro if component == "gateway" else bad), component
        assert headers["reason"], component
    assert read["gateway"][1]["error"] == "not_single_object"
    assert read["gateway"][1]["origin.partition"] == "-1"  # it never was in Kafka
    worker_origin = tuple(read["worker"][1][k] for k in ("origin.topic", "origin.offset", "origin.timestamp"))
    assert worker_origin == (kafka.topic("telemetry.heartbeat"), "42", "1700000000000")
    assert (read["sink"][1]["origin.partition"], read["sink"][1]["origin.offset"], read["sink"][1]["stage"]) == ("4", "7", "decode")
    assert ("app_id", b"it") in read["sink"][0].headers  # the original headers are kept
