"""One POST of a change to the receiver, and what its answer means: the one boundary
where aiohttp's exceptions become this package's errors.

    2xx                          delivered
    408, 425, 429, 5xx           ReceiverUnavailable (retriable; Retry-After is honoured)
    connection error, timeout    ReceiverUnavailable
    anything else (4xx, 3xx)     ReceiverRefused: the receiver refuses this body for good

Redirects are not followed: a webhook URL names its endpoint, and following one would
send the signed body to an address nobody configured.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from enum import Enum
from typing import Final

import aiohttp

from sinks.webhook import signing
from sinks.webhook.errors import ReceiverRefused, ReceiverUnavailable
from sinks.webhook.payload import Change

ANSWER_CHARS: Final = 500  # of the receiver's answer kept for a log line or a dead letter
_TEMPORARY: Final = frozenset({408, 425, 429})


class Answer(Enum):
    DELIVERED = "delivered"
    RETRY = "retry"
    REFUSED = "refused"


def classify(status: int) -> Answer:
    """What an HTTP status means for the change that was POSTed."""
    if 200 <= status < 300:
        return Answer.DELIVERED
    if status in _TEMPORARY or 500 <= status < 600:
        return Answer.RETRY
    return Answer.REFUSED


def retry_after(value: str | None, maximum_s: float) -> float | None:
    """A Retry-After header in seconds (delta-seconds only; an HTTP date is ignored, the
    backoff decides), capped at `maximum_s`."""
    if value is None or not value.strip().isdigit():
        return None
    return min(float(value.strip()), maximum_s)


async def post(session: aiohttp.ClientSession, url: str, secret: bytes, change: Change, *,
               timeout_s: float, max_retry_after_s: float,
               clock: Callable[[], float] = time.time) -> int:
    """POST `change`, signed now; returns the 2xx status. Raises ReceiverUnavailable
    or ReceiverRefused (see the module docstring)."""
    headers = signing.headers(secret, change.delivery_id, change.event, int(clock()), change.body)
    try:
        async with session.post(url, data=change.body, headers=headers, allow_redirects=False,
                                timeout=aiohttp.ClientTimeout(total=timeout_s)) as response:
            answer = (await response.text(errors="replace"))[:ANSWER_CHARS]
            status = response.status
            wait = retry_after(response.headers.get("Retry-After"), max_retry_after_s)
    except asyncio.TimeoutError:
        raise ReceiverUnavailable(f"no answer from {url} within {timeout_s:g}s") from None
    except aiohttp.ClientError as exc:
        raise ReceiverUnavailable(f"{url}: {type(exc).__name__}: {exc}") from None
    kind = classify(status)
    if kind is Answer.DELIVERED:
        return status
    if kind is Answer.RETRY:
        raise ReceiverUnavailable(f"{url} answered {status}: {answer!r}", retry_after=wait)
    raise ReceiverRefused(f"{url} answered {status}: {answer!r}", status, answer)
