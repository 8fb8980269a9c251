"""Conversions for the codec's time values.

The codec exchanges `timestamp-millis` fields as int milliseconds since the Unix epoch
(UTC) and `date` fields as int days since the epoch; see `SchemaVersion` for why.
Producers convert with these helpers when they hold datetimes; consumers convert back
only where they need calendar arithmetic.
"""

from __future__ import annotations

import time
from datetime import date, datetime, timedelta, timezone
from typing import Final

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=timezone.utc)
_EPOCH_DAY: Final = date(1970, 1, 1)


def now_millis() -> int:
    """The wall clock as a `timestamp-millis` value."""
    return time.time_ns() // 1_000_000


def to_millis(moment: datetime) -> int:
    """An aware datetime as a `timestamp-millis` value. Raises ValueError if naive:
    a naive datetime's zone is a guess, and a wrong guess shifts every record by hours.
    """
    if moment.tzinfo is None:
        raise ValueError("naive datetime: give it a time zone")
    return (moment - _EPOCH) // timedelta(milliseconds=1)


def from_millis(millis: int) -> datetime:
    """A `timestamp-millis` value as an aware UTC datetime."""
    return _EPOCH + timedelta(milliseconds=millis)


def to_days(day: date) -> int:
    """A date as a `date` value (days since 1970-01-01)."""
    return (day - _EPOCH_DAY).days


def from_days(days: int) -> date:
    """A `date` value as a date."""
    return _EPOCH_DAY + timedelta(days=days)
