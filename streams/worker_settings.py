"""Settings of a stream worker (`printfleet worker`): one object, from flags and
PRINTFLEET_WORKER_* variables (see common/settings.py)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from common.kafka.settings import KafkaSettings
from streams.alert_device import AlertDeviceSettings
from streams.device import DeviceSettings
from streams.fleet_state import FleetSettings
from streams.utilisation import UtilisationSettings


@dataclass(frozen=True, slots=True)
class WorkerSettings:
    kafka: KafkaSettings
    # The consumer group and the prefix of the internal topics (the Kafka topic prefix
    # goes before it): workers with the same id share the partitions; another id is an
    # independent copy of the pipeline.
    app_id: str = "printfleet-streams"
    data_dir: Path = Path(".stack/worker")  # Faust's own bookkeeping, per worker
    heartbeat_interval_s: float = 10.0  # the collector's status poll (site.toml cadence)
    offline_after_intervals: int = 3  # no heartbeat for this many intervals: offline
    allowed_lateness_s: float = 600.0  # utilisation: records this late still count
    tick_every_s: float = 5.0  # wall time between timer passes (offline, windows)
    # State goes to the changelog at most this often per partition; after a crash the
    # worker re-reads its input from the last checkpoint (a replay changes nothing).
    checkpoint_every_s: float = 1.0
    batch_max: int = 2000  # records handled per batch
    batch_within_s: float = 0.2  # a partial batch waits at most this long
    benchmark_min_sites: int = 5  # k: cohorts of fewer sites are never published
    release_key_file: Path | None = None  # Ed25519 public key (PEM) of the release catalogue
    # Where a new app id starts reading: "earliest" (all retained telemetry) or "latest"
    # (only what arrives from now on). A running group always resumes where it was.
    start_at: str = "earliest"
    web_port: int = 0  # Faust's web view; 0 = off
    # A crashed worker's partitions move to the others after this long without its heartbeat.
    session_timeout_s: float = 30.0
    status_every_s: float = 10.0  # the progress line on stdout
    # /metrics, /livez, /readyz. -1: none (`printfleet worker` defaults to 18446,
    # printfleet/ops_flags.py); 0: any free port.
    ops_host: str = "127.0.0.1"
    ops_port: int = -1

    def __post_init__(self) -> None:
        if self.offline_after_intervals < 1 or self.heartbeat_interval_s <= 0:
            raise ValueError("heartbeat_interval_s must be > 0 and offline_after_intervals >= 1")
        if self.batch_max < 1 or self.batch_within_s <= 0 or self.tick_every_s <= 0:
            raise ValueError("batch_max, batch_within_s and tick_every_s must be positive")
        if self.start_at not in ("earliest", "latest"):
            raise ValueError(f"start_at must be earliest or latest, not {self.start_at!r}")
        if self.benchmark_min_sites < 5:
            raise ValueError("benchmark_min_sites must be >= 5 (the benchmark schema promises it)")

    def device(self) -> DeviceSettings:
        fleet = FleetSettings(heartbeat_interval_s=self.heartbeat_interval_s, missed_intervals=self.offline_after_intervals)
        return DeviceSettings(
            fleet=fleet,
            utilisation=UtilisationSettings(
                allowed_lateness_s=self.allowed_lateness_s, max_hold_s=fleet.offline_after_ms / 1000
            ),
            alerts=AlertDeviceSettings(),
        )
