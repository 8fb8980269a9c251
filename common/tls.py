"""A small private CA and the server certificates it issues (files in the CA folder).

Used where printfleet makes its own TLS: the simulator's printers (`SimulatorServer.start()`
calls `ensure_site_ca` then `issue_server_certificate`; the collector verifies every
printer against `SiteCa.cert_file`, as a real site verifies printers its own CA
certified), the demo's gateway, and the local Kafka stack's SASL_SSL listener
(deploy/kafka_secrets.py).

Files in the CA folder:
    ca.pem, ca-key.pem          the site CA; created once, reused while valid
    server.pem, server-key.pem  the printers' server certificate; issued at every start
Keys are EC P-256 (fast to generate), written 0600 and replaced atomically, so a reader
never sees half a file.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
import os
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from common.errors import PrintfleetError

log = logging.getLogger(__name__)

CA_CERT: Final = "ca.pem"
CA_KEY: Final = "ca-key.pem"
SERVER_CERT: Final = "server.pem"
SERVER_KEY: Final = "server-key.pem"
CA_LIFETIME: Final = dt.timedelta(days=3650)
SERVER_LIFETIME: Final = dt.timedelta(days=90)
# A CA this close to expiry is replaced: a collector started now must not see it expire.
CA_MIN_REMAINING: Final = dt.timedelta(days=7)


def server_context(cert_file: Path | None, key_file: Path | None) -> ssl.SSLContext | None:
    """The TLS context of a server of ours (the gateway, the dashboard): TLS 1.2 or newer
    with the given certificate chain and key; None (plain HTTP) without a certificate.
    Raises OSError or ssl.SSLError when the files cannot be read or do not match."""
    if cert_file is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert_file, key_file)
    return context


class CertificateError(PrintfleetError):
    """The CA folder holds unreadable or half-written files, or cannot be written.
    Not retriable: fix or delete the folder."""

    retriable = False


@dataclass(frozen=True, slots=True)
class SiteCa:
    """A loaded site CA."""

    cert_file: Path
    key_file: Path
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey


@dataclass(frozen=True, slots=True)
class ServerCertificate:
    cert_file: Path
    key_file: Path

    def ssl_context(self) -> ssl.SSLContext:
        """A server-side TLS context for aiohttp (TLS 1.2 or newer)."""
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(self.cert_file, self.key_file)
        return context


def ensure_site_ca(ca_dir: Path, site_name: str) -> SiteCa:
    """The CA in `ca_dir`, created if the folder has none (or only an expiring one).

    Raises CertificateError if the files exist but do not load, or the folder cannot be
    written.
    """
    cert_file, key_file = ca_dir / CA_CERT, ca_dir / CA_KEY
    if cert_file.exists() and key_file.exists():
        ca = _load_ca(cert_file, key_file)
        if ca.cert.not_valid_after_utc - _now() > CA_MIN_REMAINING:
            return ca
        log.warning("event=site_ca_expiring path=%s action=replace", cert_file)
    elif cert_file.exists() or key_file.exists():
        raise CertificateError(
            f"{ca_dir} holds only one of {CA_CERT} and {CA_KEY}: delete it to start over"
        )
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, site_name),
            x509.NameAttribute(NameOID.COMMON_NAME, f"printfleet site CA ({site_name})"),
        ]
    )
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + CA_LIFETIME)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(ca=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    _write(key_file, _key_pem(key), private=True)
    _write(cert_file, cert.public_bytes(serialization.Encoding.PEM), private=False)
    log.info("event=site_ca_created path=%s", cert_file)
    return SiteCa(cert_file, key_file, cert, key)


def issue_server_certificate(
    ca: SiteCa, ca_dir: Path, *, ips: tuple[str, ...] = ("127.0.0.1",), dns: tuple[str, ...] = ("localhost",)
) -> ServerCertificate:
    """A fresh server certificate signed by `ca` for `ips` and `dns` names, written to
    `ca_dir`. Raises CertificateError if the folder cannot be written or an IP is bad.
    """
    try:
        names: list[x509.GeneralName] = [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
    except ValueError as exc:
        raise CertificateError(f"bad server IP address: {exc}") from None
    names += [x509.DNSName(name) for name in dns]
    return _issue(ca, dns[0] if dns else ips[0], ExtendedKeyUsageOID.SERVER_AUTH, names,
                  ca_dir / SERVER_CERT, ca_dir / SERVER_KEY)


def issue_client_certificate(ca: SiteCa, ca_dir: Path, name: str) -> ServerCertificate:
    """A fresh client certificate (mutual TLS) signed by `ca`, its subject `CN=<name>`,
    written to `ca_dir` as `<name>.pem` and `<name>-key.pem`."""
    return _issue(ca, name, ExtendedKeyUsageOID.CLIENT_AUTH, [], ca_dir / f"{name}.pem", ca_dir / f"{name}-key.pem")


def _issue(ca: SiteCa, common_name: str, usage: x509.ObjectIdentifier, names: list[x509.GeneralName],
           cert_file: Path, key_file: Path) -> ServerCertificate:
    key = ec.generate_private_key(ec.SECP256R1())
    now = _now()
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(min(now + SERVER_LIFETIME, ca.cert.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(ca=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False
        )
    )
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    cert = builder.sign(ca.key, hashes.SHA256())
    _write(key_file, _key_pem(key), private=True)
    # The chain file holds the leaf only: the peer trusts the CA file, not a sent CA copy.
    _write(cert_file, cert.public_bytes(serialization.Encoding.PEM), private=False)
    return ServerCertificate(cert_file, key_file)


def _load_ca(cert_file: Path, key_file: Path) -> SiteCa:
    try:
        cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
        key = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise CertificateError(f"cannot load the site CA in {cert_file.parent}: {exc}") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise CertificateError(f"{key_file} is not an EC key: delete the folder to start over")
    spki = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    if cert.public_key().public_bytes(*spki) != key.public_key().public_bytes(*spki):
        raise CertificateError(f"{cert_file} and {key_file} do not belong together")
    return SiteCa(cert_file, key_file, cert, key)


def _key_usage(*, ca: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not ca,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _write(path: Path, data: bytes, *, private: bool) -> None:
    # Write a sibling temp file then rename: a concurrent reader sees the old or new file.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise CertificateError(f"cannot write {path}: {exc}") from None


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)
