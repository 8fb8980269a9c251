"""The local stack's Kafka settings: replication 1 unless the user says otherwise."""

from __future__ import annotations

from deploy.settings import StackSettings


def test_the_local_stack_replicates_once_by_default() -> None:
    kafka = StackSettings.from_env({}).kafka({})
    assert (kafka.bootstrap_servers, kafka.replication_factor, kafka.min_insync_replicas) == ("127.0.0.1:19092", 1, 1)


def test_variables_and_flags_still_apply_on_the_local_stack() -> None:
    env = {"PRINTFLEET_KAFKA_REPLICATION_FACTOR": "3", "PRINTFLEET_KAFKA_MIN_INSYNC_REPLICAS": "2",
           "PRINTFLEET_KAFKA_TOPIC_PREFIX": "a."}
    kafka = StackSettings.from_env(env).kafka(env)
    assert (kafka.replication_factor, kafka.min_insync_replicas, kafka.topic_prefix) == (3, 2, "a.")
    assert StackSettings.from_env(env).kafka(env, topic_prefix="b.").topic_prefix == "b."
