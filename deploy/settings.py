"""Settings of the local stack, read once from flags and `PRINTFLEET_*` environment."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

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

    @property
    def clickhouse_url(self) -> str:
        return f"http://127.0.0.1:{self.clickhouse_http_port}"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: object) -> StackSettings:
        """Settings from `PRINTFLEET_<FIELD>` variables (e.g. PRINTFLEET_KAFKA_PORT);
        `overrides` (flags) that are not None win. Raises ValueError naming the variable."""
        return build(cls, "", env, **overrides)
