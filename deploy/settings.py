"""Settings of the local stack, read once from flags and `PRINTFLEET_*` environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common.kafka.settings import KafkaSettings
from common.settings import build

REPO_ROOT = Path(__file__).resolve().parent.parent
# Between the ports of one Kafka node and the next (`kafka_node_port`).
PORT_STEP = 10


@dataclass(frozen=True)
class StackSettings:
    """Where the local Kafka broker and ClickHouse server listen and keep their files.

    The default ports sit away from Kafka's 9092 and ClickHouse's 8123/9000 so that the
    stack does not collide with servers a developer already runs on a shared machine.
    """

    state_dir: Path = REPO_ROOT / ".stack"
    log_dir: Path | None = None
    kafka_port: int = 19092
    kafka_controller_port: int = 19093
    # Each node's SASL_SSL listener (SCRAM and PLAIN; deploy/kafka_secrets.py).
    kafka_sasl_ssl_port: int = 19094
    # Each node's SSL listener, which requires a client certificate (mutual TLS).
    kafka_ssl_port: int = 19095
    kafka_brokers: int = 1
    kafka_heap: str = "768m"
    kafka_lib: Path = REPO_ROOT / "deploy" / "kafka" / "target" / "lib"
    clickhouse_http_port: int = 18123
    clickhouse_tcp_port: int = 19000
    start_timeout_s: float = 90.0
    stop_timeout_s: float = 60.0

    @property
    def logs(self) -> Path:
        return self.log_dir or self.state_dir / "logs"

    def __post_init__(self) -> None:
        if not 1 <= self.kafka_brokers <= 9:
            raise ValueError(f"Kafka brokers {self.kafka_brokers}: from 1 to 9")

    def kafka_node_port(self, node: int, first: int | None = None) -> int:
        """Port `first` (default: the client port) of node `node`: 10 apart per node."""
        return (self.kafka_port if first is None else first) + PORT_STEP * (node - 1)

    @property
    def kafka_bootstrap(self) -> str:
        return ",".join(f"127.0.0.1:{self.kafka_node_port(n)}" for n in range(1, self.kafka_brokers + 1))

    @property
    def kafka_secrets_dir(self) -> Path:
        return self.state_dir / "kafka-secrets"

    def kafka(self, env: Mapping[str, str] | None = None, *, config: Mapping[str, Any] | None = None,
              config_name: str = "", **flags: Any) -> KafkaSettings:
        """Kafka settings for this stack's PLAINTEXT listeners.

        The one place the local stack overrides the production defaults of
        `KafkaSettings` (replication factor 3, min.insync.replicas 2): one broker holds
        one replica of each topic; three or more replicate as production does. `flags`
        that are not None, `PRINTFLEET_KAFKA_*` variables and the `[kafka]` table of a
        configuration file (`config`) still apply (e.g. a prefix).
        """
        env = os.environ if env is None else env
        config = config or {}
        replicas = min(3, self.kafka_brokers)
        local = {"bootstrap_servers": self.kafka_bootstrap, "replication_factor": replicas,
                 "min_insync_replicas": max(1, min(2, replicas - 1))}
        # Below the file, the variables and the flags: they still say what the user set.
        local = {k: v for k, v in local.items() if not env.get(f"PRINTFLEET_KAFKA_{k.upper()}") and k not in config}
        return build(KafkaSettings, "kafka", env, config=config, config_name=config_name,
                     **{**local, **{k: v for k, v in flags.items() if v is not None}})

    def kafka_mutual_tls(self, **flags: Any) -> KafkaSettings:
        """Settings for this stack's SSL listeners with the client certificate of
        deploy/kafka_secrets.py."""
        secrets = self.kafka_secrets_dir
        bootstrap = ",".join(f"127.0.0.1:{self.kafka_node_port(n, self.kafka_ssl_port)}"
                             for n in range(1, self.kafka_brokers + 1))
        return self.kafka({}, bootstrap_servers=bootstrap, security_protocol="SSL", ssl_ca_file=secrets / "ca.pem",
                          ssl_cert_file=secrets / "printfleet-client.pem",
                          ssl_key_file=secrets / "printfleet-client-key.pem", **flags)

    def kafka_sasl_ssl(self, user: str = "printfleet", mechanism: str = "SCRAM-SHA-512", **flags: Any) -> KafkaSettings:
        """Settings for this stack's SASL_SSL listeners as `user` (deploy/kafka_secrets.py)."""
        secrets = self.kafka_secrets_dir
        bootstrap = ",".join(f"127.0.0.1:{self.kafka_node_port(n, self.kafka_sasl_ssl_port)}"
                             for n in range(1, self.kafka_brokers + 1))
        return self.kafka({}, bootstrap_servers=bootstrap, security_protocol="SASL_SSL", sasl_mechanism=mechanism,
                          sasl_username=user, sasl_password_file=secrets / f"{user}.password",
                          ssl_ca_file=secrets / "ca.pem", **flags)

    @property
    def clickhouse_url(self) -> str:
        return f"http://127.0.0.1:{self.clickhouse_http_port}"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> StackSettings:
        """Settings from `PRINTFLEET_<FIELD>` variables (e.g. PRINTFLEET_KAFKA_PORT);
        `overrides` (flags) that are not None win. Raises ValueError naming the variable."""
        return build(cls, "", env, **overrides)
