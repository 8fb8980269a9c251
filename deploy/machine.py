"""What machine a bench ran on, for the first line of its report."""

from __future__ import annotations

import os
import platform


def describe() -> str:
    """"2 x <CPU model>, 24 GiB RAM, Python 3.11.7" (a "?" where /proc does not say)."""
    model = platform.processor() or platform.machine() or "?"
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as cpuinfo:
            model = next((line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")), model)
    except OSError:
        pass
    try:
        mem = f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB"
    except (ValueError, OSError):
        mem = "?"
    return f"{os.cpu_count()} x {model}, {mem} RAM, Python {platform.python_version()}"
