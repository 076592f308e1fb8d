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
