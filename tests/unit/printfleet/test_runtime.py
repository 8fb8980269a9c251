"""`printfleet.runtime.relax_gc`, in a child process (it changes the process's collector)."""

from __future__ import annotations

import subprocess
import sys

CHECK = """
import gc
from printfleet.runtime import relax_gc
assert gc.get_freeze_count() == 0
relax_gc()
print(gc.get_threshold(), gc.get_freeze_count() > 1000)
"""


def test_the_collector_runs_rarely_and_never_among_what_exists_at_start() -> None:
    out = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.split() == ["(50000,", "20,", "100)", "True"]
