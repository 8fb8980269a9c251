"""Stable, random-looking stand-ins for what identifies something at the site.

Printers number their jobs and parts locally, and a job names the computer that submitted
it. The collector replaces each with an HMAC-SHA256 of the value under the site's secret:
the same input always maps to the same pseudonym (so records of one job stay joined and
retries keep their record ids), while without the secret the cloud cannot go back to the
value or even test a guess. Pure functions; the collector holds the secret.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid

# Crockford-like: no I, L, O, U; the ids read as "random alphanumeric" (catalogue 4.3).
_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def _mac(secret: bytes, namespace: str, value: str) -> bytes:
    return hmac.new(secret, f"{namespace}\x00{value}".encode(), hashlib.sha256).digest()


def pseudonym(secret: bytes, namespace: str, value: str, length: int = 16) -> str:
    """A `length`-character alphanumeric id for `value` within `namespace`.

    Namespaces keep a job id and a part id that happen to be equal from colliding.
    """
    digest = int.from_bytes(_mac(secret, namespace, value)[:10], "big")
    out = []
    for _ in range(length):
        digest, index = divmod(digest, 32)
        out.append(_ALPHABET[index])
    return "".join(out)


def record_id(secret: bytes, *parts: str) -> str:
    """A UUID (v4 layout) derived from what the record observes, e.g. (device, kind, seq).

    Polling the same observation again after a restart yields the same record id, so
    consumers can drop the repeat.
    """
    raw = bytearray(_mac(secret, "record", "\x1f".join(parts))[:16])
    raw[6] = (raw[6] & 0x0F) | 0x40
    raw[8] = (raw[8] & 0x3F) | 0x80
    return str(uuid.UUID(bytes=bytes(raw)))


def new_secret() -> str:
    """A fresh site secret, as text for the site config."""
    return base64.urlsafe_b64encode(hashlib.sha256(uuid.uuid4().bytes + uuid.uuid4().bytes).digest()).decode()
