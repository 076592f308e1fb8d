"""Builds the services for a mode, for the Streamlit app and `python -m dashboard.sync` alike.

Stripe modes: a gateway on the key (and STRIPE_API_BASE), the system clock. Local mode: a gateway on the local
sandbox and the sandbox's clock; the app starts that sandbox (or attaches to ALMA_OPS_SANDBOX_URL), while the
sync worker only ever attaches, since a sandbox of its own would be one nobody else sees and the shared store
would end up mixing two accounts. Below this module nothing knows the sandbox beyond its HTTP address and clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from dashboard.alerting import AlertService
from dashboard.clock import Clock, SystemClock
from dashboard.gateway import StripeGateway
from dashboard.local_sandbox import LocalSandbox, free_port
from dashboard.settings import SANDBOX_PORT, Mode, Settings, SettingsError
from dashboard.store import DEFAULT_LOCATION, IntentStore
from dashboard.store.alert_log import AlertLog

# What building the services can meet: the sandbox would not start (SandboxStartError is a RuntimeError), the
# store's schema is newer than this code (RuntimeError), the store file is locked or not a database or its
# server cannot be reached (StoreError, a RuntimeError), or its folder cannot be made (OSError).
STARTUP_ERRORS = (RuntimeError, OSError)


@dataclass(frozen=True)
class Services:
    settings: Settings
    gateway: StripeGateway
    store: IntentStore
    clock: Clock
    sandbox: LocalSandbox | None  # local mode only; its process is ours unless attached by URL
    alerts: AlertService

    def close(self) -> None:
        self.alerts.close()
        self.store.close()
        if self.sandbox is not None:
            self.sandbox.stop()  # a sandbox attached by URL is left running (LocalSandbox.attach)


def sandbox_state_file(settings: Settings) -> Path:
    # JSON Lines; an older ".json" beside it was a pickle, which the sandbox now refuses: not reused.
    store_file = settings.db_path or Path(DEFAULT_LOCATION)  # a PostgreSQL store: the default folder
    return store_file.with_name(store_file.name + ".sandbox.jsonl")


def demo_seed_file(settings: Settings) -> Path:
    """How many demo intents the embedded sandbox's account was seeded with (written when it starts afresh)."""
    return sandbox_state_file(settings).with_suffix(".seed")


def _embedded(settings: Settings) -> bool:
    return settings.mode is Mode.LOCAL and not settings.sandbox_url


def _reseed_if_demo_count_changed(settings: Settings) -> None:
    """ALMA_OPS_DEMO_INTENTS seeds a new account only. A saved account seeded with another count is dropped,
    so the sandbox starts afresh with the count asked for (and the store that mirrored it goes too)."""
    state, seeded = sandbox_state_file(settings), demo_seed_file(settings)
    if (
        _embedded(settings)
        and state.exists()
        and seeded.exists()
        and seeded.read_text().strip() != str(settings.demo_intents)
    ):
        state.unlink()
        seeded.unlink()


def demo_seed_note(settings: Settings) -> str | None:
    """Why ALMA_OPS_DEMO_INTENTS may not be what the sandbox holds, and how to start over; None when it is.
    Only an account saved before the seed count was recorded cannot tell."""
    if not _embedded(settings) or demo_seed_file(settings).exists() or not sandbox_state_file(settings).exists():
        return None
    return (
        f"The sandbox kept the account saved in {sandbox_state_file(settings).name}, so ALMA_OPS_DEMO_INTENTS="
        f"{settings.demo_intents} was not applied. To start over with it, stop the app and run `make reset`."
    )


def _forget_store_without_sandbox(settings: Settings) -> None:
    """The embedded sandbox keeps its account in a file next to the store, so the two survive a restart
    together. A store found without that file mirrors a sandbox that is gone: it starts over."""
    if settings.sandbox_url or settings.db_path is None or sandbox_state_file(settings).exists():
        return
    for suffix in ("", "-wal", "-shm"):
        settings.db_path.with_name(settings.db_path.name + suffix).unlink(missing_ok=True)


def _local_sandbox(settings: Settings) -> LocalSandbox:
    if settings.sandbox_url:
        return LocalSandbox.attach(settings.sandbox_url)
    return LocalSandbox.start(
        port=settings.sandbox_port or free_port(SANDBOX_PORT),
        seed_demo=settings.demo_intents,
        auth_window_seconds=settings.auth_window_seconds,
        state_file=sandbox_state_file(settings),
    )


def build_services(settings: Settings, *, may_start_sandbox: bool, writer_role: str = "embedded") -> Services:
    """The gateway, clock, store and (local mode) sandbox for `settings`. `may_start_sandbox`: the app's
    embedded sandbox; without it local mode needs ALMA_OPS_SANDBOX_URL (SettingsError otherwise). The store
    opens before the sandbox starts: a store that cannot open leaves no sandbox process behind. `writer_role`
    names this process when it holds the store's writer lock ("embedded" dashboard or "worker")."""
    local = settings.mode is Mode.LOCAL
    if local and not (settings.sandbox_url or may_start_sandbox):
        raise SettingsError(
            "local mode (no STRIPE_SECRET_KEY) syncs from a running sandbox: set ALMA_OPS_SANDBOX_URL to its"
            " address, or STRIPE_API_BASE and an sk_test_ key."
        )
    fresh_account = False
    if local and may_start_sandbox:
        _reseed_if_demo_count_changed(settings)
        _forget_store_without_sandbox(settings)
        fresh_account = _embedded(settings) and not sandbox_state_file(settings).exists()
    store = IntentStore(settings.db_location, settings.auth_window_seconds, role=writer_role)
    try:
        sandbox = _local_sandbox(settings) if local else None
    except BaseException:
        store.close()
        raise
    if fresh_account:
        demo_seed_file(settings).write_text(f"{settings.demo_intents}\n")
    gateway = StripeGateway(settings, api_base=sandbox.base_url if sandbox else settings.api_base)
    clock: Clock = sandbox if sandbox else SystemClock()
    return Services(settings, gateway, store, clock, sandbox, alert_service(settings, store))


def alert_service(settings: Settings, store: IntentStore) -> AlertService:
    """Notifications go to settings.alerts.urls (checked at start), linking to pages under the public URL."""
    notifier = None
    if settings.alerts.urls:
        from dashboard.notify import Notifier  # apprise loads ~180 plugins: only when alerts are configured

        notifier = Notifier(settings.alerts.urls, settings.public_url)
    return AlertService(store, AlertLog(store.engine), settings.alerts, settings.timezone, notifier)
