"""How every printfleet component reaches Kafka: one settings object for connecting.

`KafkaSettings` is built once per process (flags, then `PRINTFLEET_KAFKA_*` variables;
see `printfleet/kafka_flags.py`) and handed to `common.kafka.clients`, which makes every
producer, consumer and admin client from it, and to Faust (`clients.faust_options`).
Transport security (TLS, SASL) belongs here and nowhere else:

    security_protocol   PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL (Kafka's names)
    sasl_mechanism      PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512, with sasl_username and a
                        password from PRINTFLEET_KAFKA_SASL_PASSWORD or sasl_password_file
    ssl_ca_file         the CA that signed the brokers' certificates (default: the system's)
    ssl_cert_file/key   the client's certificate and key, for mutual TLS

A password never comes from a flag (argv is visible to every user of the machine) and
never shows in a repr or a log line; a password file is read at each connection, so a
rotated secret takes effect at the next reconnect.

Replication is a property of the cluster, not of one topic: production defaults are a
replication factor of 3 and `min.insync.replicas` 2 (with acks=all a write survives one
broker's loss); the local single-broker stack overrides both to 1 in one place,
`deploy.settings.StackSettings.kafka`. A registry topic may still ask for its own
(`common.kafka.topics.TopicSpec`).
"""

from __future__ import annotations

import re
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from common.settings import Secret

_LEGAL = re.compile(r"[A-Za-z0-9._-]*")
PROTOCOLS: Final = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
MECHANISMS: Final = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")


@dataclass(frozen=True, slots=True)
class KafkaSettings:
    bootstrap_servers: str
    # Put before every topic and consumer group name: two deployments (or a benchmark
    # and the user's pipeline) share one cluster without seeing each other's records.
    topic_prefix: str = ""
    client_id: str = "printfleet"
    request_timeout_s: float = 30.0
    replication_factor: int = 3
    min_insync_replicas: int = 2
    security_protocol: str = "PLAINTEXT"
    # SCRAM-SHA-512: what Kafka's own SCRAM docs, Strimzi and Amazon MSK use.
    sasl_mechanism: str = "SCRAM-SHA-512"
    sasl_username: str = ""
    sasl_password: Secret = field(default_factory=Secret, repr=False)
    sasl_password_file: Path | None = None
    ssl_ca_file: Path | None = None
    ssl_cert_file: Path | None = None
    ssl_key_file: Path | None = None

    def __post_init__(self) -> None:
        if not self.bootstrap_servers.strip():
            raise ValueError("Kafka bootstrap servers are empty (host:port[,host:port...])")
        if not _LEGAL.fullmatch(self.topic_prefix):
            raise ValueError(f"topic prefix {self.topic_prefix!r}: only letters, digits, '.', '_' and '-'")
        if self.replication_factor < 1 or not 1 <= self.min_insync_replicas <= self.replication_factor:
            raise ValueError(
                f"replication factor {self.replication_factor} and min.insync.replicas {self.min_insync_replicas}: "
                "need 1 <= min.insync.replicas <= replication factor"
            )
        if self.request_timeout_s <= 0:
            raise ValueError("request_timeout_s must be positive")
        self._check_security()

    def _check_security(self) -> None:
        if self.security_protocol not in PROTOCOLS:
            raise ValueError(f"Kafka security protocol {self.security_protocol!r}: one of {', '.join(PROTOCOLS)}")
        if self.sasl:
            if self.sasl_mechanism not in MECHANISMS:
                raise ValueError(f"Kafka SASL mechanism {self.sasl_mechanism!r}: one of {', '.join(MECHANISMS)}")
            if not self.sasl_username:
                raise ValueError(f"Kafka security protocol {self.security_protocol} needs a SASL user name")
            if bool(self.sasl_password) == bool(self.sasl_password_file):
                raise ValueError(
                    f"Kafka security protocol {self.security_protocol} needs the SASL password from exactly one "
                    "of PRINTFLEET_KAFKA_SASL_PASSWORD and a password file"
                )
        elif self.sasl_username or self.sasl_password or self.sasl_password_file:
            raise ValueError(
                f"a SASL user or password is set but the Kafka security protocol is {self.security_protocol}: "
                "use SASL_SSL (or SASL_PLAINTEXT)"
            )
        if (self.ssl_cert_file is None) != (self.ssl_key_file is None):
            raise ValueError("a Kafka client certificate needs its key and a key its certificate")
        if not self.tls and (self.ssl_ca_file or self.ssl_cert_file):
            raise ValueError(
                f"a Kafka CA or client certificate is set but the security protocol is {self.security_protocol}: "
                "use SSL or SASL_SSL"
            )
        self.connection()  # a CA, certificate, key or password file that does not load: now, not at connect

    @property
    def sasl(self) -> bool:
        return self.security_protocol.startswith("SASL_")

    @property
    def tls(self) -> bool:
        return self.security_protocol.endswith("SSL")

    def topic(self, name: str) -> str:
        """The cluster's name of registry topic `name` (see `common.kafka.topics`)."""
        return self.topic_prefix + name

    def group(self, name: str) -> str:
        """The cluster's name of consumer group (or Faust app id) `name`."""
        return self.topic_prefix + name

    def connection(self) -> dict[str, Any]:
        """Keyword arguments every aiokafka client gets: where and how to connect.

        Raises ValueError naming a CA, certificate, key or password file that cannot be
        read.
        """
        options: dict[str, Any] = {
            "bootstrap_servers": self.bootstrap_servers,
            "client_id": self.client_id,
            "security_protocol": self.security_protocol,
        }
        if self.tls:
            options["ssl_context"] = self.ssl_context()
        if self.sasl:
            options.update(sasl_mechanism=self.sasl_mechanism, sasl_plain_username=self.sasl_username,
                           sasl_plain_password=self.password())
        return options

    def ssl_context(self) -> ssl.SSLContext:
        """TLS as a browser does it: the broker's certificate must chain to the CA file (or
        the system's CAs) and name the host connected to."""
        try:
            context = ssl.create_default_context(cafile=str(self.ssl_ca_file) if self.ssl_ca_file else None)
        except (OSError, ssl.SSLError) as exc:
            raise ValueError(f"Kafka CA file {self.ssl_ca_file}: {_reason(exc)}") from None
        if self.ssl_cert_file is not None:
            try:
                context.load_cert_chain(self.ssl_cert_file, self.ssl_key_file)
            except (OSError, ssl.SSLError) as exc:
                raise ValueError(
                    f"Kafka client certificate {self.ssl_cert_file} with key {self.ssl_key_file}: {_reason(exc)}"
                ) from None
        return context

    def password(self) -> str:
        if self.sasl_password_file is None:
            return self.sasl_password.reveal()
        try:
            return self.sasl_password_file.read_text().rstrip("\r\n")
        except OSError as exc:
            raise ValueError(f"Kafka SASL password file {self.sasl_password_file}: {_reason(exc)}") from None

    @property
    def request_timeout_ms(self) -> int:
        return int(self.request_timeout_s * 1000)


def _reason(exc: BaseException) -> str:
    return getattr(exc, "strerror", None) or getattr(exc, "reason", None) or str(exc)
