"""The `[[printer]]` tables of site.toml: one printer and its driver each (config.py reads
the rest of the file). A table names its `driver` and `url`, then only that driver's
keys; the OPC UA driver's settings are read and checked here, its files read when it
connects (producers/collector/drivers/opcua.py).

    [[printer]]
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
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, TypeAlias

from producers.collector.toml_values import PATH, STRING, STRINGS, did_you_mean, fits, short, toml_type
from producers.errors import CollectorConfigError


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


# The keys of every driver's table, then each driver's own. What the values must be is
# said as for the other tables of site.toml; URLs must have their driver's scheme.
TABLE = "printer"
_KEYS = {"driver": STRING, "url": STRING}
_DRIVER_KEYS: dict[str, dict[str, str]] = {
    PrinterApiPrinter.driver: {"ca_file": PATH},
    OpcUaPrinter.driver: {"server_certificate": PATH, "user": STRING, "password_file": PATH,
                          "certificate": PATH, "private_key": PATH, "machines": STRINGS},
}
_SCHEMES = {PrinterApiPrinter.driver: ("https://", "http://"), OpcUaPrinter.driver: ("opc.tcp://",)}


def read(path: Path, tables: list[dict[str, Any]], rel: Callable[[str | None], Path | None],
                    default_ca_file: Path | None) -> tuple[PrinterConfig, ...]:
    """The `[[printer]]` tables as settings; raises `CollectorConfigError` for the first
    key that is unknown for the table's driver, missing or of the wrong type, or values
    that do not go together. A printer API table without `ca_file` takes `[printers] ca_file`."""
    out: list[PrinterConfig] = []
    for number, table in enumerate(tables, 1):
        where = f"[[{TABLE}]] #{number}"
        driver = _printer_value(path, where, table, "driver", STRING, required=True)
        if driver not in _DRIVER_KEYS:
            raise CollectorConfigError(
                path, f"{where} driver must be one of {', '.join(repr(d) for d in DRIVERS)}, got {short(driver)}"
                      f"{did_you_mean(driver, list(_DRIVER_KEYS))}", f"{where} driver",
            )
        keys = {**_KEYS, **_DRIVER_KEYS[driver]}
        for key in table:
            if key not in keys:
                owners = [d for d, own in _DRIVER_KEYS.items() if key in own]
                hint = f" (a key of driver {owners[0]!r})" if owners else did_you_mean(key, list(keys))
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
                      f"got {short(url)}", f"{where} url",
            )
        if driver == PrinterApiPrinter.driver:
            out.append(PrinterApiPrinter(base_url(url), rel(table.get("ca_file")) or default_ca_file))
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
    if not fits(value, expected):
        raise CollectorConfigError(
            path, f"{where} {key} must be {expected}, got {toml_type(value)} ({short(value)})", f"{where} {key}",
        )
    if expected == STRING and not value:
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
                  f"got {short(machines)}", f"{where} machines",
        )
    return OpcUaPrinter(
        url=table["url"], server_certificate=certificate, user=table.get("user"),
        password_file=rel(table.get("password_file")), certificate=rel(table.get("certificate")),
        private_key=rel(table.get("private_key")), machines=tuple(machines or ()),
    )


def check_unique_urls(path: Path, urls: tuple[str, ...], tables: tuple[PrinterConfig, ...]) -> None:
    """Two entries for one printer would read it twice: refuse the second."""
    seen: dict[str, str] = {}
    places = [(u, f"[printers] urls #{i}") for i, u in enumerate(urls, 1)]
    places += [(p.url, f"[[{TABLE}]] #{i} url") for i, p in enumerate(tables, 1)]
    for url, place in places:
        if url in seen:
            raise CollectorConfigError(path, f"{place}: printer {url} is listed twice (first as {seen[url]})", place)
        seen[url] = place


def base_url(url: str) -> str:
    """A printer API base URL, ending in "/"."""
    return url if url.endswith("/") else url + "/"
