"""The OPC UA driver's check of what GetEndpoints offered (producers/collector/drivers/
opcua.py `endpoint_refusal`): the one line a site reads when it cannot connect safely."""

from __future__ import annotations

import hashlib
from pathlib import Path

from asyncua import ua
from asyncua.crypto.security_policies import SecurityPolicyBasic256Sha256

from producers.collector.drivers.opcua import endpoint_refusal

URL = "opc.tcp://10.0.0.30:4840/"
NONE_URI = "http://opcfoundation.org/UA/SecurityPolicy#None"


def _endpoint(policy: str, mode: ua.MessageSecurityMode, cert: bytes) -> ua.EndpointDescription:
    return ua.EndpointDescription(SecurityPolicyUri=policy, SecurityMode=mode, ServerCertificate=cert)


def test_the_pinned_certificate_on_a_secure_endpoint_is_accepted(tmp_path: Path) -> None:
    pin = tmp_path / "machine.der"
    pin.write_bytes(b"der-1")
    offered = [_endpoint(NONE_URI, ua.MessageSecurityMode.None_, b"der-1"),
               _endpoint(SecurityPolicyBasic256Sha256.URI, ua.MessageSecurityMode.SignAndEncrypt, b"der-1")]
    assert endpoint_refusal(URL, offered, pin) is None


def test_another_certificate_names_both_thumbprints(tmp_path: Path) -> None:
    pin = tmp_path / "machine.der"
    pin.write_bytes(b"der-1")
    offered = [_endpoint(SecurityPolicyBasic256Sha256.URI, ua.MessageSecurityMode.SignAndEncrypt, b"der-2")]
    assert endpoint_refusal(URL, offered, pin) == (
        f"{URL}: server certificate changed: offered sha256 {hashlib.sha256(b'der-2').hexdigest()}, "
        f"pinned sha256 {hashlib.sha256(b'der-1').hexdigest()} ({pin})")


def test_no_secure_endpoint_says_what_was_offered(tmp_path: Path) -> None:
    pin = tmp_path / "machine.der"
    pin.write_bytes(b"der-1")
    offered = [_endpoint(NONE_URI, ua.MessageSecurityMode.None_, b""),
               _endpoint(SecurityPolicyBasic256Sha256.URI, ua.MessageSecurityMode.Sign, b"der-1")]
    assert endpoint_refusal(URL, offered, pin) == (
        f"{URL}: no Basic256Sha256 SignAndEncrypt endpoint (offered: Basic256Sha256/Sign, None/None)")


def test_an_unreadable_pin_is_one_line(tmp_path: Path) -> None:
    offered = [_endpoint(SecurityPolicyBasic256Sha256.URI, ua.MessageSecurityMode.SignAndEncrypt, b"der-1")]
    reason = endpoint_refusal(URL, offered, tmp_path / "missing.der")
    assert reason is not None and reason.startswith(f"{URL}: cannot read the pinned server certificate")
    assert "\n" not in reason
