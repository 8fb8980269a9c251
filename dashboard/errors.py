"""The dashboard's errors, under the printfleet root (common/errors.py).

    DashboardError
    ├── UsersFileError     the users file cannot be read, or is not as it should be (also a ValueError)
    └── FeedFailed         the Kafka feed stopped: the dashboard cannot show a live fleet
"""

from __future__ import annotations

from common.errors import PrintfleetError


class DashboardError(PrintfleetError):
    retriable = False


class UsersFileError(DashboardError, ValueError):
    """The users file is unreadable, not TOML, or a user in it is malformed; names the file."""

    retriable = False


class FeedFailed(DashboardError):
    """The feed's consumer stopped on an error it does not recover from (retriable: a
    restart may find Kafka back)."""

    retriable = True
