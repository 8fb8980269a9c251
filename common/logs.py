"""Log output of every printfleet command: text for people, JSON lines for log shippers.

printfleet's log messages are `event=<name> key=value ...` pairs followed, at times, by
free text. The text format prints them as they are; the JSON format puts each pair in a
field of its own (values stay strings) beside `time`, `level`, `logger` and the whole
`message`, one object per line, so Loki, Elasticsearch or Vector's `parse_json` take them
without a pattern. A traceback, where a log call asks for one, goes in `exception`.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Literal

LogFormat = Literal["text", "json"]
FORMATS: tuple[LogFormat, ...] = ("text", "json")
TEXT_FORMAT = "%(asctime)s level=%(levelname)s logger=%(name)s %(message)s"

# key=value pairs: a key of word characters, a value up to the next space.
_PAIR = re.compile(r"(?:^|\s)([a-z_][a-z0-9_]*)=(\S*)")
_RESERVED = frozenset({"time", "level", "logger", "message", "exception"})


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        out: dict[str, str] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
        }
        for key, value in _PAIR.findall(message):
            if key not in _RESERVED:
                out.setdefault(key, value)
        out["message"] = message
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


def configure(*, verbose: bool = False, log_format: LogFormat = "text") -> None:
    """Send every logger's records to stderr in `log_format`, at DEBUG with `verbose`,
    else WARNING. Replaces handlers set before (a command runs this once, first)."""
    if log_format not in FORMATS:
        raise ValueError(f"log format {log_format!r}: one of {', '.join(FORMATS)}")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in root.handlers[:]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.WARNING)


class Throttle:
    """Lets a repeated log line through at most once per `interval_s` and counts the ones
    it held back, so a printer that stays away for an hour is a line a minute, not one per
    poll."""

    def __init__(self, interval_s: float = 60.0) -> None:
        self._interval_s = interval_s
        self._last: float | None = None
        self._held = 0

    def allow(self, now: float) -> int | None:
        """None: hold this line back. Else let it through: how many were held back since
        the last one let through."""
        if self._last is not None and now - self._last < self._interval_s:
            self._held += 1
            return None
        held, self._held, self._last = self._held, 0, now
        return held

    def reset(self) -> int:
        """The condition is over: the next line goes through. Returns how many were held."""
        held, self._held, self._last = self._held, 0, None
        return held
