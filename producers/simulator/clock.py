"""Simulated time: a start moment plus real elapsed time times the acceleration.

Owned by `SimulatorServer`, which reads it at every request and advances the fleet to
it. Tests that need no real time drive `Fleet.advance_to` directly instead.
"""

from __future__ import annotations

import time
from typing import Callable


class SimClock:
    """`now_ms()` = `start_ms` + (monotonic seconds since construction) x `acceleration`
    x 1000; never goes backwards because the monotonic clock does not."""

    __slots__ = ("start_ms", "acceleration", "_monotonic", "_t0", "_paused_at")

    def __init__(
        self, start_ms: int, acceleration: float, *, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        if not acceleration > 0:
            raise ValueError(f"acceleration must be > 0, not {acceleration}")
        self.start_ms = start_ms
        self.acceleration = acceleration
        self._monotonic = monotonic
        self._t0 = monotonic()
        self._paused_at: int | None = None

    def pause(self) -> None:
        """Stop simulated time where it is: tests compare against a truth that stays put."""
        self._paused_at = self.now_ms()

    def now_ms(self) -> int:
        if self._paused_at is not None:
            return self._paused_at
        return self.start_ms + int((self._monotonic() - self._t0) * self.acceleration * 1000.0)
