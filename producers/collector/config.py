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
    driver = "printer-api"              # polled over its HTTPS API, like [printers] urls
    url = "https://10.0.0.22/"
    ca_file = "other-ca.pem"            # omit for [printers] ca_file (or the system's store)

    [[printer]]
    driver = "opcua"                    # OPC UA for Additive Manufacturing (OPC 40540)
    url = "opc.tcp://10.0.0.30:4840"
    server_certificate = "machine.der"  # the machine's certificate, pinned
    user = "printfleet"                 # identity: user + password_file,
    password_file = "opcua-password"    # ... or certificate + private_key
    machines = ["Printer1"]             # optional: only these browse names of its Machines

    [cadence]                           # seconds between polls, per endpoint
    heartbeat_s = 10
    events_s = 10
    ...

`[printers] urls` and `[[printer]]` tables may be used together; at least one printer's
place must be given (`urls = []` alone is a site without printers). A `[[printer]]`
names its `driver` and `url` and then only that driver's keys; a URL may appear once.
The OPC UA driver's settings are read and checked here; its files are read when it
connects (producers/collector/drivers/opcua.py).

Relative paths are relative to the file. Unknown keys are an error, so a typo does not
silently fall back to a default; so are missing keys and values of the wrong type
(`CollectorConfigError`, naming the file, the key and what was expected).
"""

from __future__ import annotations

import difflib
import json
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar, TypeAlias

from common.settings import build
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
class PrinterApiPrinter:
    """A printer polled over its HTTPS API (docs/printer-api.md): `driver = "printer-api"`."""

    driver: ClassVar[str] = "printer-api"
    url: str  # base URL, ending in "/"
    ca_file: Path | None = None  # None: the system's trust store


@dataclass(frozen=True)
class OpcUaPrinter:
    """A machine server speaking OPC UA for Additive Manufacturing: `driver = "opcua"`.
    Security policy Basic256Sha256 with SignAndEncrypt; its identity is `user` with the
    password in `password_file`, or `certificate` with `private_key`."""

    driver: ClassVar[str] = "opcua"
    url: str  # opc.tcp://host:port[/path]
    server_certificate: Path  # the server's certificate, pinned: no other is trusted
    user: str | None = None
    password_file: Path | None = None
    certificate: Path | None = None
    private_key: Path | None = None
    machines: tuple[str, ...] = ()  # browse names in its Machines folder; empty: all of them


PrinterConfig: TypeAlias = PrinterApiPrinter | OpcUaPrinter
DRIVERS = (PrinterApiPrinter.driver, OpcUaPrinter.driver)


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
            printer_urls=tuple(_base_url(u) for u in printers.get("urls", [])),
            printer_ca_file=rel(printers.get("ca_file")),
            cadence=Cadence(**{k: float(v) for k, v in data.get("cadence", {}).items()}),
        )
        for key, expected in _TOP.items():
            if expected is _NUMBER and key in values:
                values[key] = float(values[key])
        # Then the environment (PRINTFLEET_COLLECTOR_<FIELD>, e.g. a token from a secret
        # store: PRINTFLEET_COLLECTOR_GATEWAY_TOKEN), then the flags: the precedence of
        # every printfleet command (common/settings.py).
        cadence = values.pop("cadence")
        tables = _printer_tables(path, data.get("printer", []), rel, values["printer_ca_file"])
        _check_unique_urls(path, values["printer_urls"], tables)
        return build(cls, "collector", env, config=values, config_name=str(path), cadence=cadence,
                     printers=tables, **overrides)


def _base_url(url: str) -> str:
    return url if url.endswith("/") else url + "/"


# What site.toml may hold: top-level keys, then one table of keys each. The values are
# what `_check` requires; the error message quotes them.
_STRING, _PATH, _INTEGER, _NUMBER, _STRINGS = (
    "a string", "a path (string)", "an integer", "a number", "an array of strings",
)
_TOP: dict[str, str] = {
    "site_id": _STRING,
    "site_secret": _STRING,
    "state_dir": _PATH,
    "spool_max_bytes": _INTEGER,
    "status_host": _STRING,
    "status_port": _INTEGER,
    "status_every_s": _NUMBER,
    "request_timeout_s": _NUMBER,
    "upload_max_records": _INTEGER,
    "kept_max_records": _INTEGER,
    "kept_max_bytes": _INTEGER,
    "resend_kept_s": _NUMBER,
}
_TABLES: dict[str, dict[str, str]] = {
    "gateway": {"url": _STRING, "token": _STRING, "ca_file": _PATH},
    "printers": {"urls": _STRINGS, "ca_file": _PATH},
    "cadence": {f.name: _NUMBER for f in fields(Cadence)},
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
                raise CollectorConfigError(path, f"[{key}] must be a table, got {_toml_type(value)}", key)
        elif key == _PRINTER:
            if not (isinstance(value, list) and all(isinstance(v, dict) for v in value)):
                raise CollectorConfigError(
                    path, f"{_PRINTER} must be an array of tables ([[{_PRINTER}]]), got {_toml_type(value)}", _PRINTER,
                )
        elif key not in _TOP:
            known = [*_TOP, *(f"[{t}]" for t in _TABLES), f"[[{_PRINTER}]]"]
            raise CollectorConfigError(
                path, f"unknown key {key}{_did_you_mean(key, [*_TOP, *_TABLES, _PRINTER])}; "
                      f"known top-level keys: {', '.join(known)}", key,
            )
    tables: list[tuple[str, dict[str, Any], dict[str, str]]] = [("", data, _TOP)]
    tables += [(name, data.get(name, {}), keys) for name, keys in _TABLES.items()]
    for table, values, keys in tables:
        if table:
            for key in values:
                if key not in keys:
                    raise CollectorConfigError(
                        path, f"unknown key [{table}] {key}{_did_you_mean(key, list(keys))}; "
                              f"known keys in [{table}]: {', '.join(keys)}", f"[{table}] {key}",
                    )
        for key, expected in keys.items():
            name = f"[{table}] {key}" if table else key
            if key not in values:
                if (table, key) == ("printers", "urls") and _PRINTER in data:
                    continue  # the printers are in [[printer]] tables
                if (table, key) in _REQUIRED:
                    also = f" or [[{_PRINTER}]] tables" if (table, key) == ("printers", "urls") else ""
                    raise CollectorConfigError(path, f"missing key {name} ({expected}){also}", name)
                continue
            value = values[key]
            if not _fits(value, expected):
                shown = "" if (table, key) in _SECRET else f" ({_short(value)})"
                raise CollectorConfigError(
                    path, f"{name} must be {expected}, got {_toml_type(value)}{shown}", name,
                )


# [[printer]] tables: the keys of every driver, then each driver's own. What the values
# must be is said as for the other tables; URLs must have their driver's scheme.
_PRINTER = "printer"
_PRINTER_KEYS = {"driver": _STRING, "url": _STRING}
_DRIVER_KEYS: dict[str, dict[str, str]] = {
    PrinterApiPrinter.driver: {"ca_file": _PATH},
    OpcUaPrinter.driver: {"server_certificate": _PATH, "user": _STRING, "password_file": _PATH,
                          "certificate": _PATH, "private_key": _PATH, "machines": _STRINGS},
}
_SCHEMES = {PrinterApiPrinter.driver: ("https://", "http://"), OpcUaPrinter.driver: ("opc.tcp://",)}


def _printer_tables(path: Path, tables: list[dict[str, Any]], rel: Callable[[str | None], Path | None],
                    default_ca_file: Path | None) -> tuple[PrinterConfig, ...]:
    """The `[[printer]]` tables as settings; raises `CollectorConfigError` for the first
    key that is unknown for the table's driver, missing or of the wrong type, or values
    that do not go together. A printer API table without `ca_file` takes `[printers] ca_file`."""
    out: list[PrinterConfig] = []
    for number, table in enumerate(tables, 1):
        where = f"[[{_PRINTER}]] #{number}"
        driver = _printer_value(path, where, table, "driver", _STRING, required=True)
        if driver not in _DRIVER_KEYS:
            raise CollectorConfigError(
                path, f"{where} driver must be one of {', '.join(repr(d) for d in DRIVERS)}, got {_short(driver)}"
                      f"{_did_you_mean(driver, list(_DRIVER_KEYS))}", f"{where} driver",
            )
        keys = {**_PRINTER_KEYS, **_DRIVER_KEYS[driver]}
        for key in table:
            if key not in keys:
                owners = [d for d, own in _DRIVER_KEYS.items() if key in own]
                hint = f" (a key of driver {owners[0]!r})" if owners else _did_you_mean(key, list(keys))
                raise CollectorConfigError(
                    path, f"unknown key {where} {key} for driver {driver!r}{hint}; "
                          f"known keys for it: {', '.join(keys)}", f"{where} {key}",
                )
        for key, expected in keys.items():
            _printer_value(path, where, table, key, expected, required=key == "url")
        url = table["url"]
        if not url.startswith(_SCHEMES[driver]):
            raise CollectorConfigError(
                path, f"{where} url must start with {' or '.join(_SCHEMES[driver])} for driver {driver!r}, "
                      f"got {_short(url)}", f"{where} url",
            )
        if driver == PrinterApiPrinter.driver:
            out.append(PrinterApiPrinter(_base_url(url), rel(table.get("ca_file")) or default_ca_file))
        else:
            out.append(_opcua_printer(path, where, table, rel))
    return tuple(out)


def _printer_value(path: Path, where: str, table: dict[str, Any], key: str, expected: str, *,
                   required: bool) -> Any:
    if key not in table:
        if required:
            raise CollectorConfigError(path, f"missing key {where} {key} ({expected})", f"{where} {key}")
        return None
    value = table[key]
    if not _fits(value, expected):
        raise CollectorConfigError(
            path, f"{where} {key} must be {expected}, got {_toml_type(value)} ({_short(value)})", f"{where} {key}",
        )
    if expected == _STRING and not value:
        raise CollectorConfigError(path, f"{where} {key} must not be empty", f"{where} {key}")
    return value


def _opcua_printer(path: Path, where: str, table: dict[str, Any],
                   rel: Callable[[str | None], Path | None]) -> OpcUaPrinter:
    def missing(key: str, why: str) -> CollectorConfigError:
        return CollectorConfigError(path, f"missing key {where} {key} ({_DRIVER_KEYS['opcua'][key]}): {why}",
                                    f"{where} {key}")

    certificate = rel(table.get("server_certificate"))
    if certificate is None:
        raise missing("server_certificate", "the machine's certificate, pinned")
    by_password = "user" in table or "password_file" in table
    by_certificate = "certificate" in table or "private_key" in table
    if by_password and by_certificate:
        raise CollectorConfigError(
            path, f"{where} has two identities: user + password_file, or certificate + private_key, not both",
            f"{where} {'certificate' if 'certificate' in table else 'private_key'}",
        )
    pairs = (("user", "password_file"), ("certificate", "private_key"))
    for first, second in pairs:
        for key, other in ((first, second), (second, first)):
            if key in table and other not in table:
                raise missing(other, f"{key} needs it")
    if not (by_password or by_certificate):
        raise missing("user", "an identity is needed: user + password_file, or certificate + private_key")
    machines = table.get("machines")
    if machines is not None and (not machines or "" in machines or len(set(machines)) != len(machines)):
        raise CollectorConfigError(
            path, f"{where} machines must be distinct, non-empty browse names (omit it for every machine), "
                  f"got {_short(machines)}", f"{where} machines",
        )
    return OpcUaPrinter(
        url=table["url"], server_certificate=certificate, user=table.get("user"),
        password_file=rel(table.get("password_file")), certificate=rel(table.get("certificate")),
        private_key=rel(table.get("private_key")), machines=tuple(machines or ()),
    )


def _check_unique_urls(path: Path, urls: tuple[str, ...], tables: tuple[PrinterConfig, ...]) -> None:
    """Two entries for one printer would read it twice: refuse the second."""
    seen: dict[str, str] = {}
    places = [(u, f"[printers] urls #{i}") for i, u in enumerate(urls, 1)]
    places += [(p.url, f"[[{_PRINTER}]] #{i} url") for i, p in enumerate(tables, 1)]
    for url, place in places:
        if url in seen:
            raise CollectorConfigError(path, f"{place}: printer {url} is listed twice (first as {seen[url]})", place)
        seen[url] = place


def _fits(value: object, expected: str) -> bool:
    if expected in (_STRING, _PATH):
        return isinstance(value, str)
    if expected == _INTEGER:
        return isinstance(value, int) and not isinstance(value, bool)
    if expected == _NUMBER:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _toml_type(value: object) -> str:
    """The TOML name of a value tomllib returned."""
    for python, toml in ((bool, "a boolean"), (int, "an integer"), (float, "a float"), (str, "a string"),
                         (list, "an array"), (dict, "a table")):
        if isinstance(value, python):
            return toml
    return "a date/time"


def _short(value: object) -> str:
    """`value` as TOML would write it (near enough), cut to 40 characters."""
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 40 else text[:37] + "..."


def _did_you_mean(key: str, known: list[str]) -> str:
    close = difflib.get_close_matches(key, known, n=1)
    return f" (did you mean {close[0]}?)" if close else ""


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
        lines += ["", f"[[{_PRINTER}]]", f"driver = {q(printer.driver)}"]
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
