"""Settings of the local stack, read once from flags and `PRINTFLEET_*` environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from common.kafka.settings import KafkaSettings
from common.settings import build

REPO_ROOT = Path(__file__).resolve().parent.parent


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
    kafka_heap: str = "768m"
    kafka_lib: Path = REPO_ROOT / "deploy" / "kafka" / "target" / "lib"
    clickhouse_http_port: int = 18123
    clickhouse_tcp_port: int = 19000
    start_timeout_s: float = 90.0
    stop_timeout_s: float = 60.0

    @property
    def logs(self) -> Path:
        return self.log_dir or self.state_dir / "logs"

    @property
    def kafka_bootstrap(self) -> str:
        return f"127.0.0.1:{self.kafka_port}"

    def kafka(self, env: Mapping[str, str] | None = None, **flags: object) -> KafkaSettings:
        """Kafka settings for this stack: its one broker holds one replica of each topic.

        The one place the local stack overrides the production defaults of
        `KafkaSettings` (replication factor 3, min.insync.replicas 2). `flags` that are
        not None and `PRINTFLEET_KAFKA_*` variables still apply (e.g. a topic prefix).
        """
        env = os.environ if env is None else env
        local = {"bootstrap_servers": self.kafka_bootstrap, "replication_factor": 1, "min_insync_replicas": 1}
        # Below the variables and the flags: they still say what the user set.
        local = {k: v for k, v in local.items() if not env.get(f"PRINTFLEET_KAFKA_{k.upper()}")}
        return build(KafkaSettings, "kafka", env, **{**local, **{k: v for k, v in flags.items() if v is not None}})

    @property
    def clickhouse_url(self) -> str:
        return f"http://127.0.0.1:{self.clickhouse_http_port}"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: object) -> StackSettings:
        """Settings from `PRINTFLEET_<FIELD>` variables (e.g. PRINTFLEET_KAFKA_PORT);
        `overrides` (flags) that are not None win. Raises ValueError naming the variable."""
        return build(cls, "", env, **overrides)
