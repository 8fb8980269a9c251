"""Keys and certificates for OPC UA: one self-signed pair per application and site.

The simulator's server makes its pair once per state folder (the collector pins that
certificate); the collector makes its own client pair once per site and the simulator
trusts it by finding the certificate in its trust folder. Both call `ensure_certificate`.

    pair = await ensure_certificate(folder, "collector", "urn:printfleet:collector:site-1",
                                    role=Role.CLIENT)
    pair.key_file, pair.cert_file          # PEM key, DER certificate

The application URI in the certificate must equal the application's own
(`Client.application_uri`, `Server.set_application_uri`): asyncua checks it.
"""

from __future__ import annotations

import enum
import hashlib
import socket
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID
from asyncua.crypto.cert_gen import setup_self_signed_certificate

from producers.opcua_model.errors import PkiError


class Role(enum.Enum):
    """What the certificate is used for (its extended key usage)."""

    SERVER = "server"
    CLIENT = "client"


@dataclass(frozen=True, slots=True)
class CertificatePair:
    key_file: Path  # PEM, unencrypted: the folder is the site's secret
    cert_file: Path  # DER, as OPC UA exchanges certificates
    application_uri: str

    def der(self) -> bytes:
        return self.cert_file.read_bytes()

    def thumbprint(self) -> str:
        """SHA-256 of the DER certificate, hex: what a pin or a log line shows."""
        return hashlib.sha256(self.der()).hexdigest()


async def ensure_certificate(
    folder: Path, name: str, application_uri: str, *, role: Role, host: str | None = None
) -> CertificatePair:
    """`<folder>/<name>-key.pem` and `<folder>/<name>-cert.der`, made if missing or no
    longer valid (asyncua regenerates an expired or unreadable certificate), reused
    otherwise: the same files on every start, so a pin holds. RSA-2048, 365 days,
    subject alternative names = the application URI and `host` (default: this host's
    name). Raises PkiError."""
    key_file, cert_file = folder / f"{name}-key.pem", folder / f"{name}-cert.der"
    usages = [ExtendedKeyUsageOID.CLIENT_AUTH]
    if role is Role.SERVER:
        usages.insert(0, ExtendedKeyUsageOID.SERVER_AUTH)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        await setup_self_signed_certificate(
            key_file,
            cert_file,
            application_uri,
            host or socket.gethostname(),
            usages,
            {"commonName": f"printfleet {name}"},
        )
        key_file.chmod(0o600)
    except (OSError, ValueError) as exc:
        raise PkiError(f"cannot make the {name} key and certificate in {folder}: {exc}") from exc
    return CertificatePair(key_file, cert_file, application_uri)


def subject_of(cert_file: Path) -> str:
    """The RFC 4514 subject of a DER certificate (how the simulator's user table names a
    certificate identity). Raises PkiError."""
    try:
        return x509.load_der_x509_certificate(cert_file.read_bytes()).subject.rfc4514_string()
    except (OSError, ValueError) as exc:
        raise PkiError(f"cannot read the certificate {cert_file}: {exc}") from exc
