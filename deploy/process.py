"""Server processes of the local stack: launch detached, find by PID file, stop.

A PID alone is not proof that the process is ours (PIDs are reused), so every lookup also
checks that the command line carries the server's marker.
"""

from __future__ import annotations

import asyncio
import errno
import os
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from deploy.errors import PortInUse


@dataclass(frozen=True)
class ServerProcess:
    """One server of the stack: its PID file and the marker its command line carries."""

    name: str
    pid_file: Path
    marker: str

    def pid(self) -> int | None:
        """The PID of the running server, or None (a stale PID file is removed)."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        if is_alive(pid) and self.marker in _cmdline(pid):
            return pid
        self.pid_file.unlink(missing_ok=True)
        return None

    def launch(self, argv: Sequence[str], cwd: Path, log_file: Path, env: dict[str, str] | None = None) -> int:
        """Start `argv` in its own session, output appended to `log_file`, PID recorded.

        Its own session keeps Ctrl-C in the terminal that ran `stack up` from reaching it.
        """
        log_file.parent.mkdir(parents=True, exist_ok=True)
        with open(log_file, "ab") as out:
            proc = subprocess.Popen(
                list(argv),
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env=env,
            )
        self.pid_file.parent.mkdir(parents=True, exist_ok=True)
        self.pid_file.write_text(f"{proc.pid}\n")
        return proc.pid

    async def stop(self, timeout_s: float, pid: int | None = None) -> bool:
        """SIGTERM, wait up to `timeout_s`, then SIGKILL. True if it exited on SIGTERM.

        `pid` is for a process this caller just launched, found without the marker check.
        """
        pid = pid if pid is not None and is_alive(pid) else self.pid()
        if pid is None:
            return True
        os.kill(pid, signal.SIGTERM)
        clean = await wait_for_exit(pid, timeout_s)
        if not clean:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            await wait_for_exit(pid, 10.0)
        self.pid_file.unlink(missing_ok=True)
        return clean


def is_alive(pid: int) -> bool:
    """True while `pid` runs; a zombie counts as gone (and is reaped if it is our child)."""
    try:
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    except ChildProcessError:
        pass
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            # The state letter follows the parenthesised command name, which may hold spaces.
            state = f.read().rsplit(b")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError, ProcessLookupError):
        return False
    return state not in (b"Z", b"X")


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def rss_mib(pid: int) -> float | None:
    """Resident memory of `pid` in MiB, from /proc."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def uptime_s(pid: int) -> float | None:
    """Seconds since `pid` started, from its /proc start time."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        start_ticks = int(fields[19])
        boot_s = float(Path("/proc/uptime").read_text().split()[0])
    except (OSError, IndexError, ValueError):
        return None
    return boot_s - start_ticks / os.sysconf("SC_CLK_TCK")


async def wait_for_exit(pid: int, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while is_alive(pid):
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.1)
    return True


def check_port_free(port: int, what: str) -> None:
    """Raise PortInUse if something already listens on 127.0.0.1:`port`."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        # SO_REUSEADDR: a port left in TIME_WAIT by our own last run is free to use.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise PortInUse(
                    f"{what} port 127.0.0.1:{port} is already in use by another process; "
                    f"free it or choose another port (see `printfleet stack up --help`)"
                ) from None
            raise


def log_tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
