"""`printfleet.stop_signals`: SIGINT/SIGTERM set the stop event, through the loop's own
handlers (POSIX) and through `signal.signal` when the loop has none (Windows' loops; the
path is forced here by a loop whose add_signal_handler raises NotImplementedError)."""

from __future__ import annotations

import asyncio
import os
import signal
from typing import Any

import pytest

from printfleet import stop_signals


async def _stopped_by(sig: signal.Signals, stop: asyncio.Event) -> bool:
    os.kill(os.getpid(), sig)
    try:
        await asyncio.wait_for(stop.wait(), 5)
    except asyncio.TimeoutError:
        return False
    return True


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
async def test_a_signal_sets_stop_through_the_loops_handlers(sig: signal.Signals) -> None:
    stop = asyncio.Event()
    undo = stop_signals.install(stop)
    try:
        assert await _stopped_by(sig, stop)
    finally:
        undo()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
async def test_without_loop_handlers_the_signal_module_sets_stop_and_undo_restores(
    sig: signal.Signals, monkeypatch: pytest.MonkeyPatch,
) -> None:
    loop = asyncio.get_running_loop()

    def no_handlers(*args: Any) -> None:
        raise NotImplementedError

    monkeypatch.setattr(loop, "add_signal_handler", no_handlers)
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    stop = asyncio.Event()
    undo = stop_signals.install(stop)
    try:
        assert signal.getsignal(sig) is not before[sig]
        assert await _stopped_by(sig, stop)
    finally:
        undo()
    assert {s: signal.getsignal(s) for s in before} == before


async def test_sighup_calls_the_hangup_callback_until_undone() -> None:
    called = asyncio.Event()
    undo = stop_signals.install_hangup(called.set)
    try:
        os.kill(os.getpid(), signal.SIGHUP)
        await asyncio.wait_for(called.wait(), 5)
    finally:
        undo()
    assert signal.getsignal(signal.SIGHUP) == signal.SIG_DFL
