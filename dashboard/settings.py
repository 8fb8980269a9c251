"""Settings of `printfleet dashboard`: one object, from the `[dashboard]` table of the
configuration file, PRINTFLEET_DASHBOARD_* variables and flags (common/settings.py)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final

from common.kafka.settings import KafkaSettings
from sinks.connection import ClickHouseSettings

DASHBOARD_PORT: Final = 18448
DASHBOARD_OPS_PORT: Final = 18449


@dataclass(frozen=True, slots=True)
class DashboardSettings:
    kafka: KafkaSettings
    clickhouse: ClickHouseSettings
    host: str = "127.0.0.1"
    port: int = DASHBOARD_PORT  # 0: any free port (tests)
    users_file: Path = Path(".stack/dashboard-users.toml")
    # HTTPS with this certificate chain and key (PEM); without them plain HTTP, for
    # 127.0.0.1 or behind a TLS-terminating proxy. With TLS the session cookie is Secure.
    tls_cert: Path | None = None
    tls_key: Path | None = None
    # A printer not heard of for this long is shown offline, whatever its last record
    # says. The worker re-emits an unchanged printer's state every 300 s (streams/
    # fleet_state.py refresh_s) and marks a silent one UNREACHABLE itself after 3 missed
    # heartbeats; this catches what the worker cannot tell: the worker (or the whole
    # pipeline) being down. So it must exceed the refresh period, or every idle printer
    # would blink offline between two refreshes.
    offline_after_s: float = 360.0
    offline_check_s: float = 5.0  # how often offline is re-evaluated on the server's clock
    sse_queue_max: int = 1000  # events a page may lag behind before its stream is closed
    keepalive_s: float = 15.0
    recent_alerts_max: int = 500
    # The nominal printhead life the remaining life is shown against: the stream worker's
    # (streams/alert_rules.py RuleSettings.printhead_life_h).
    printhead_life_h: float = 1400.0
    # /metrics, /livez, /readyz. -1: none (`printfleet dashboard` defaults to 18449); 0: any free port.
    ops_host: str = "127.0.0.1"
    ops_port: int = -1

    def __post_init__(self) -> None:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls_cert and tls_key go together")
        if self.offline_after_s <= 0 or self.offline_check_s <= 0 or self.keepalive_s <= 0:
            raise ValueError("offline_after_s, offline_check_s and keepalive_s must be positive")
        if self.sse_queue_max < 1 or self.recent_alerts_max < 1:
            raise ValueError("sse_queue_max and recent_alerts_max must be at least 1")
        if self.printhead_life_h <= 0:
            raise ValueError("printhead_life_h must be positive")
