"""The signature of a webhook delivery: what the forwarder sends and a receiver checks.

    X-Printfleet-Id          the alert record's record_id: the same change keeps it on
                             every attempt and after every restart (deduplicate on it)
    X-Printfleet-Timestamp   unix seconds when this attempt was signed
    X-Printfleet-Signature   "sha256=" + hex HMAC-SHA256(secret, timestamp + "." + body)

The timestamp is inside the signed text, so a captured request replayed later fails the
receiver's window check (`verify`, default 5 minutes) without being re-signable. Pure.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import Final

ID_HEADER: Final = "X-Printfleet-Id"
TIMESTAMP_HEADER: Final = "X-Printfleet-Timestamp"
SIGNATURE_HEADER: Final = "X-Printfleet-Signature"
EVENT_HEADER: Final = "X-Printfleet-Event"
SCHEME: Final = "sha256="
REPLAY_WINDOW_S: Final = 300


def signature(secret: bytes, timestamp: int, body: bytes) -> str:
    """The value of the signature header for `body` signed at `timestamp`."""
    mac = hmac.new(secret, str(timestamp).encode() + b"." + body, hashlib.sha256)
    return SCHEME + mac.hexdigest()


def headers(secret: bytes, delivery_id: str, event: str, timestamp: int, body: bytes) -> dict[str, str]:
    """Every header of one attempt (the forwarder signs again at each attempt)."""
    return {
        "Content-Type": "application/json",
        ID_HEADER: delivery_id,
        EVENT_HEADER: event,
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: signature(secret, timestamp, body),
    }


def verify(secret: bytes, received: Mapping[str, str], body: bytes, now: float,
           window_s: float = REPLAY_WINDOW_S) -> str | None:
    """A receiver's check: None when `body` was signed with `secret` within `window_s` of
    `now`, else why not. `received` must look names up without regard to case, as
    aiohttp's and most frameworks' header mappings do."""
    stamp = received.get(TIMESTAMP_HEADER, "")
    if not stamp.isdigit():
        return f"no {TIMESTAMP_HEADER} of unix seconds"
    if abs(now - int(stamp)) > window_s:
        return f"timestamp {stamp} is more than {window_s:g}s from now (a replay, or a clock off)"
    expected = signature(secret, int(stamp), body)
    if not hmac.compare_digest(expected, received.get(SIGNATURE_HEADER, "")):
        return "signature does not match the body"
    return None
