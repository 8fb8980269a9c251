"""Errors of the webhook forwarder (`printfleet alerts forward`), under `SinkError`.

    SinkError                      sinks/errors.py
    └── WebhookError               root of this subtree
        ├── ReceiverUnavailable    retriable  no connection, a timeout, or an answer of
        │                                     408, 429 or 5xx; carries `retry_after`
        └── ReceiverRefused                   any other non-2xx answer (400, 401, 404, 422,
                                              a redirect): the receiver refuses this body
                                              for good; after a few attempts the change is
                                              dead-lettered with `status` and `answer`

aiohttp's exceptions are translated in `sinks/webhook/delivery.py` only.
"""

from __future__ import annotations

from sinks.errors import SinkError


class WebhookError(SinkError):
    """Root of every error of `sinks.webhook`."""

    retriable = False


class ReceiverUnavailable(WebhookError):
    """The receiver could not take the change now; the same POST is safe to repeat (the
    receiver deduplicates on the delivery id) after `retry_after` seconds (None: the
    caller's backoff decides)."""

    retriable = True

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ReceiverRefused(WebhookError):
    """The receiver answered `status` (neither 2xx nor a temporary failure) with
    `answer` (the start of its body)."""

    retriable = False

    def __init__(self, message: str, status: int, answer: str) -> None:
        super().__init__(message)
        self.status = status
        self.answer = answer
