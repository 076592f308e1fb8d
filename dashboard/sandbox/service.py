"""Everything one running sandbox holds: configuration, clock, the account, and the per-process extras
(faults, request stats, idempotency cache, state file)."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from .collector import long_lived_allocation
from .demo import seed_demo
from .faults import FaultInjector
from .model import AlmaRules, IdFactory, Sandbox
from .persistence import Snapshot, StateFile
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
    control_token: str | None = None  # required of /_sandbox/ callers when set (see app.py)

    @property
    def base_url(self) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host  # noqa: S104 (a comparison)
        return f"http://{host}:{self.port}"


class SandboxClock:
    """Wall time plus an offset that tests and QA move forward (`/_sandbox/clock/advance`)."""

    def __init__(self, offset: int = 0) -> None:
        self.offset = offset

    def now(self) -> int:
        return int(time.time()) + self.offset


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
        self._snapshots_taken = 0
        self._fresh_extras()
        with long_lived_allocation():
            saved = self.state_file.load(config.rules) if self.state_file else None
        if saved is not None:
            self.clock = SandboxClock(saved.clock_offset)
            self._install(saved.sandbox)
        else:
            self.clock = SandboxClock()
            self._install(Sandbox(config.rules))
            self.seed(config.seed_demo)

    def _install(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self.serializer = Serializer(sandbox, self.hosted_page_url, self.now)

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

    def snapshot(self) -> Snapshot:
        """The account as it stands, for a save; changes after this instant make the service dirty again."""
        self._snapshots_taken += 1
        self.dirty = False
        return Snapshot.of(self.sandbox, self.clock.offset, self._snapshots_taken)

    def save(self) -> None:
        """Save right here (at shutdown); while serving, app.save_periodically saves from a worker thread."""
        if self.state_file is not None:
            self.state_file.save(self.snapshot())
