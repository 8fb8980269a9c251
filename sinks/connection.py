"""How printfleet reaches ClickHouse: one settings object for connecting.

`ClickHouseSettings` is built once per process by `printfleet/clickhouse_flags.py`
(flags, then `PRINTFLEET_CLICKHOUSE_*` variables, then defaults) and handed to
`sinks.client.ClickHouseClient`. The sink, `printfleet query` and any other reader use
the same object, so a URL, a user, TLS files and the cluster name are said one way.

- `url`: `http(s)://host[:port]`, no credentials in it (they would show in argv, `ps`
  and logs); the user and password are their own fields.
- `password`: a `Secret`, from `PRINTFLEET_CLICKHOUSE_PASSWORD` or a file
  (`--clickhouse-password-file`, `PRINTFLEET_CLICKHOUSE_PASSWORD_FILE`), never a flag.
- `ca_file`: a PEM bundle that signs the server's certificate (a private CA);
  `cert_file` and `key_file`: a client certificate for mutual TLS. All three need https.
  With a client certificate and no password the certificate is the login (ClickHouse's
  `ssl_certificate` users); with a password too, the certificate only secures the
  transport and the password logs in.
- `cluster`: empty for one server; otherwise the name of a cluster in the servers'
  `remote_servers`, and the schema is made for it (`sinks.cluster`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from common.settings import Secret

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_CLUSTER = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")


def check_url(url: str, name: str = "ClickHouse URL") -> str:
    """`url` if it is `http(s)://host[:port]` without credentials, else ValueError naming
    `name` (the flag or variable it came from) with an example."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - parses the port; ValueError when it is not a number
        good = parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:
        good = False
    example = "http://127.0.0.1:8123"
    if name.startswith("--"):
        example = f"{name} {example}"
    elif name.isupper():
        example = f"{name}={example}"
    if not good:
        raise ValueError(
            f"{name} {url!r} is not a ClickHouse URL: it needs http:// or https:// and a host, e.g. {example}"
        )
    if parts.username is not None or parts.password is not None:
        raise ValueError(
            f"{name} holds a user or password: give the user as --clickhouse-user and the password as "
            "PRINTFLEET_CLICKHOUSE_PASSWORD or --clickhouse-password-file, and only the server in the URL"
        )
    return url


@dataclass(frozen=True)
class ClickHouseSettings:
    """Where and how to reach ClickHouse. Raises ValueError on a bad combination."""

    url: str
    user: str = "default"
    password: Secret = field(default_factory=Secret, repr=False)
    database: str = "printfleet"
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    timeout_s: float = 30.0
    cluster: str = ""

    def __post_init__(self) -> None:
        check_url(self.url)
        if not self.user:
            raise ValueError("ClickHouse user is empty")
        if not _NAME.fullmatch(self.database):
            raise ValueError(f"ClickHouse database {self.database!r}: letters, digits and '_', not starting with a digit")
        if self.cluster and not _CLUSTER.fullmatch(self.cluster):
            raise ValueError(f"ClickHouse cluster {self.cluster!r}: letters, digits, '_', '.' and '-'")
        if self.timeout_s <= 0:
            raise ValueError("ClickHouse timeout must be positive")
        if self.key_file is not None and self.cert_file is None:
            raise ValueError("a ClickHouse client key file needs its certificate (--clickhouse-cert-file)")
        tls = {"--clickhouse-ca-file": self.ca_file, "--clickhouse-cert-file": self.cert_file,
               "--clickhouse-key-file": self.key_file}
        for flag, path in tls.items():
            if path is None:
                continue
            if not self.secure:
                raise ValueError(f"{flag} {path} needs an https:// ClickHouse URL, not {self.url}")
            if not path.is_file():
                raise ValueError(f"{flag} {path}: no such file")

    @property
    def secure(self) -> bool:
        return urlsplit(self.url).scheme == "https"

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or ""

    @property
    def port(self) -> int:
        return urlsplit(self.url).port or (8443 if self.secure else 8123)

    @property
    def certificate_login(self) -> bool:
        """True when the client certificate is the login (mutual TLS, no password)."""
        return self.cert_file is not None and not self.password

    def describe(self) -> str:
        """Where, as user, for status lines and errors (never the password)."""
        where = f"{self.url} database {self.database} as {self.user}"
        return f"{where} on cluster {self.cluster}" if self.cluster else where
