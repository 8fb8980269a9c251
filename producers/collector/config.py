"""The site collector's settings, read from `site.toml` (`printfleet collector --config`).

    site_id = "acme-berlin"
    site_secret = "..."                 # keys the pseudonyms; never leaves the site
    state_dir = "/var/lib/printfleet"   # spool, cursors, rejected batches
    spool_max_bytes = 268435456
    status_port = 8080                  # local status page, http://127.0.0.1:8080/status

    [gateway]
    url = "https://ingest.example.com"
    token = "..."
    ca_file = "gateway-ca.pem"          # omit to use the system's trust store

    [printers]
    ca_file = "site-ca.pem"             # the CA that issued the printers' certificates
    urls = ["https://10.0.0.21/printers/p001/", ...]

    [cadence]                           # seconds between polls, per endpoint
    heartbeat_s = 10
    events_s = 10
    ...

Relative paths are relative to the file. Unknown keys are an error, so a typo does not
silently fall back to a default.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Cadence:
    heartbeat_s: float = 10.0
    events_s: float = 10.0
    jobs_s: float = 30.0
    logs_s: float = 300.0
    counters_s: float = 300.0
    consumables_s: float = 300.0
    identity_s: float = 3600.0


@dataclass(frozen=True)
class CollectorSettings:
    site_id: str
    site_secret: str = field(repr=False)
    state_dir: Path
    gateway_url: str
    gateway_token: str = field(repr=False)
    printer_urls: tuple[str, ...]
    printer_ca_file: Path | None = None
    gateway_ca_file: Path | None = None
    spool_max_bytes: int = 256 << 20
    status_port: int = 8080
    status_every_s: float = 10.0
    request_timeout_s: float = 10.0
    upload_max_records: int = 5_000
    cadence: Cadence = Cadence()

    @classmethod
    def load(cls, path: Path, **overrides: Any) -> CollectorSettings:
        """Parse `path`; `overrides` (flags) that are not None win. Raises ValueError."""
        try:
            data = tomllib.loads(path.read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ValueError(f"collector config {path}: {exc}") from None
        base = path.parent

        def rel(value: str | None) -> Path | None:
            return None if value is None else (base / value).resolve()

        try:
            gateway = data.pop("gateway")
            printers = data.pop("printers")
            cadence = Cadence(**data.pop("cadence", {}))
            values: dict[str, Any] = {
                "site_id": data.pop("site_id"),
                "site_secret": data.pop("site_secret"),
                "state_dir": rel(data.pop("state_dir")),
                "gateway_url": gateway.pop("url").rstrip("/"),
                "gateway_token": gateway.pop("token"),
                "gateway_ca_file": rel(gateway.pop("ca_file", None)),
                "printer_urls": tuple(u if u.endswith("/") else u + "/" for u in printers.pop("urls")),
                "printer_ca_file": rel(printers.pop("ca_file", None)),
                "cadence": cadence,
            }
            known = {f.name for f in fields(cls)}
            for key in list(data):
                if key not in known:
                    raise ValueError(f"unknown setting {key!r}")
                values[key] = data.pop(key)
            leftovers = [f"gateway.{k}" for k in gateway] + [f"printers.{k}" for k in printers]
            if leftovers:
                raise ValueError(f"unknown settings {leftovers}")
        except KeyError as exc:
            raise ValueError(f"collector config {path}: missing {exc}") from None
        except (TypeError, ValueError) as exc:
            raise ValueError(f"collector config {path}: {exc}") from None
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


def render(settings: CollectorSettings) -> str:
    """`settings` as a site.toml that `CollectorSettings.load` reads back (absolute paths).

    Used by the demo and the tests to hand a configured site to `printfleet collector`.
    """

    def q(value: object) -> str:
        return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'

    lines = [
        f"site_id = {q(settings.site_id)}",
        f"site_secret = {q(settings.site_secret)}",
        f"state_dir = {q(settings.state_dir)}",
        f"spool_max_bytes = {settings.spool_max_bytes}",
        f"status_port = {settings.status_port}",
        f"status_every_s = {settings.status_every_s}",
        "",
        "[gateway]",
        f"url = {q(settings.gateway_url)}",
        f"token = {q(settings.gateway_token)}",
    ]
    if settings.gateway_ca_file:
        lines.append(f"ca_file = {q(settings.gateway_ca_file)}")
    lines += ["", "[printers]", "urls = [" + ", ".join(q(u) for u in settings.printer_urls) + "]"]
    if settings.printer_ca_file:
        lines.append(f"ca_file = {q(settings.printer_ca_file)}")
    lines += ["", "[cadence]"] + [f"{f.name} = {getattr(settings.cadence, f.name)}" for f in fields(Cadence)]
    return "\n".join(lines) + "\n"
