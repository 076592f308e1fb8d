"""Everything one running sandbox holds: configuration, clock, the account, and the per-process extras
(faults, request stats, idempotency cache, state file)."""
from __future__ import annotations

import contextlib
import gc
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from .demo import seed_demo
from .faults import FaultInjector
from .model import AlmaRules, IdFactory, Sandbox
from .persistence import SavedState, StateFile
from .serializers import Serializer

HOSTED_PAGE_PATH = "/alma/pay/"


@dataclass(frozen=True)
class SandboxConfig:
    host: str = "127.0.0.1"
    port: int = 12111
    rules: AlmaRules = AlmaRules()
    seed_demo: int = 0
    state_path: Path | None = None
    public_url: str | None = None  # where browsers reach this sandbox; default http://host:port

    @property
    def base_url(self) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
        return f"http://{host}:{self.port}"


class SandboxClock:
    """Wall time plus an offset that tests and QA move forward (`/_sandbox/clock/advance`)."""

    def __init__(self, offset: int = 0) -> None:
        self.offset = offset

    def now(self) -> int:
        return int(time.time()) + self.offset


@contextlib.contextmanager
def long_lived_allocation() -> Iterator[None]:
    """Seeding or loading allocates millions of objects that live as long as the account. The cyclic GC
    would rescan them all on every full collection (about a second per 100k intents, landing on random
    requests); they hold no reference cycles, so pause it while they are made and then freeze them out of
    its sight. Reference counting still frees them after a reset."""
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        gc.enable()


@dataclass(frozen=True)
class StoredResponse:
    fingerprint: tuple[object, ...]
    status: int
    body: bytes
    request_id: str


class SandboxService:
    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.request_ids = IdFactory()
        self.state_file = StateFile(config.state_path) if config.state_path else None
        self.dirty = False
        self._fresh_extras()
        with long_lived_allocation():
            saved = self.state_file.load() if self.state_file else None
        if saved is not None:
            self.clock = SandboxClock(saved.clock_offset)
            self._install(saved.sandbox)
        else:
            self.clock = SandboxClock()
            self._install(Sandbox(config.rules))
            self.seed(config.seed_demo)

    def _install(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self.serializer = Serializer(sandbox, self.hosted_page_url)

    def _fresh_extras(self) -> None:
        self.faults = FaultInjector()
        self.stats: Counter[str] = Counter()
        self.idempotent: dict[str, StoredResponse] = {}

    def hosted_page_url(self, token: str) -> str:
        return self.config.base_url + HOSTED_PAGE_PATH + token

    def now(self) -> int:
        return self.clock.now()

    def sweep(self) -> None:
        if self.sandbox.sweep(self.now()):
            self.dirty = True

    def seed(self, count: int) -> None:
        if count > 0:
            with long_lived_allocation():
                seed_demo(self.sandbox, count, self.now())
            self.dirty = True

    def reset(self, seed_count: int = 0) -> None:
        """Back to a fresh process: no objects, clock offset 0, faults off, stats and idempotency emptied."""
        self._fresh_extras()
        self.clock = SandboxClock()
        self._install(Sandbox(self.config.rules))
        self.seed(seed_count)
        self.dirty = True

    def save(self) -> None:
        if self.state_file is not None:
            self.state_file.save(SavedState(self.sandbox, self.clock.offset))
        self.dirty = False
