"""Errors of the stream-processing logic (`streams/`).

    PrintfleetError                  common/errors.py
    └── StreamsError                 root; `retriable` says whether trying again can help
        ├── InvalidRecordError       a record lacks a field or has a value the logic cannot
        │                            use (not retriable: dead-letter the record)
        ├── StateDecodeError         a table value (a state's plain dict) does not decode
        │                            (not retriable: the changelog holds something this code
        │                            never wrote, e.g. after an incompatible change)
        ├── InvalidVersionError      a firmware or parameter version string does not parse
        │                            (not retriable: the advisory is skipped for that device)
        └── TransactionFailed        a partition's Kafka transaction did not commit, or the
                                     partition could not be taken (retriable: the worker
                                     stops, and a restart replays from the committed book)

Each leaf but TransactionFailed is also a ValueError.

The logic modules raise these (`record_boundary` turns a KeyError/TypeError/ValueError
from a malformed record into InvalidRecordError where records enter the logic:
`device.apply`, not each step inside it, whose wrappers cost a twentieth of a
heartbeat); the device agent catches them at one boundary, counts them, and
dead-letters the record that caused them. Nothing of the logic is retriable: it is
deterministic, so the same input fails the same way again.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from common.errors import PrintfleetError


class StreamsError(PrintfleetError):
    """Root of every error the stream logic raises."""

    retriable: bool = False


class InvalidRecordError(StreamsError, ValueError):
    """A record cannot be applied: a required field is missing or has the wrong shape."""

    retriable = False


class StateDecodeError(StreamsError, ValueError):
    """A state's plain dict (from a table's changelog) does not match its dataclass."""

    retriable = False


class InvalidVersionError(StreamsError, ValueError):
    """A version string is not dotted numbers with an optional `-suffix`."""

    retriable = False


class TransactionFailed(StreamsError):
    """A partition's transaction (outputs, states, book) is not in Kafka."""

    retriable = True


P = ParamSpec("P")
R = TypeVar("R")


def record_boundary(func: Callable[P, R]) -> Callable[P, R]:
    """Decorate a public step that reads records: a missing key or a value of the wrong
    type inside it becomes `InvalidRecordError` (naming the step), so the agent has one
    exception to catch and dead-letter; errors of this package pass unchanged."""

    @functools.wraps(func)
    def step(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except StreamsError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise InvalidRecordError(f"{func.__qualname__}: {type(exc).__name__}: {exc}") from exc

    return step
