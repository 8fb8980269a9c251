"""Retry timing shared by every component: exponential backoff with full jitter.

Callers decide *whether* to retry from an error's `retriable` attribute; this decides
*when*. Jitter keeps a fleet of collectors from hammering a gateway that just came back
all in the same second.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass
class Backoff:
    initial_s: float = 0.5
    maximum_s: float = 30.0
    multiplier: float = 2.0
    rng: random.Random = field(default_factory=random.Random)
    attempt: int = 0

    def next_delay(self) -> float:
        """The pause before the next attempt; each call without `reset()` grows the cap."""
        cap = min(self.maximum_s, self.initial_s * self.multiplier**self.attempt)
        self.attempt += 1
        return self.rng.uniform(cap / 2, cap)

    def reset(self) -> None:
        """After a success: the next failure starts from `initial_s` again."""
        self.attempt = 0
