"""The site CA is created once and reused; the server certificate names 127.0.0.1 and
localhost and chains to the CA; broken CA folders are refused."""

from __future__ import annotations

import ipaddress
import stat
from pathlib import Path

import pytest
from cryptography import x509

from producers.simulator import CertificateError, ensure_site_ca, issue_server_certificate


def test_ca_is_created_then_reused(tmp_path: Path) -> None:
    first = ensure_site_ca(tmp_path / "ca", "Werk 1")
    assert first.cert_file.exists() and stat.S_IMODE(first.key_file.stat().st_mode) == 0o600
    again = ensure_site_ca(tmp_path / "ca", "Werk 1")
    assert again.cert == first.cert
    constraints = first.cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert constraints.ca


def test_server_certificate_names_the_host_and_chains_to_the_ca(tmp_path: Path) -> None:
    ca = ensure_site_ca(tmp_path, "Werk 1")
    server = issue_server_certificate(ca, tmp_path)
    cert = x509.load_pem_x509_certificate(server.cert_file.read_bytes())
    cert.verify_directly_issued_by(ca.cert)
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    assert names.get_values_for_type(x509.DNSName) == ["localhost"]
    assert server.ssl_context() is not None


def test_half_a_ca_is_refused(tmp_path: Path) -> None:
    ca = ensure_site_ca(tmp_path, "Werk 1")
    ca.key_file.unlink()
    with pytest.raises(CertificateError, match="only one"):
        ensure_site_ca(tmp_path, "Werk 1")


def test_a_garbled_ca_is_refused(tmp_path: Path) -> None:
    ensure_site_ca(tmp_path, "Werk 1")
    (tmp_path / "ca.pem").write_text("not a certificate")
    with pytest.raises(CertificateError, match="cannot load"):
        ensure_site_ca(tmp_path, "Werk 1")


def test_mismatched_key_is_refused(tmp_path: Path) -> None:
    ensure_site_ca(tmp_path / "a", "A")
    ensure_site_ca(tmp_path / "b", "B")
    (tmp_path / "a" / "ca-key.pem").write_bytes((tmp_path / "b" / "ca-key.pem").read_bytes())
    with pytest.raises(CertificateError, match="do not belong"):
        ensure_site_ca(tmp_path / "a", "A")
