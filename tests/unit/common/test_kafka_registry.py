"""Every topic a component reads or writes is in the registry (`common.kafka.topics`),
under the settings' prefix; no component creates topics but `common.kafka.admin`."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from common.kafka.settings import KafkaSettings
from common.kafka.topics import (
    CATALOGUE, DEAD_LETTER, GATEWAY_UPLOADS, SITE_UTILISATION, pipeline_topics, topic_for, worker_topics,
)
from producers.gateway.gateway import Gateway, GatewaySettings
from producers.gateway.sites import SiteDirectory
from schemas import SchemaRegistry
from schemas.kinds import KINDS
from sinks.clickhouse import ClickHouseSink, SinkSettings
from sinks.connection import ClickHouseSettings
from streams.app import create_app
from streams.worker_settings import WorkerSettings

KAFKA = KafkaSettings("127.0.0.1:1", topic_prefix="p.")
REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def registry() -> SchemaRegistry:
    return SchemaRegistry.load_default()


def test_every_record_kind_and_shared_topic_has_one_registry_entry() -> None:
    names = [spec.name for spec in pipeline_topics()]
    assert len(names) == len(set(names))
    assert {topic_for(kind) for kind in KINDS} | {DEAD_LETTER, SITE_UTILISATION, CATALOGUE, GATEWAY_UPLOADS} == set(names)


def test_the_worker_uses_only_registry_topics_as_registered(tmp_path: Path, registry: SchemaRegistry) -> None:
    worker = create_app(WorkerSettings(kafka=KAFKA, app_id="w", data_dir=tmp_path), registry)
    wanted = {KAFKA.topic(spec.name): spec for spec in worker.topics}
    assert set(worker.topics) == {*pipeline_topics(), *worker_topics("w")}
    for name, topic in worker.declared.items():
        assert name in wanted, f"the worker tells Faust of {name}, which is not in the registry"
        assert bool(topic.compacting) == wanted[name].compacted, name
        assert (topic.partitions or worker.app.conf.topic_partitions) == wanted[name].partitions, name
    assert worker.app.conf.id == "p.w"  # Faust's own topics carry the prefix too


def test_the_sink_reads_registry_topics(registry: SchemaRegistry) -> None:
    sink = ClickHouseSink(SinkSettings(kafka=KAFKA, clickhouse=ClickHouseSettings("http://127.0.0.1:1")), registry)
    assert set(sink.topics) == {KAFKA.topic(topic_for(kind)) for kind in KINDS}
    assert sink.dead_letters.topic == KAFKA.topic(DEAD_LETTER)


def test_the_gateway_creates_its_topics_from_the_registry(tmp_path: Path, registry: SchemaRegistry) -> None:
    sites = tmp_path / "sites.toml"
    sites.write_text(SiteDirectory.render([("s", "t", ["d"])]))
    gateway = Gateway(GatewaySettings(kafka=KAFKA, sites_file=sites), registry, SiteDirectory.load(sites))
    assert set(gateway.publisher.topics) <= set(pipeline_topics())
    assert {spec.name for spec in gateway.publisher.topics} >= {DEAD_LETTER, GATEWAY_UPLOADS, topic_for("heartbeat")}


def test_topics_are_created_in_one_module_only() -> None:
    creators = sorted(
        str(path.relative_to(REPO))
        for package in ("common", "producers", "streams", "sinks", "schemas", "deploy", "printfleet", "benchmarks")
        for path in (REPO / package).rglob("*.py")
        if re.search(r"create_topics\(|NewTopic\(", path.read_text())
    )
    assert creators == ["common/kafka/admin.py"]
