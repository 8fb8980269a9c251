"""The stream worker's topics are created, with Faust's settings, before Faust starts: on
a fresh broker a topic Faust creates as its consumer joins can be left out of the
group's assignment (streams/topic_setup.py)."""

from __future__ import annotations

import uuid

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from deploy.settings import StackSettings
from schemas.topics import TELEMETRY_PARTITIONS
from streams import topic_setup
from streams.app import create_app
from streams.worker_settings import WorkerSettings


async def test_every_topic_of_the_worker_exists_with_its_partitions_and_policy(stack: StackSettings) -> None:
    app_id = f"topics-{uuid.uuid4().hex[:8]}"
    worker = create_app(WorkerSettings(kafka_bootstrap=stack.kafka_bootstrap, app_id=app_id))
    specs = {s.name: s for s in worker.topics}
    # the internal topics whose absence left a worker without partitions, and a changelog
    assert {f"{app_id}-ticks", f"{app_id}-windows-by-site", f"{app_id}-sites-by-cohort",
            f"{app_id}-__assignor-__leader", f"{app_id}-devices-changelog", "telemetry.heartbeat", "fleet.state"} <= set(specs)

    await topic_setup.create(stack.kafka_bootstrap, worker.topics)
    await topic_setup.create(stack.kafka_bootstrap, worker.topics)  # again: nothing to do, no error

    admin = AIOKafkaAdminClient(bootstrap_servers=stack.kafka_bootstrap)
    await admin.start()
    try:
        ours = [name for name in specs if name.startswith(app_id)]
        described = {d["topic"]: d for d in await admin.describe_topics(ours)}
        for name in ours:
            assert len(described[name]["partitions"]) == specs[name].partitions, name
        assert specs[f"{app_id}-ticks"].partitions == TELEMETRY_PARTITIONS
        assert specs[f"{app_id}-__assignor-__leader"].partitions == 1
        for name, compacted in ((f"{app_id}-devices-changelog", True), (f"{app_id}-ticks", False)):
            (answer,) = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, name)])
            configs = {key: value for key, value, *_ in answer.resources[0][4]}
            assert (configs["cleanup.policy"] == "compact") is compacted, (name, configs["cleanup.policy"])
    finally:
        await admin.close()
