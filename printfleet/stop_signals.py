"""Stop a long-running command on Ctrl-C or a termination request, on POSIX and Windows.

Called by `printfleet collector` (the command a site may run on Windows) from inside its
event loop, before it starts its work:

    undo = stop_signals.install(stop)
    try: ... finally: undo()

POSIX loops take the handlers themselves (`loop.add_signal_handler`). Windows' event
loops have no such method (it raises NotImplementedError), so there Python's
`signal.signal` takes SIGINT (Ctrl-C), SIGBREAK (Ctrl-Break) and SIGTERM, and the handler
hands the stop to the loop with `call_soon_threadsafe`; the loop wakes for it through the
wake-up fd asyncio sets on the main thread. Windows delivers no SIGTERM from outside the
process: a service manager that stops the collector should send Ctrl-Break (or Ctrl-C).

`install_hangup` is the gateway's: SIGHUP reloads its sites file (POSIX only).
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from types import FrameType
from typing import Any


def install(stop: asyncio.Event) -> Callable[[], None]:
    """Set `stop` on SIGINT or SIGTERM (and SIGBREAK where it exists); returns a function
    that puts the previous handlers back. Must be called from the main thread with the
    event loop running (as `asyncio.run` runs it)."""
    loop = asyncio.get_running_loop()
    names = [signal.SIGINT, signal.SIGTERM]
    taken: list[signal.Signals] = []
    try:
        for sig in names:
            loop.add_signal_handler(sig, stop.set)
            taken.append(sig)
    except NotImplementedError:  # Windows' event loops
        for sig in taken:
            loop.remove_signal_handler(sig)
        return _with_signal_module(loop, stop)

    def undo() -> None:
        for sig in taken:
            loop.remove_signal_handler(sig)

    return undo


def _with_signal_module(loop: asyncio.AbstractEventLoop, stop: asyncio.Event) -> Callable[[], None]:
    """The portable path: `signal.signal` handlers that set `stop` on the loop's thread."""
    sigbreak = getattr(signal, "SIGBREAK", None)  # Windows only
    names = [signal.SIGINT, signal.SIGTERM, *([sigbreak] if sigbreak is not None else [])]

    def handler(signum: int, frame: FrameType | None) -> None:
        if not loop.is_closed():
            loop.call_soon_threadsafe(stop.set)

    previous: dict[int, Any] = {}
    for sig in names:
        previous[sig] = signal.signal(sig, handler)

    def undo() -> None:
        for sig, old in previous.items():
            signal.signal(sig, old)

    return undo


def install_hangup(callback: Callable[[], None]) -> Callable[[], None]:
    """Call `callback` on the loop on SIGHUP (`printfleet gateway`: reload the sites file);
    returns a function that removes the handler. Where there is no SIGHUP (Windows), or
    the loop takes no signal handlers, nothing is installed: the gateway, the one user,
    runs on Linux, and this keeps importing and starting it harmless elsewhere."""
    sighup = getattr(signal, "SIGHUP", None)
    if sighup is None:
        return lambda: None
    loop = asyncio.get_running_loop()
    try:
        loop.add_signal_handler(sighup, callback)
    except NotImplementedError:
        return lambda: None

    def undo() -> None:
        loop.remove_signal_handler(sighup)

    return undo
