"""Settings of the printer fleet simulator, read once from flags and `PRINTFLEET_SIM_*`.

Built by `printfleet simulate` (printfleet/cmd_simulate.py) or by a test or the demo, then
passed to `Fleet` and `SimulatorServer`. Nothing here reads the environment at import time.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from common.settings import build
from typing import Any, Final

REPO_ROOT: Final = Path(__file__).resolve().parents[2]
ENV_PREFIX: Final = "PRINTFLEET_SIM_"
MAX_PRINTERS: Final = 2000


def parse_start(text: str) -> int:
    """An ISO 8601 time as int milliseconds since the epoch.

    A time without a zone is taken as UTC: the simulator has no local site time zone, and
    a start time is a test knob, not a customer's wall clock. Raises ValueError.
    """
    moment = datetime.fromisoformat(text.strip())
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return int(moment.timestamp() * 1000)


@dataclass(frozen=True)
class SimulatorSettings:
    """What the simulator serves and how fast simulated time runs.

    `start_ms` None means "the wall clock when the fleet is built". `port` 0 picks a free
    port (tests); the server reports the one it got. `acceleration` is simulated seconds
    per real second, so 60 makes an hour pass in a minute.
    """

    printers: int = 20
    seed: int = 1
    acceleration: float = 60.0
    host: str = "127.0.0.1"
    port: int = 18443
    ca_dir: Path = REPO_ROOT / ".stack" / "site-ca"
    start_ms: int | None = None
    site_name: str = "Demo Site"
    progress_interval_s: float = 10.0
    # OPC UA (docs/opcua.md): the last `opcua_printers` printers are also OPC 40540
    # machines on one OPC UA server at `opcua_port` (4840: the registered OPC UA port).
    opcua_printers: int = 0
    opcua_port: int = 4840
    opcua_dir: Path = REPO_ROOT / ".stack" / "opcua"
    opcua_users_file: Path | None = None
    opcua_tick_s: float = 1.0

    def __post_init__(self) -> None:
        if not 1 <= self.printers <= MAX_PRINTERS:
            raise ValueError(f"printers must be 1..{MAX_PRINTERS}, not {self.printers}")
        if not self.acceleration > 0:
            raise ValueError(f"acceleration must be > 0, not {self.acceleration}")
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port must be 0..65535, not {self.port}")
        if not self.site_name.strip():
            raise ValueError("site_name must not be empty")
        if not self.progress_interval_s > 0:
            raise ValueError(f"progress_interval_s must be > 0, not {self.progress_interval_s}")
        if not 0 <= self.opcua_port <= 65535:
            raise ValueError(f"opcua_port must be 0..65535, not {self.opcua_port}")
        if not 0 <= self.opcua_printers <= self.printers:
            raise ValueError(f"opcua_printers must be 0..printers ({self.printers}), not {self.opcua_printers}")
        if not self.opcua_tick_s > 0:
            raise ValueError(f"opcua_tick_s must be > 0, not {self.opcua_tick_s}")

    def resolved_start_ms(self) -> int:
        """`start_ms`, or the wall clock now when it is None."""
        return self.start_ms if self.start_ms is not None else time.time_ns() // 1_000_000

    @classmethod
    def from_env(
        cls, env: Mapping[str, str] | None = None, **overrides: Any
    ) -> SimulatorSettings:
        """Settings from `PRINTFLEET_SIM_<FIELD>` variables (e.g. PRINTFLEET_SIM_PRINTERS,
        PRINTFLEET_SIM_START as ISO time); `overrides` (flags) win, None overrides are
        ignored so argparse defaults of None fall through. `start` (ISO text) may be given
        instead of `start_ms`. Raises ValueError naming the bad variable or value.
        """
        env = os.environ if env is None else env
        start, name = overrides.pop("start", None), "start"
        if start is None and env.get(f"{ENV_PREFIX}START"):
            name = f"{ENV_PREFIX}START"
            start = env[name]
        if isinstance(start, str):
            try:
                overrides["start_ms"] = parse_start(start)
            except ValueError as exc:
                raise ValueError(f"{name}={start!r}: {exc}") from None
        return build(cls, "sim", env, **overrides)
