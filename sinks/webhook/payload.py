"""What the forwarder makes of a message of the alerts topic: the JSON body it POSTs and
whether the filters keep it. Pure: no I/O.

The body is the alert as `printfleet alerts follow --format json` prints it (the
columns of `common.alert_view`, lifecycle included) under "alert", with the delivery id
and the event name beside it:

    {"id": "<record_id>", "event": "alert.raised", "alert": {"alert_id": ..., "lifecycle": "RAISED", ...}}

It depends on the record only, so a change sent again (a retry, a restart) has the same
body and id, byte for byte.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from common.alert_view import SEVERITIES, AlertFilter, record_row
from schemas import DecodeError, SchemaRegistry


@dataclass(frozen=True, slots=True)
class Change:
    """One alert lifecycle change ready to POST."""

    delivery_id: str
    event: str
    body: bytes


@dataclass(frozen=True, slots=True)
class ForwardFilter:
    """Which changes are forwarded; an empty field keeps every change. `rules` and
    `severities` keep a change whose rule (severity) is any of theirs; `where` is the
    site and printer filter `printfleet alerts list|follow` use."""

    rules: frozenset[str] = frozenset()
    severities: frozenset[str] = frozenset()
    where: AlertFilter = AlertFilter()

    def __post_init__(self) -> None:
        unknown = sorted(self.severities - set(SEVERITIES))
        if unknown:
            raise ValueError(f"unknown severity {', '.join(unknown)}; one of {', '.join(SEVERITIES)}")

    def matches(self, alert: Mapping[str, Any]) -> bool:
        return ((not self.rules or alert.get("rule_id") in self.rules)
                and (not self.severities or alert.get("severity") in self.severities)
                and self.where.matches(alert))


def decode(registry: SchemaRegistry, value: bytes | None) -> dict[str, Any] | str:
    """The alert record in a message's value, or why there is none (the forwarder
    dead-letters such a message; it never skips it in silence)."""
    if value is None:
        return "no value (a tombstone)"
    try:
        decoded = registry.decode(value)
    except DecodeError as exc:
        return f"{type(exc).__name__}: {exc}"
    if decoded.kind != "alert":
        return f"a {decoded.kind} record, not an alert"
    return decoded.record


def change(alert: Mapping[str, Any]) -> Change:
    """The body and headers' values of a decoded alert record."""
    event = f"alert.{str(alert['lifecycle']).lower()}"
    body = {"id": alert["record_id"], "event": event, "alert": record_row(alert)}
    text = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
    return Change(str(alert["record_id"]), event, text.encode())
