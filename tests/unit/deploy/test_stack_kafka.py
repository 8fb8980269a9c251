"""The local stack's Kafka settings: replication 1 unless the user says otherwise."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

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


def test_a_three_node_stack_replicates_as_production_does() -> None:
    stack = StackSettings.from_env({}, kafka_brokers=3, kafka_port=29092, kafka_sasl_ssl_port=29094)
    kafka = stack.kafka({})
    assert kafka.bootstrap_servers == "127.0.0.1:29092,127.0.0.1:29102,127.0.0.1:29112"
    assert (kafka.replication_factor, kafka.min_insync_replicas) == (3, 2)
    assert stack.kafka_node_port(3, stack.kafka_sasl_ssl_port) == 29114


def test_the_sasl_ssl_settings_name_the_stacks_secrets(tmp_path: Path) -> None:
    from deploy.kafka_secrets import KafkaSecrets

    stack = StackSettings.from_env({}, state_dir=tmp_path, kafka_sasl_ssl_port=29094)
    KafkaSecrets.ensure(stack.kafka_secrets_dir)
    kafka = stack.kafka_sasl_ssl(user="reader", mechanism="SCRAM-SHA-256")
    assert (kafka.bootstrap_servers, kafka.security_protocol, kafka.sasl_mechanism, kafka.sasl_username) == (
        "127.0.0.1:29094", "SASL_SSL", "SCRAM-SHA-256", "reader")
    assert kafka.password() == KafkaSecrets(stack.kafka_secrets_dir).users()["reader"]


def test_the_secrets_keep_their_passwords_and_renew_the_broker_certificate(tmp_path: Path) -> None:
    from deploy.kafka_secrets import KafkaSecrets

    first = KafkaSecrets.ensure(tmp_path)
    passwords, keystore = first.users(), first.keystore.read_bytes()
    again = KafkaSecrets.ensure(tmp_path)
    assert again.users() == passwords and len(set(passwords.values())) == 2
    assert again.keystore.read_bytes() != keystore
    assert b"PRIVATE KEY" in keystore and b"CERTIFICATE" in keystore
    assert all(f'user_{u}="{p}"' in again.plain_jaas() for u, p in passwords.items())
    client = x509.load_pem_x509_certificate(again.client_certificate.cert_file.read_bytes())
    assert client.subject.rfc4514_string() == "CN=printfleet-client"
    usage = client.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.CLIENT_AUTH]


def test_nodes_out_of_range_are_refused() -> None:
    with pytest.raises(ValueError, match="from 1 to 9"):
        StackSettings.from_env({}, kafka_brokers=0)
