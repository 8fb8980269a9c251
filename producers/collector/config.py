"""The site collector's settings, read from `site.toml` (`printfleet collector --config`).

    site_id = "acme-berlin"
    site_secret = "..."                 # keys the pseudonyms; never leaves the site
    state_dir = "/var/lib/printfleet"   # spool, cursors, rejected batches
    spool_max_bytes = 268435456
    status_host = "127.0.0.1"           # status page, /metrics, /livez, /readyz: this address
    status_port = 8080                  # local status page, http://127.0.0.1:8080/status (-1: off)
    status_every_s = 10                 # status line period
    request_timeout_s = 10              # per printer request (uploads: at least 30)
    upload_max_records = 5000           # records per uploaded batch
    kept_max_records = 100000           # records the gateway refused, kept aside to send again
    kept_max_bytes = 67108864           # past either bound the oldest move to rejected/
    resend_kept_s = 60                  # how often kept records are sent again

    [gateway]
    url = "https://ingest.example.com"
    token = "..."
    ca_file = "gateway-ca.pem"          # omit to use the system's trust store

    [printers]
    ca_file = "site-ca.pem"             # the CA that issued the printers' certificates
    urls = ["https://10.0.0.21/printers/p001/", ...]

    [[printer]]                         # one printer and its driver; any number of them
    driver = "opcua"                    # or "printer-api": the keys in printer_tables.py
    url = "opc.tcp://10.0.0.30:4840"
    ...

    [cadence]                           # seconds between polls, per endpoint
    heartbeat_s = 10
    events_s = 10
    ...

`[printers] urls` and `[[printer]]` tables may be used together; at least one printer's
place must be given (`urls = []` alone is a site without printers). A `[[printer]]`
names its `driver` and `url` and then only that driver's keys (printer_tables.py); a
URL may appear once.

Relative paths are relative to the file. Unknown keys are an error, so a typo does not
silently fall back to a default; so are missing keys and values of the wrong type
(`CollectorConfigError`, naming the file, the key and what was expected).
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from common.settings import build
from producers.collector import printer_tables
from producers.collector.printer_tables import PrinterApiPrinter, PrinterConfig
from producers.collector.toml_values import INTEGER, NUMBER, PATH, STRING, STRINGS, did_you_mean, fits, short, toml_type
from producers.errors import CollectorConfigError


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
    status_host: str = "127.0.0.1"
    status_port: int = 8080
    status_every_s: float = 10.0
    request_timeout_s: float = 10.0
    upload_max_records: int = 5_000
    kept_max_records: int = 100_000
    kept_max_bytes: int = 64 << 20
    resend_kept_s: float = 60.0
    cadence: Cadence = Cadence()
    printers: tuple[PrinterConfig, ...] = ()  # the [[printer]] tables, after [printers] urls

    def all_printers(self) -> tuple[PrinterConfig, ...]:
        """Every printer of the site: `[printers] urls` (printer API, `printer_ca_file`),
        then the `[[printer]]` tables, in the file's order."""
        legacy = tuple(PrinterApiPrinter(url, self.printer_ca_file) for url in self.printer_urls)
        return legacy + self.printers

    @classmethod
    def load(cls, path: Path, env: Mapping[str, str] | None = None, **overrides: Any) -> CollectorSettings:
        """Parse `path`; `PRINTFLEET_COLLECTOR_*` variables of `env` (default: the
        process's) win over it, and `overrides` (flags) that are not None over both.

        Raises `CollectorConfigError` (a ValueError) naming the file and the first key
        that is missing, unknown or of the wrong type, or why the file cannot be read.
        """
        data = _read(path)
        _check(path, data)
        gateway, printers = data["gateway"], data.get("printers", {})
        base = path.parent

        def rel(value: str | None) -> Path | None:
            return None if value is None else (base / value).resolve()

        values: dict[str, Any] = {key: data[key] for key in _TOP if key in data}
        values.update(
            state_dir=rel(data["state_dir"]),
            gateway_url=gateway["url"].rstrip("/"),
            gateway_token=gateway["token"],
            gateway_ca_file=rel(gateway.get("ca_file")),
            printer_urls=tuple(printer_tables.base_url(u) for u in printers.get("urls", [])),
            printer_ca_file=rel(printers.get("ca_file")),
            cadence=Cadence(**{k: float(v) for k, v in data.get("cadence", {}).items()}),
        )
        for key, expected in _TOP.items():
            if expected is NUMBER and key in values:
                values[key] = float(values[key])
        # Then the environment (PRINTFLEET_COLLECTOR_<FIELD>, e.g. a token from a secret
        # store: PRINTFLEET_COLLECTOR_GATEWAY_TOKEN), then the flags: the precedence of
        # every printfleet command (common/settings.py).
        cadence = values.pop("cadence")
        tables = printer_tables.read(path, data.get("printer", []), rel, values["printer_ca_file"])
        printer_tables.check_unique_urls(path, values["printer_urls"], tables)
        return build(cls, "collector", env, config=values, config_name=str(path), cadence=cadence,
                     printers=tables, **overrides)


# What site.toml may hold: top-level keys, then one table of keys each (the [[printer]]
# tables: printer_tables.py). The values are what `_check` requires; messages quote them.
_TOP: dict[str, str] = {
    "site_id": STRING,
    "site_secret": STRING,
    "state_dir": PATH,
    "spool_max_bytes": INTEGER,
    "status_host": STRING,
    "status_port": INTEGER,
    "status_every_s": NUMBER,
    "request_timeout_s": NUMBER,
    "upload_max_records": INTEGER,
    "kept_max_records": INTEGER,
    "kept_max_bytes": INTEGER,
    "resend_kept_s": NUMBER,
}
_TABLES: dict[str, dict[str, str]] = {
    "gateway": {"url": STRING, "token": STRING, "ca_file": PATH},
    "printers": {"urls": STRINGS, "ca_file": PATH},
    "cadence": {f.name: NUMBER for f in fields(Cadence)},
}
_REQUIRED = {("", "site_id"), ("", "site_secret"), ("", "state_dir"),
             ("gateway", "url"), ("gateway", "token"), ("printers", "urls")}
_SECRET = {("", "site_secret"), ("gateway", "token")}


def _read(path: Path) -> dict[str, Any]:
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise CollectorConfigError(path, f"cannot read it: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise CollectorConfigError(path, "not valid TOML: not UTF-8 text") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CollectorConfigError(path, f"not valid TOML: {exc}") from None


def _check(path: Path, data: dict[str, Any]) -> None:
    """Raise `CollectorConfigError` for the first key that is unknown, missing or of the
    wrong type."""
    for key, value in data.items():
        if key in _TABLES:
            if not isinstance(value, dict):
                raise CollectorConfigError(path, f"[{key}] must be a table, got {toml_type(value)}", key)
        elif key == printer_tables.TABLE:
            if not (isinstance(value, list) and all(isinstance(v, dict) for v in value)):
                table = printer_tables.TABLE
                raise CollectorConfigError(
                    path, f"{table} must be an array of tables ([[{table}]]), got {toml_type(value)}", table,
                )
        elif key not in _TOP:
            known = [*_TOP, *(f"[{t}]" for t in _TABLES), f"[[{printer_tables.TABLE}]]"]
            raise CollectorConfigError(
                path, f"unknown key {key}{did_you_mean(key, [*_TOP, *_TABLES, printer_tables.TABLE])}; "
                      f"known top-level keys: {', '.join(known)}", key,
            )
    tables: list[tuple[str, dict[str, Any], dict[str, str]]] = [("", data, _TOP)]
    tables += [(name, data.get(name, {}), keys) for name, keys in _TABLES.items()]
    for table, values, keys in tables:
        if table:
            for key in values:
                if key not in keys:
                    raise CollectorConfigError(
                        path, f"unknown key [{table}] {key}{did_you_mean(key, list(keys))}; "
                              f"known keys in [{table}]: {', '.join(keys)}", f"[{table}] {key}",
                    )
        for key, expected in keys.items():
            name = f"[{table}] {key}" if table else key
            if key not in values:
                if (table, key) == ("printers", "urls") and printer_tables.TABLE in data:
                    continue  # the printers are in [[printer]] tables
                if (table, key) in _REQUIRED:
                    also = f" or [[{printer_tables.TABLE}]] tables" if (table, key) == ("printers", "urls") else ""
                    raise CollectorConfigError(path, f"missing key {name} ({expected}){also}", name)
                continue
            value = values[key]
            if not fits(value, expected):
                shown = "" if (table, key) in _SECRET else f" ({short(value)})"
                raise CollectorConfigError(
                    path, f"{name} must be {expected}, got {toml_type(value)}{shown}", name,
                )


def render(settings: CollectorSettings, *, hide_secrets: bool = False) -> str:
    """`settings` as a site.toml that `CollectorSettings.load` reads back (absolute paths).

    Used by the demo and the tests to hand a configured site to `printfleet collector`,
    and with `hide_secrets` (the site secret and the token as comments) by
    `printfleet collector --print-config`.
    """

    def q(value: object) -> str:
        return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'

    def secret(key: str, value: str) -> str:
        return f"# {key} = (hidden)" if hide_secrets else f"{key} = {q(value)}"

    lines = [
        f"site_id = {q(settings.site_id)}",
        secret("site_secret", settings.site_secret),
        f"state_dir = {q(settings.state_dir)}",
        f"spool_max_bytes = {settings.spool_max_bytes}",
        f"status_host = {q(settings.status_host)}",
        f"status_port = {settings.status_port}",
        f"status_every_s = {settings.status_every_s}",
        f"kept_max_records = {settings.kept_max_records}",
        f"kept_max_bytes = {settings.kept_max_bytes}",
        f"resend_kept_s = {settings.resend_kept_s}",
        "",
        "[gateway]",
        f"url = {q(settings.gateway_url)}",
        secret("token", settings.gateway_token),
    ]
    if settings.gateway_ca_file:
        lines.append(f"ca_file = {q(settings.gateway_ca_file)}")
    if settings.printer_urls or not settings.printers:
        lines += ["", "[printers]", "urls = [" + ", ".join(q(u) for u in settings.printer_urls) + "]"]
    elif settings.printer_ca_file:
        lines += ["", "[printers]"]
    if settings.printer_ca_file:
        lines.append(f"ca_file = {q(settings.printer_ca_file)}")
    lines += ["", "[cadence]"] + [f"{f.name} = {getattr(settings.cadence, f.name)}" for f in fields(Cadence)]
    for printer in settings.printers:
        lines += ["", f"[[{printer_tables.TABLE}]]", f"driver = {q(printer.driver)}"]
        for f in fields(printer):
            value = getattr(printer, f.name)
            if isinstance(value, tuple):
                lines.append(f"{f.name} = [" + ", ".join(q(v) for v in value) + "]")
            elif value is not None:
                lines.append(f"{f.name} = {q(value)}")
    return "\n".join(lines) + "\n"


def example(site_secret: str) -> str:
    """A commented site.toml to start from (`printfleet collector init`): loads as it is,
    once the gateway's URL and token are filled in."""
    return f'''# The site collector's settings: `printfleet collector --config site.toml`.
# Every key can also come from the environment as PRINTFLEET_COLLECTOR_<KEY> (for the
# [gateway] table: PRINTFLEET_COLLECTOR_GATEWAY_URL, _GATEWAY_TOKEN, _GATEWAY_CA_FILE),
# which wins over this file; flags win over both. Relative paths are relative to this file.

site_id = "my-site"                  # the id the gateway knows this site by (printfleet sites add)
site_secret = "{site_secret}"  # keys the pseudonyms; made at random, never leaves the site; keep it
state_dir = "printfleet-state"       # spool, cursors, records kept aside
spool_max_bytes = 268435456          # 256 MiB of records held while the gateway is away
status_host = "127.0.0.1"            # status page, /metrics, /livez, /readyz (0.0.0.0: from other hosts)
status_port = 8080
status_every_s = 10                  # status line period
request_timeout_s = 10               # per printer request
upload_max_records = 5000            # records per uploaded batch

[gateway]
url = "https://ingest.example.com"   # the cloud's ingestion gateway
token = "paste the token printed by: printfleet sites add my-site"
# ca_file = "gateway-ca.pem"         # only for a gateway whose certificate no system CA signs

[printers]
urls = ["https://10.0.0.21/"]        # every printer's API base URL
# ca_file = "site-ca.pem"            # the CA that issued the printers' certificates

# A printer can also have a table of its own, naming its driver (printer-api or opcua):
# [[printer]]
# driver = "printer-api"
# url = "https://10.0.0.22/"
# ca_file = "other-ca.pem"           # omit for [printers] ca_file

[cadence]                            # seconds between polls, per endpoint
heartbeat_s = 10
events_s = 10
jobs_s = 30
logs_s = 300
counters_s = 300
consumables_s = 300
identity_s = 3600
'''
