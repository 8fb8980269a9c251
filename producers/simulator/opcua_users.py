"""Who may open a session on the simulator's OPC UA server: user names with passwords
from a users file, and client certificates found in the trust folder.

Read once by `opcua_server.OpcUaServer.start()`. The users file has one `name:password`
per line (`#` starts a comment). Without a file the server makes
`<state dir>/users.txt` with the user `collector` and a random password on first start
(mode 0600) and reuses it afterwards.
"""

from __future__ import annotations

import hmac
import secrets
from pathlib import Path
from typing import Any, Final, Mapping

from cryptography import x509
from asyncua.crypto.permission_rules import User, UserRole
from asyncua.server.user_managers import UserManager

from producers.simulator.errors import SimulatorError

DEFAULT_USER: Final = "collector"


def parse_users(text: str, source: str) -> dict[str, str]:
    """`name:password` lines to a mapping. Raises ValueError naming the line."""
    users: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, password = line.partition(":")
        if not sep or not name.strip() or not password:
            raise ValueError(f"{source} line {number}: expected name:password")
        users[name.strip()] = password
    if not users:
        raise ValueError(f"{source}: no users")
    return users


def load_users(users_file: Path | None, state_dir: Path) -> tuple[dict[str, str], Path]:
    """The users and the file they came from; makes the default file when `users_file`
    is None and it does not exist yet. Raises SimulatorError."""
    path = users_file or state_dir / "users.txt"
    try:
        if users_file is None and not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(f"{DEFAULT_USER}:{secrets.token_urlsafe(18)}\n", encoding="utf-8")
            path.chmod(0o600)
        return parse_users(path.read_text(encoding="utf-8"), str(path)), path
    except (OSError, ValueError) as exc:
        raise SimulatorError(f"OPC UA users file {path}: {exc}") from None


class SiteUsers(UserManager):
    """asyncua calls `get_user` for every ActivateSession; None refuses the identity
    (the client gets BadUserAccessDenied). Anonymous tokens are not offered at all."""

    def __init__(self, users: Mapping[str, str], trusted_certificates: frozenset[bytes]) -> None:
        self._users = dict(users)
        self._certificates = trusted_certificates

    def get_user(
        self, iserver: Any, username: str | None = None, password: str | None = None, certificate: Any = None
    ) -> User | None:
        if username is not None:
            expected = self._users.get(username)
            if expected is not None and password is not None and hmac.compare_digest(expected, password):
                return User(role=UserRole.User, name=username)
            return None
        if certificate is not None:
            # An X509 identity token carries the certificate as DER bytes.
            der = bytes(certificate)
            if der in self._certificates:
                subject = x509.load_der_x509_certificate(der).subject.rfc4514_string()
                return User(role=UserRole.User, name=subject)
        return None


def trusted_certificates(trust_dir: Path) -> frozenset[bytes]:
    """The DER certificates (`*.der`) in the trust folder, as the TrustStore reads them."""
    try:
        return frozenset(path.read_bytes() for path in sorted(trust_dir.glob("*.der")))
    except OSError as exc:
        raise SimulatorError(f"OPC UA trust folder {trust_dir}: {exc}") from None
