"""The local Kafka cluster's TLS certificate and SASL users, made at its first start.

Files in the secrets folder (`StackSettings.kafka_secrets_dir`), read by the tests and
shown by `printfleet stack status`:

    ca.pem                  the CA clients trust (`--kafka-ssl-ca-file`)
    broker-keystore.pem     the brokers' key and certificate (127.0.0.1, localhost)
    <user>.password         a SASL user's password (`--kafka-sasl-password-file`)
    printfleet-client.pem, printfleet-client-key.pem
                            a client certificate for the SSL listener, which requires
                            one (mutual TLS; principal `CN=printfleet-client`)

Users: `printfleet` (a super user) and `reader` (no ACL: every request is refused), with
SCRAM-SHA-256 and -512 credentials (made at the storage format) and PLAIN (in the
broker's JAAS line). The certificates come from the same CA code as the simulator's
printers (`common.tls`). Passwords are random and kept: the formatted
storage holds their SCRAM hashes.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from common.tls import CA_CERT, ServerCertificate, ensure_site_ca, issue_client_certificate, issue_server_certificate

SUPER_USER: Final = "printfleet"
CLIENT_CERTIFICATE: Final = "printfleet-client"  # its principal is a super user too
NO_ACL_USER: Final = "reader"
_USERS: Final = (SUPER_USER, NO_ACL_USER)


@dataclass(frozen=True, slots=True)
class KafkaSecrets:
    folder: Path

    @classmethod
    def ensure(cls, folder: Path) -> KafkaSecrets:
        """The folder's secrets, made where missing (a new broker certificate every call,
        the CA and passwords only once)."""
        ca = ensure_site_ca(folder, "printfleet local Kafka")
        server = issue_server_certificate(ca, folder)
        issue_client_certificate(ca, folder, CLIENT_CERTIFICATE)
        out = cls(folder)
        keystore = server.key_file.read_bytes() + server.cert_file.read_bytes()
        out.keystore.write_bytes(keystore)
        out.keystore.chmod(0o600)
        for user in _USERS:
            path = out.password_file(user)
            if not path.exists():
                path.write_text(secrets.token_urlsafe(18) + "\n")
                path.chmod(0o600)
        return out

    @property
    def ca_file(self) -> Path:
        return self.folder / CA_CERT

    @property
    def keystore(self) -> Path:
        return self.folder / "broker-keystore.pem"

    @property
    def client_certificate(self) -> ServerCertificate:
        return ServerCertificate(self.folder / f"{CLIENT_CERTIFICATE}.pem", self.folder / f"{CLIENT_CERTIFICATE}-key.pem")

    def password_file(self, user: str) -> Path:
        return self.folder / f"{user}.password"

    def users(self) -> dict[str, str]:
        return {user: self.password_file(user).read_text().strip() for user in _USERS}

    def plain_jaas(self) -> str:
        """The broker's JAAS line for SASL/PLAIN: the same users and passwords."""
        users = " ".join(f'user_{user}="{password}"' for user, password in self.users().items())
        return f"org.apache.kafka.common.security.plain.PlainLoginModule required {users};"
