"""`--config FILE` and `--print-config`, shared by the gateway, worker and sink.

One TOML file may serve every cloud-side component: each reads its own table (`[gateway]`,
`[worker]`, `[sink]`) and the shared `[kafka]` and `[clickhouse]` tables; keys are the
settings' field names, as `--print-config` shows them. Precedence, for every setting:
defaults, then the file, then `PRINTFLEET_*` variables, then flags.

    [kafka]
    bootstrap_servers = "kafka-1.internal:9093,kafka-2.internal:9093"
    security_protocol = "SASL_SSL"
    sasl_username = "printfleet"
    sasl_password_file = "/run/secrets/kafka-password"

    [sink]
    batch_max_records = 20000
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common.settings import Secret, SettingsError, load_config

TABLES = ("kafka", "clickhouse", "gateway", "worker", "sink", "dashboard")


@dataclass(frozen=True)
class Config:
    """The tables of the configuration file (none without one)."""

    path: Path | None = None
    tables: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def table(self, name: str) -> Mapping[str, Any]:
        return self.tables.get(name, {})

    def name(self, table: str) -> str:
        """How errors name a key's table, e.g. "printfleet.toml [sink]"."""
        return f"{self.path} [{table}]" if self.path else f"[{table}]"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, metavar="FILE",
                        help="TOML file of settings, below the environment and the flags (or PRINTFLEET_CONFIG)")
    parser.add_argument("--print-config", action="store_true",
                        help="print the effective settings (secrets hidden) and exit")


def load(args: argparse.Namespace, env: Mapping[str, str] | None = None) -> Config:
    """The file of `--config` or PRINTFLEET_CONFIG. Raises SettingsError naming the file,
    a table that no component reads, or a table that is not a table."""
    env = os.environ if env is None else env
    path = args.config or (Path(env["PRINTFLEET_CONFIG"]) if env.get("PRINTFLEET_CONFIG") else None)
    if path is None:
        return Config()
    tables = load_config(path)
    problems = [f"{path}: [{name}] is not a table of printfleet's (known: {', '.join(TABLES)})"
                for name in tables if name not in TABLES]
    problems += [f"{path}: {name} must be a table ([{name}])" for name, value in tables.items()
                 if name in TABLES and not isinstance(value, dict)]
    if problems:
        raise SettingsError("\n".join(problems))
    return Config(path, tables)


def render(settings: Any, table: str) -> str:
    """`settings` (a settings dataclass) as the TOML the configuration file takes: its own
    fields under `[table]`, nested settings under theirs; a secret as a comment, never
    its value; an unset optional setting as a comment."""
    own: list[str] = [f"[{table}]"]
    nested: list[str] = []
    for f in dataclasses.fields(settings):
        value = getattr(settings, f.name)
        if dataclasses.is_dataclass(value):
            nested += ["", render(value, f.name)]
        else:
            own.append(_line(f.name, value))
    return "\n".join([*own, *nested])


def _line(key: str, value: Any) -> str:
    if isinstance(value, Secret):
        return f"# {key} = (hidden)" if value else f"# {key} = (not set)"
    if value is None:
        return f"# {key} = (not set)"
    if isinstance(value, bool):
        return f"{key} = {'true' if value else 'false'}"
    if isinstance(value, int | float):
        return f"{key} = {value!r}"
    if isinstance(value, list | tuple | frozenset | set):
        return f"{key} = [" + ", ".join(_quote(str(v)) for v in value) + "]"
    return f"{key} = {_quote(str(value))}"


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
