"""The ops-listener flags every long-running command shares: `--ops-host` and `--ops-port`
(also `PRINTFLEET_<COMPONENT>_OPS_HOST` / `_OPS_PORT`), where `/metrics`, `/livez` and
`/readyz` are served (common/ops.py).

The settings classes default to no listener (port -1), so that code and tests that build
a component get none unless they ask; the commands default to the component's fixed
port (common/ops.py: 18445 gateway, 18446 worker, 18447 sink, 18449 dashboard, 18450 alerts forward), which this module fills in
when neither the flag nor the variable says otherwise.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from typing import Any


def add_arguments(parser: argparse.ArgumentParser, default_port: int) -> None:
    group = parser.add_argument_group("Metrics and health (also PRINTFLEET_<COMPONENT>_OPS_<FLAG>)")
    group.add_argument("--ops-host", help="address of /metrics, /livez and /readyz (default 127.0.0.1; "
                       "0.0.0.0 to let Prometheus and probes in from other hosts)")
    group.add_argument("--ops-port", type=int,
                       help=f"port of /metrics, /livez and /readyz (default {default_port}; 0: any free port; -1: off)")


def port(args: argparse.Namespace, component: str, default_port: int, env: Mapping[str, str] | None = None,
         config: Mapping[str, Any] | None = None) -> int | None:
    """The --ops-port to hand to `common.settings.build`: the flag, else None when the
    variable or the component's table of the configuration file (`config`) sets it
    (build reads them), else the command's default."""
    env = os.environ if env is None else env
    if args.ops_port is not None:
        return int(args.ops_port)
    if env.get(f"PRINTFLEET_{component.upper()}_OPS_PORT") or "ops_port" in (config or {}):
        return None
    return default_port
