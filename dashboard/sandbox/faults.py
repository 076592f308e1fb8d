"""Injected failures: a fraction of /v1 requests answers 429 or 500, or loses its connection; or, scripted,
exactly the next few requests, in order ("ok" for one served as usual), before any random draw."""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

FAULT_KINDS = ("429", "500", "drop")
SERVED = "ok"  # in a script: this request is served as usual
MAX_SCRIPT = 1_000


class FaultSettingsError(ValueError):
    pass


@dataclass(frozen=True)
class FaultSettings:
    rate: float = 0.0
    kinds: tuple[str, ...] = FAULT_KINDS
    seed: int | None = None
    script: tuple[str, ...] = ()  # the next requests' fates, in order: a FAULT_KINDS entry or SERVED

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
        raw_script = params.get("script") or []
        if not isinstance(raw_script, list) or len(raw_script) > MAX_SCRIPT:
            raise FaultSettingsError(f"script must be a list of at most {MAX_SCRIPT:,} fates.")
        script = tuple(str(fate) for fate in raw_script)
        if set(script) - {*FAULT_KINDS, SERVED}:
            raise FaultSettingsError(f"script entries must be one of {','.join((*FAULT_KINDS, SERVED))}.")
        return cls(rate=rate, kinds=kinds, seed=seed, script=script)

    def as_json(self) -> dict[str, Any]:
        enabled = self.rate > 0 or any(fate != SERVED for fate in self.script)
        return {**asdict(self), "kinds": list(self.kinds), "script": list(self.script), "enabled": enabled}


class FaultInjector:
    def __init__(self, settings: FaultSettings = FaultSettings()) -> None:
        self.settings = settings
        self._random = random.Random(settings.seed)
        self._script = deque(settings.script)

    def draw(self) -> str | None:
        """The fault this request suffers, if any: the script's next fate while one is left, then a draw."""
        if self._script:
            fate = self._script.popleft()
            return None if fate == SERVED else fate
        if self.settings.rate <= 0 or self._random.random() >= self.settings.rate:
            return None
        return self._random.choice(self.settings.kinds)
