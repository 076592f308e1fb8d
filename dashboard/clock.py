"""The one clock abstraction. Logic takes a Clock; only these classes read the wall clock."""
from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> int:
        """Unix seconds."""
        ...


class SystemClock:
    """Stripe modes: the machine's time."""

    def now(self) -> int:
        return int(time.time())


class FixedClock:
    """Tests: a clock that moves only when told to."""

    def __init__(self, now: int) -> None:
        self._now = now

    def now(self) -> int:
        return self._now

    def advance(self, seconds: int) -> None:
        self._now += seconds
