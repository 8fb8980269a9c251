"""Why Kafka would not serve us, in one line: the boundary where aiokafka's errors become ours.

    except (KafkaError, OSError, asyncio.TimeoutError) as exc:
        raise await diagnose.failure(settings, exc, "gateway producer") from exc

aiokafka reports a failed start as "Unable to bootstrap from [...]" and leaves the cause
(a wrong password, an untrusted certificate, nothing listening) in a log line. For that
case `failure` connects once more to each bootstrap server with aiokafka's public
`aiokafka.conn.create_conn` and names what stopped it. A refusal that an operator has to
fix (credentials, CA, ACLs) becomes `KafkaRefused`; the rest `KafkaUnavailable`.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from typing import Any, Final

from aiokafka import errors as kafka_errors
from aiokafka.conn import create_conn

from common.kafka.errors import KafkaRefused, KafkaUnavailable
from common.kafka.settings import KafkaSettings

_DENIED: Final = (
    kafka_errors.TopicAuthorizationFailedError,
    kafka_errors.GroupAuthorizationFailedError,
    kafka_errors.ClusterAuthorizationFailedError,
    kafka_errors.TransactionalIdAuthorizationFailed,
)
# A broker's authorization failure codes, as create_topics and friends return them.
DENIED_CODES: Final = frozenset(cls.errno for cls in _DENIED)
CLOSE_TIMEOUT_S: Final = 2.0  # how long a probe waits for its socket to close


async def failure(settings: KafkaSettings, exc: BaseException, what: str) -> KafkaUnavailable:
    """The printfleet error for `exc`, raised by an aiokafka client made from `settings`."""
    if isinstance(exc, _DENIED):
        return KafkaRefused(f"{what}: {denied(settings, type(exc).__name__)}")
    if isinstance(exc, kafka_errors.KafkaConnectionError) and "bootstrap" in str(exc):
        cause = await _connect_cause(settings)
        if isinstance(cause, KafkaRefused):
            return KafkaRefused(f"{what}: {cause}")
        if cause is not None:
            return KafkaUnavailable(f"{what}: {cause}")
    if isinstance(exc, kafka_errors.SaslAuthenticationFailed):
        return KafkaRefused(f"{what}: {_bad_credentials(settings)}")
    return KafkaUnavailable(f"{what}: Kafka at {settings.bootstrap_servers}: {exc!r}")


async def unreachable(settings: KafkaSettings) -> str | None:
    """Why a client cannot connect and authenticate to Kafka now, in one line; None when
    every bootstrap server does. Readiness checks call it (common/ops.py)."""
    cause = await _connect_cause(settings)
    return None if cause is None else f"unreachable: {cause}"


def denied(settings: KafkaSettings, error: str) -> str:
    user = f"user {settings.sasl_username!r}" if settings.sasl else "this client"
    return (f"Kafka at {settings.bootstrap_servers} denied {user} an operation ({error}): "
            f"an ACL is missing (see docs/platform.md, Security)")


def _bad_credentials(settings: KafkaSettings) -> str:
    return (f"Kafka at {settings.bootstrap_servers} refused the {settings.sasl_mechanism} credentials of user "
            f"{settings.sasl_username!r}: wrong user name or password")


async def _connect_cause(settings: KafkaSettings) -> KafkaUnavailable | None:
    """What stops a connection to the first bootstrap server that fails, or None if
    each one connects now."""
    try:
        options = settings.connection()
    except ValueError as exc:
        return KafkaRefused(str(exc))
    for server in settings.bootstrap_servers.split(","):
        host, _, port = server.strip().rpartition(":")
        try:
            await _connect_once(settings, host, int(port), options)
        except ssl.SSLCertVerificationError as exc:
            trusted = f"the CA in {settings.ssl_ca_file}" if settings.ssl_ca_file else "the system's CAs"
            return KafkaRefused(f"the TLS certificate of Kafka at {server} is not trusted by {trusted}: "
                                f"{exc.verify_message}")
        except ssl.SSLError as exc:
            return KafkaRefused(f"TLS with Kafka at {server} failed ({exc.reason}): is it a "
                                f"{settings.security_protocol} listener?")
        except kafka_errors.SaslAuthenticationFailed:
            return KafkaRefused(_bad_credentials(settings))
        except kafka_errors.UnsupportedSaslMechanismError:
            return KafkaRefused(f"Kafka at {server} does not offer SASL mechanism {settings.sasl_mechanism}")
        except ConnectionRefusedError:
            return KafkaUnavailable(f"nothing listens on {server} (Kafka down, or a wrong port)")
        except (OSError, asyncio.TimeoutError, kafka_errors.KafkaError) as exc:
            if settings.tls and await _refuses_certificate(host, int(port), options):
                if settings.ssl_cert_file is None:
                    return KafkaRefused(f"Kafka at {server} requires a client certificate (mutual TLS): "
                                        f"give --kafka-ssl-cert-file and --kafka-ssl-key-file")
                return KafkaRefused(f"Kafka at {server} refused the client certificate {settings.ssl_cert_file}: "
                                    f"not signed by a CA it trusts, or expired")
            return KafkaUnavailable(f"Kafka at {server}: {exc!r}")
    return None


async def _connect_once(settings: KafkaSettings, host: str, port: int, options: dict[str, Any]) -> None:
    """Connect and authenticate once, then close; raises what stopped it.

    Returns only once the socket is closed, refused or not. aiokafka's `close()` only
    starts closing (a TLS transport sends close_notify and closes later): a caller whose
    event loop ends right after, a CLI or a test, left the socket to the garbage
    collector, which then warned "unclosed transport" in whatever ran next. `on_close`
    is how a connection that failed inside `create_conn` is reached at all: aiokafka
    calls it only for one that had a transport."""
    opened: list[Any] = []
    try:
        conn = await asyncio.wait_for(create_conn(
            host, port, client_id=settings.client_id, request_timeout_ms=settings.request_timeout_ms,
            ssl_context=options.get("ssl_context"), security_protocol=settings.security_protocol,
            sasl_mechanism=options.get("sasl_mechanism"), sasl_plain_username=options.get("sasl_plain_username"),
            sasl_plain_password=options.get("sasl_plain_password"),
            on_close=lambda closed, _reason: opened.append(closed),
        ), settings.request_timeout_s)
        conn.close()
    finally:
        for closed in opened:
            # close() again only returns the future its protocol resolves once the socket is closed.
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(closed.close()), CLOSE_TIMEOUT_S)


async def _refuses_certificate(host: str, port: int, options: dict[str, Any]) -> bool:
    """True if the broker ends a TLS connection over the client's certificate (none, or
    one it does not trust). With TLS 1.3 the handshake completes first and the broker's
    alert (Java sends bad_certificate, or certificate_unknown for an untrusted one) comes
    with the first read, which aiokafka reports only as "connection closed"."""
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port, ssl=options["ssl_context"], server_hostname=host), 5)
    except (OSError, asyncio.TimeoutError):
        return False
    try:
        await asyncio.wait_for(reader.read(1), 2)
    except ssl.SSLError as exc:
        return str(exc.reason).endswith(("BAD_CERTIFICATE", "CERTIFICATE_REQUIRED", "CERTIFICATE_UNKNOWN", "UNKNOWN_CA"))
    except (OSError, asyncio.TimeoutError):
        return False
    finally:
        await _close(writer)
    return False


async def _close(writer: asyncio.StreamWriter) -> None:
    """Close and wait until the socket is: see `_connect_once`. A broker that does not
    answer our TLS close_notify in time gets the socket closed without it."""
    writer.close()
    closed = asyncio.ensure_future(writer.wait_closed())
    try:
        await asyncio.wait_for(asyncio.shield(closed), CLOSE_TIMEOUT_S)
    except asyncio.TimeoutError:
        writer.transport.abort()  # the socket is closed at the loop's next turn, which `closed` waits for
        with contextlib.suppress(OSError):
            await closed
    except OSError:
        pass  # the broker's refusal again, already read
