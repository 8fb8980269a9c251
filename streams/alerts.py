"""Alert lifecycle: RAISED -> UPDATED* -> CLEARED per dedup key, without alert storms.

Rules (`streams.alert_rules`) turn input records into `Condition`s: "this key is active
(or not) at this moment, with this text". `observe(book, condition)` moves the key's
alert through its lifecycle and returns the `alert` records to produce:

- active, no open alert: RAISED (a new episode, new alert_id);
- active, open: an occurrence. UPDATED only when the severity escalates, a prediction
  moves, or (for countable conditions) the occurrence count reaches the next milestone
  (10, 100, 1,000...) and `min_update_interval_s` passed since the last record. So 1,000
  identical events give 1 RAISED and at most 3 UPDATED records, each with the count.
- inactive, open: CLEARED; a later active condition raises a new episode.

Every record carries (alert v2) `occurrences`, the active conditions the episode has
absorbed so far (1 when RAISED; the CLEARED record has the final count), and
`confidence`, the rule's as of the last RAISED or UPDATED (each rule's is described in
`streams.alert_rules`). The summary keeps saying them in words (the count for countable
events), for readers of alert v1.

`expire(book, now_ms)` (timer) clears event alerts that stayed quiet for their
`quiet_clear_s`, at last occurrence + quiet time (not at `now_ms`, so a late or
repeated timer produces the same record).

Idempotence: per key, a condition is applied only if it is newer, by (at_ms,
source_id), than every condition applied to that key before; anything else is a replay
(or older than what the alert already knows) and changes nothing. So applying any
sequence of conditions twice is the same as once, a redelivered event cannot re-raise a
cleared alert, and memory is one mark per key instead of a list of ids. The price: an
event that arrives after a newer one of the same code is not counted. Record ids are
uuid5 of (alert_id, lifecycle step, count), so a replay produces the same ids.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Final

from streams.ids import derived_id
from streams.plain import PlainState, copied

SEVERITY_RANK: Final = {"UNKNOWN": 0, "INFO": 1, "WARNING": 2, "ERROR": 3, "CRITICAL": 4}


@dataclass(frozen=True, slots=True)
class Part:
    """A spare part a technician should bring (schema `RecommendedPart`)."""

    part_number: str
    description: str
    quantity: int = 1


@dataclass(frozen=True, slots=True)
class Condition:
    """What a rule saw at `at_ms` about one dedup key. `confidence` (0..1) and
    `evidence` say how sure the rule is (1.0 for what the printer reported itself)."""

    rule_id: str
    dedup_key: str
    active: bool
    at_ms: int
    source_id: str
    severity: str = "WARNING"
    subsystem: str | None = None
    summary: str = ""
    recommended_action: str = ""
    parts: tuple[Part, ...] = ()
    source_event_code: str | None = None
    predicted_failure_at: int | None = None
    confidence: float = 1.0
    evidence: str = "reported by the printer"
    notify_service: bool = False
    quiet_clear_s: float | None = None  # event alerts: clear after this long without one
    countable: bool = False  # occurrences are events worth counting in the text


@dataclass(slots=True)
class OpenAlert(PlainState):
    alert_id: str
    rule_id: str
    raised_at: int
    severity: str
    subsystem: str | None
    summary: str
    recommended_action: str
    parts: list[Part]
    source_event_code: str | None
    predicted_failure_at: int | None
    confidence: float
    evidence: str
    notify_service: bool
    quiet_clear_s: float | None
    countable: bool
    occurrences: int = 1
    last_at: int = 0
    emitted_at: int = 0
    next_milestone: int = 10


@dataclass(slots=True)
class AlertBook(PlainState):
    """Alerts of one device (the alert agent's table value, keyed by device_id)."""

    site_id: str = ""
    device_id: str = ""
    open: dict[str, OpenAlert] = field(default_factory=dict)
    applied: dict[str, tuple[int, str]] = field(default_factory=dict)  # key -> newest (at, source)


@dataclass(frozen=True, slots=True)
class AlertSettings:
    min_update_interval_s: float = 900.0
    milestone_factor: int = 10
    prediction_shift_s: float = 12 * 3600.0  # a predicted date moving more is news


def open_count(book: AlertBook) -> int:
    return len(book.open)


def observe(book: AlertBook, cond: Condition, settings: AlertSettings = AlertSettings()) -> tuple[AlertBook, list[dict[str, Any]]]:
    """Apply one condition; returns the new book (the input is not mutated) and the
    alert records to produce (zero or one)."""
    key = cond.dedup_key
    mark = (cond.at_ms, cond.source_id)
    if key in book.applied and mark <= book.applied[key]:
        return book, []  # a replay, or older than what this key already knows
    cur = book.open.get(key)
    if cur is None and not cond.active:
        # Nothing to clear, but remember the mark: replaying this "all is well" after a
        # newer raise must not clear that raise.
        return copied(book, applied={**book.applied, key: mark}), []
    b = copied(book, open=dict(book.open), applied={**book.applied, key: mark})
    if cur is None:
        alert = OpenAlert(
            alert_id=derived_id("alert", key, cond.at_ms), rule_id=cond.rule_id, raised_at=cond.at_ms,
            severity=cond.severity, subsystem=cond.subsystem, summary=cond.summary,
            recommended_action=cond.recommended_action, parts=list(cond.parts),
            source_event_code=cond.source_event_code, predicted_failure_at=cond.predicted_failure_at,
            confidence=cond.confidence, evidence=cond.evidence, notify_service=cond.notify_service,
            quiet_clear_s=cond.quiet_clear_s, countable=cond.countable, last_at=cond.at_ms, emitted_at=cond.at_ms,
        )
        b.open[key] = alert
        return b, [_record(b, key, alert, "RAISED", cond.at_ms, derived_id(alert.alert_id, "RAISED"))]
    if not cond.active:
        del b.open[key]
        return b, [_record(b, key, cur, "CLEARED", cond.at_ms, derived_id(cur.alert_id, "CLEARED"), cleared_at=cond.at_ms)]
    a = copied(cur, occurrences=cur.occurrences + 1, last_at=max(cur.last_at, cond.at_ms))
    b.open[key] = a
    escalated = SEVERITY_RANK.get(cond.severity, 0) > SEVERITY_RANK.get(a.severity, 0)
    moved = _prediction_moved(a.predicted_failure_at, cond.predicted_failure_at, cond.at_ms, settings)
    quiet_enough = (cond.at_ms - a.emitted_at) / 1000.0 >= settings.min_update_interval_s
    milestone = cond.countable and a.occurrences >= a.next_milestone and quiet_enough
    if not (escalated or moved or milestone):
        return b, []
    if escalated:
        a.severity, a.notify_service = cond.severity, a.notify_service or cond.notify_service
    a.summary, a.recommended_action, a.parts = cond.summary, cond.recommended_action, list(cond.parts)
    a.predicted_failure_at, a.confidence, a.evidence = cond.predicted_failure_at, cond.confidence, cond.evidence
    a.emitted_at = cond.at_ms
    while a.next_milestone <= a.occurrences:
        a.next_milestone *= settings.milestone_factor
    rid = derived_id(a.alert_id, "UPDATED", a.occurrences, a.severity, a.predicted_failure_at)
    return b, [_record(b, key, a, "UPDATED", cond.at_ms, rid)]


def expire(book: AlertBook, now_ms: int) -> tuple[AlertBook, list[dict[str, Any]]]:
    """Clear open alerts whose condition has a quiet time and was quiet that long."""
    due = [
        (key, a) for key, a in book.open.items()
        if a.quiet_clear_s is not None and a.last_at + a.quiet_clear_s * 1000 <= now_ms
    ]
    if not due:
        return book, []
    b = copied(book, open=dict(book.open), applied=dict(book.applied))
    out = []
    for key, a in sorted(due, key=lambda item: item[0]):
        at = a.last_at + round((a.quiet_clear_s or 0.0) * 1000)
        del b.open[key]
        b.applied[key] = max(b.applied.get(key, (at, "")), (at, ""))
        out.append(_record(b, key, a, "CLEARED", at, derived_id(a.alert_id, "CLEARED"), cleared_at=at))
    return b, out


def _prediction_moved(before: int | None, now: int | None, at_ms: int, settings: AlertSettings) -> bool:
    """A new predicted date is news if it moved by more than `prediction_shift_s` and
    by more than a quarter of the time left (a week out, a day's change is noise)."""
    if before is None or now is None:
        return before != now
    return abs(now - before) > max(settings.prediction_shift_s * 1000, 0.25 * (before - at_ms))


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def _summary(a: OpenAlert) -> str:
    text = a.summary
    if a.countable and a.occurrences > 1:
        text += f" ({a.occurrences:,} times since {_iso(a.raised_at)})"
    if a.predicted_failure_at is not None:
        text += f"; expected around {_iso(a.predicted_failure_at)}"
    return f"{text} [{a.evidence}; confidence {round(a.confidence * 100)} %]"


def _record(
    b: AlertBook, key: str, a: OpenAlert, lifecycle: str, at: int, record_id: str, cleared_at: int | None = None
) -> dict[str, Any]:
    return {
        "record_id": record_id,
        "site_id": b.site_id,
        "device_id": b.device_id,
        "event_time": at,
        "alert_id": a.alert_id,
        "dedup_key": key,
        "lifecycle": lifecycle,
        "severity": a.severity,
        "rule_id": a.rule_id,
        "subsystem": a.subsystem,
        "summary": _summary(a),
        "source_event_code": a.source_event_code,
        "raised_at": a.raised_at,
        "cleared_at": cleared_at,
        "predicted_failure_at": a.predicted_failure_at,
        "recommended_action": a.recommended_action,
        "recommended_parts": [
            {"part_number": p.part_number, "description": p.description, "quantity": p.quantity} for p in a.parts
        ],
        "notify_service": a.notify_service,
        "confidence": round(max(0.0, min(1.0, a.confidence)), 4),
        "occurrences": a.occurrences,
    }
