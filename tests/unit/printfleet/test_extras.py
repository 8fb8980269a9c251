"""A site collector install (no 'cloud' or 'stack' extra): the collector runs, and every
command that needs an extra says which, in one line, exit 2."""

from __future__ import annotations

import subprocess
import sys

# Run in a child whose imports of the cloud extra's packages fail, as in a collector-only
# virtualenv (`pip install printfleet`); the test process has them all.
CHILD = """
import sys
for name in ("aiokafka", "faust", "clickhouse_connect", "orjson", "cryptography", "chdb"):
    sys.modules[name] = None
from printfleet.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _printfleet(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", CHILD, *args], capture_output=True, text=True, timeout=60)


def test_the_collector_needs_no_extra() -> None:
    done = _printfleet("collector", "--help")
    assert done.returncode == 0, done.stderr
    assert "--config" in done.stdout


def test_cloud_commands_name_the_extra_they_need() -> None:
    for command in ("worker", "sink", "gateway", "topics", "stack"):
        done = _printfleet(command, "status") if command == "stack" else _printfleet(command)
        assert done.returncode == 2, (command, done.stderr)
        assert done.stderr.strip().splitlines() == [done.stderr.strip()], command
        assert "needs the 'cloud' extra" in done.stderr and "pip install 'printfleet[cloud]'" in done.stderr, command
        assert "Traceback" not in done.stderr
