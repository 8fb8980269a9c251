"""The Kafka flags every cloud-side command shares, and the one `KafkaSettings` they make.

Precedence: flags, then `PRINTFLEET_KAFKA_*` variables, then the `[kafka]` table of the
configuration file, then defaults. Without bootstrap servers from any of them, the command
talks to the local stack (`printfleet stack up`) with its replication (deploy/settings.py)
if one is set up here, and refuses to start otherwise.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Final

from common.kafka.settings import MECHANISMS, PROTOCOLS, KafkaSettings
from common.settings import SettingsError, build
from deploy.settings import StackSettings
from printfleet.config_flags import Config
from printfleet.password_flags import refuse_password_flag


# KafkaSettings fields whose flag is `--kafka-<field>`.
_SECURITY: Final = ("security_protocol", "sasl_mechanism", "sasl_username", "sasl_password_file",
                    "ssl_ca_file", "ssl_cert_file", "ssl_key_file")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("Kafka (also PRINTFLEET_KAFKA_<FLAG>)")
    group.add_argument("--kafka-bootstrap", metavar="HOST:PORT[,...]",
                       help="bootstrap servers (default: the local stack's)")
    group.add_argument("--topic-prefix", help="put before every topic and group name (default none)")
    group.add_argument("--replication-factor", type=int, help="of topics created (default 3; local stack 1)")
    group.add_argument("--min-insync-replicas", type=int, help="of topics created (default 2; local stack 1)")
    group.add_argument("--kafka-security-protocol", choices=PROTOCOLS, help="default PLAINTEXT")
    group.add_argument("--kafka-sasl-mechanism", choices=MECHANISMS, help="default SCRAM-SHA-512")
    group.add_argument("--kafka-sasl-username", metavar="USER")
    group.add_argument("--kafka-sasl-password-file", type=Path, metavar="FILE",
                       help="file holding the SASL password (or PRINTFLEET_KAFKA_SASL_PASSWORD; never a flag)")
    refuse_password_flag(group, "--kafka-sasl-password", "PRINTFLEET_KAFKA_SASL_PASSWORD")
    group.add_argument("--kafka-ssl-ca-file", type=Path, metavar="PEM", help="CA of the brokers (default: the system's)")
    group.add_argument("--kafka-ssl-cert-file", type=Path, metavar="PEM", help="client certificate, for mutual TLS")
    group.add_argument("--kafka-ssl-key-file", type=Path, metavar="PEM", help="its private key")


def settings(args: argparse.Namespace, env: Mapping[str, str] | None = None, config: Config = Config()) -> KafkaSettings:
    """Raises ValueError naming the flag, variable or file key that is wrong, or saying
    that no Kafka address was given anywhere and no local stack is set up here."""
    env = os.environ if env is None else env
    flags = {
        "bootstrap_servers": args.kafka_bootstrap,
        "topic_prefix": args.topic_prefix,
        "replication_factor": args.replication_factor,
        "min_insync_replicas": args.min_insync_replicas,
        **{name: getattr(args, f"kafka_{name}") for name in _SECURITY},
    }
    table = config.table("kafka")
    if args.kafka_bootstrap or env.get("PRINTFLEET_KAFKA_BOOTSTRAP_SERVERS") or table.get("bootstrap_servers"):
        return build(KafkaSettings, "kafka", env, config=table, config_name=config.name("kafka"), **flags)
    stack = local_stack(env, "Kafka address: give --kafka-bootstrap, PRINTFLEET_KAFKA_BOOTSTRAP_SERVERS "
                             "or [kafka] bootstrap_servers")
    return stack.kafka(env, config=table, config_name=config.name("kafka"), **flags)


def local_stack(env: Mapping[str, str], missing: str) -> StackSettings:
    """The local stack, when it is set up here (`printfleet stack up` made its state
    folder); else SettingsError "no <missing>": a production command missing an address
    must not quietly talk to localhost."""
    stack = StackSettings.from_env(env)
    if not (stack.state_dir / "kafka").is_dir():
        raise SettingsError(f"no {missing} (the local stack's is used only where `printfleet stack up` "
                            f"has run; there is none in {stack.state_dir.resolve()})")
    return stack
