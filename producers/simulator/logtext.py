"""The raw content of a device log, generated when first read.

A real printer's logs quote customer data (job names, file paths with user names, host
names); the collector must remove it before upload, and sets `content_sanitised`. The
simulator therefore writes such lines into PRINTER_SESSION and FRONT_PANEL logs. Content
is a pure function of the log record, so the metadata (size, lines, SHA-256) computed
from it never changes. Called by `views.logs_page` and the log-content endpoint.
"""

from __future__ import annotations

import hashlib
import random
from datetime import datetime, timezone
from typing import Final

from producers.simulator.model import LogRecord

_COMPONENTS: Final = {
    "PRINTER_SESSION": ("session", "jobmgr", "spooler"),
    "PRINTHEAD": ("phsvc", "phhealth"),
    "LAMP_CONTROL": ("lampctl",),
    "COOLING_SERVO": ("coolsrv",),
    "BUILD_MODULE": ("bumod", "recoater"),
    "SERVO_STATE_MACHINE": ("servo-x", "servo-y", "servo-z", "carriage"),
    "TROLLEY_WARMING": ("trolley", "heater"),
    "FRONT_PANEL": ("ui",),
    "SENSOR": ("sensors",),
    "MEMORY_USAGE": ("memmon",),
}


def content(log: LogRecord) -> str:
    """The log's text, one entry per line, each `<ISO time> <LEVEL> <component> <text>`."""
    rng = random.Random(log.seed)
    components = _COMPONENTS.get(log.log_type, ("core",))
    span = max(1, log.time_ms - log.started_ms)
    lines = []
    for i in range(log.lines):
        at = log.started_ms + span * i // max(1, log.lines - 1)
        stamp = datetime.fromtimestamp(at / 1000.0, tz=timezone.utc).isoformat(timespec="milliseconds")
        level = "WARN" if rng.random() < 0.04 else "INFO"
        text = _text(log, rng, i)
        lines.append(f"{stamp.replace('+00:00', 'Z')} {level} {rng.choice(components)} {text}")
    return "\n".join(lines) + "\n"


def _text(log: LogRecord, rng: random.Random, i: int) -> str:
    # Private strings appear early and now and then, as a real session log repeats them.
    if log.private and (i == 0 or rng.random() < 0.05):
        quoted = log.private[i % len(log.private)] if i else log.private[0]
        return f"context value='{quoted}'"
    kind = log.log_type
    if kind == "SENSOR":
        return f"rh={rng.uniform(10, 80):.1f}% ambient={rng.uniform(18, 30):.1f}C o2={rng.uniform(19, 21):.2f}%"
    if kind == "MEMORY_USAGE":
        return f"rss_mb={rng.randint(900, 14_000)} free_mb={rng.randint(2_000, 40_000)}"
    if kind == "LAMP_CONTROL":
        return f"lamp={rng.randint(0, 3)} duty={rng.uniform(0.3, 0.95):.2f} target_c={rng.uniform(160, 190):.1f}"
    if kind in ("COOLING_SERVO", "TROLLEY_WARMING"):
        return f"zone={rng.randint(1, 8)} temp_c={rng.uniform(40, 180):.1f} valve={rng.uniform(0, 1):.2f}"
    if kind == "SERVO_STATE_MACHINE":
        return f"state={rng.choice(('IDLE', 'HOMING', 'MOVE', 'HOLD'))} pos_mm={rng.uniform(0, 380):.2f}"
    return f"step={i} status={rng.choice(('ok', 'ok', 'ok', 'retry'))} value={rng.randint(0, 9999)}"


def digest(log: LogRecord) -> tuple[int, int, str]:
    """(size_bytes, line_count, sha256 hex) of the raw content, computed once per log."""
    if log.digest is None:
        data = content(log).encode()
        log.digest = (len(data), data.count(b"\n"), hashlib.sha256(data).hexdigest())
    return log.digest
