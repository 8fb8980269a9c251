"""The settings of `printfleet alerts forward`: flags, then `PRINTFLEET_WEBHOOK_*`
variables, then defaults (`common.settings.build`). Built once in the command."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from common.kafka.settings import KafkaSettings
from common.settings import Secret

DEFAULT_GROUP: Final = "printfleet-alerts-forward"


@dataclass(frozen=True)
class WebhookSettings:
    kafka: KafkaSettings
    url: str
    # HMAC key shared with the receiver: from a file or PRINTFLEET_WEBHOOK_SECRET, never a flag.
    secret: Secret = field(default_factory=Secret, repr=False)
    # Registry name (the topic prefix goes in front): two forwarders to two receivers
    # need two groups, each with its own position.
    group_id: str = DEFAULT_GROUP
    # Where a group with no committed offsets starts: the end (a new receiver is not
    # sent a week of history), or the oldest record the topic keeps.
    from_beginning: bool = False
    rules: frozenset[str] = frozenset()
    severities: frozenset[str] = frozenset()
    site: str = ""
    timeout_s: float = 10.0  # one POST, connection to answer
    retry_initial_s: float = 0.5
    retry_max_s: float = 60.0  # also the cap of a receiver's Retry-After
    # Attempts of a change the receiver refuses for good (4xx) before it is dead-lettered:
    # more than one, so a receiver's deploy that answers 404 for a moment costs nothing.
    refused_attempts: int = 3
    ops_host: str = "127.0.0.1"
    ops_port: int = -1

    def __post_init__(self) -> None:
        if not self.url.startswith(("http://", "https://")):
            raise ValueError(f"webhook URL {self.url!r}: give an http:// or https:// URL")
        if not self.secret:
            raise ValueError("no webhook secret: give --secret-file FILE or set PRINTFLEET_WEBHOOK_SECRET")
        if self.refused_attempts < 1:
            raise ValueError("refused_attempts must be at least 1")
        if self.timeout_s <= 0 or self.retry_initial_s <= 0 or self.retry_max_s < self.retry_initial_s:
            raise ValueError("timeout_s and retry_initial_s must be > 0, retry_max_s >= retry_initial_s")
