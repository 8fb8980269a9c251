"""The site collector runs on Windows too; no Windows machine runs these tests, so what can
be checked on Linux is checked here: the collector's import graph type-checks for
win32 (typeshed marks POSIX-only calls such as fcntl.flock, os.pread, os.O_CLOEXEC and
os.O_DIRECTORY as absent there), and every os.open of the spool opens in binary mode."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
OWN = ("printfleet", "common", "schemas", "producers", "streams", "sinks", "deploy")

# The modules of this repository that `printfleet collector` imports, from a child
# process (a clean sys.modules).
GRAPH = f"""
import json, sys
import printfleet.cmd_collector
own = {OWN!r}
print(json.dumps(sorted(
    m.__file__ for name, m in sys.modules.items()
    if name.split(".")[0] in own and getattr(m, "__file__", None)
)))
"""


def collector_modules() -> list[str]:
    out = subprocess.run([sys.executable, "-c", GRAPH], capture_output=True, text=True, check=True, cwd=REPO, timeout=120)
    files: list[str] = json.loads(out.stdout)
    return files


def test_the_collector_imports_its_command_and_the_spool() -> None:
    names = {Path(f).relative_to(REPO).as_posix() for f in collector_modules()}
    assert {"printfleet/cmd_collector.py", "producers/spool/files.py", "printfleet/stop_signals.py"} <= names
    assert not any(n.startswith(("streams/", "sinks/", "deploy/")) for n in names)


def test_the_collector_type_checks_for_windows() -> None:
    files = collector_modules()
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--platform", "win32", "--no-incremental", *files],
        capture_output=True, text=True, cwd=REPO, timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_os_open_of_the_spool_opens_binary() -> None:
    """`os.open` without O_BINARY opens in text mode on Windows; `files.OPEN_FLAGS` has it.
    The one exception is the directory opened for fsync, which is POSIX only."""
    seen = 0
    for path in sorted((REPO / "producers" / "spool").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and ast.unparse(node.func) == "os.open":
                flags = ast.unparse(node.args[1])
                seen += 1
                assert "OPEN_FLAGS" in flags or "O_DIRECTORY" in flags, f"{path.name}:{node.lineno}: {flags}"
    assert seen >= 5
