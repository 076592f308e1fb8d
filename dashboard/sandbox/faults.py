"""Injected failures: a fraction of /v1 requests answers 429 or 500, or loses its connection."""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

FAULT_KINDS = ("429", "500", "drop")


class FaultSettingsError(ValueError):
    pass


@dataclass(frozen=True)
class FaultSettings:
    rate: float = 0.0
    kinds: tuple[str, ...] = FAULT_KINDS
    seed: int | None = None

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> FaultSettings:
        try:
            rate = float(params.get("rate", 0))
            seed = None if params.get("seed") in (None, "") else int(params["seed"])
        except (TypeError, ValueError):
            raise FaultSettingsError("rate must be a number in 0..1 and seed a whole number.") from None
        if not 0 <= rate <= 1:
            raise FaultSettingsError("rate must be between 0 and 1.")
        raw_kinds = params.get("kinds") or ",".join(FAULT_KINDS)
        kinds = tuple(kind.strip() for kind in str(raw_kinds).split(",") if kind.strip())
        unknown = sorted(set(kinds) - set(FAULT_KINDS))
        if unknown or not kinds:
            raise FaultSettingsError(f"kinds must be a comma-separated subset of {','.join(FAULT_KINDS)}.")
        return cls(rate=rate, kinds=kinds, seed=seed)

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "kinds": list(self.kinds), "enabled": self.rate > 0}


class FaultInjector:
    def __init__(self, settings: FaultSettings = FaultSettings()) -> None:
        self.settings = settings
        self._random = random.Random(settings.seed)

    def draw(self) -> str | None:
        """The fault this request suffers, if any."""
        if self.settings.rate <= 0 or self._random.random() >= self.settings.rate:
            return None
        return self._random.choice(self.settings.kinds)
