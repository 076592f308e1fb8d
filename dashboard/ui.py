"""Streamlit glue shared by the entry script and every page: cached services, the sync loop, banner, sidebar.

The only module under dashboard/ that imports streamlit. It holds no business rules: it builds the gateway,
store and sync once per process (st.cache_resource), keeps one background thread syncing the store for every
session, and offers pages small helpers so they stay "read state, call a service, draw".
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import partial
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd
import streamlit as st

from dashboard import analytics
from dashboard.clock import Clock, SystemClock
from dashboard.gateway import GatewayError, StripeGateway
from dashboard.local_sandbox import SANDBOX_PORT, LocalSandbox, SandboxClock, SandboxStartError, free_port
from dashboard.money import format_eur
from dashboard.settings import Mode, Settings, load_settings
from dashboard.store import IntentStore
from dashboard.sync import AlmaSync, SyncResult

log = logging.getLogger(__name__)

# How long a page waits for a sync it asked for (after a write, or "Sync now") before drawing anyway.
SYNC_WAIT_SECONDS = 15.0
# How often the sidebar re-reads the last sync time: as often as the fastest self-refreshing page.
SYNC_STATUS_SECONDS = 3


# --- settings -----------------------------------------------------------------------------------------


def _secrets_mapping() -> dict[str, object]:
    """st.secrets as a plain dict, or {} when no secrets.toml exists (environment-only deployments)."""
    try:
        return st.secrets.to_dict()
    except FileNotFoundError:  # StreamlitSecretNotFoundError is one
        return {}


@st.cache_resource(show_spinner=False)
def app_settings() -> Settings:
    """Without ALMA_OPS_PUBLIC_URL anywhere, customers come back to this server's own port on localhost
    (`make run PORT=8600` must not send them to 8501)."""
    env, secrets = dict(os.environ), _secrets_mapping()
    if not env.get("ALMA_OPS_PUBLIC_URL") and not secrets.get("ALMA_OPS_PUBLIC_URL"):
        env["ALMA_OPS_PUBLIC_URL"] = f"http://localhost:{st.get_option('server.port')}"
    return load_settings(env, secrets)


# --- the sync loop ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SyncLoopStatus:
    """What the sidebar shows about syncing, read under the loop's lock."""

    attempts_finished: int
    progress: tuple[int, int | None] | None  # (done, estimated total) while a sync reports progress
    last_result: SyncResult | None
    last_error: str | None  # "code: message" of the last attempt, None once one succeeds again


class SyncLoop:
    """One thread per process keeps the store fresh for every session. The store has a single writer, so
    pages never sync themselves: they ask this loop for a sync that starts after their request and wait."""

    def __init__(self, sync: AlmaSync, interval_seconds: int) -> None:
        self._sync = sync
        self._interval = interval_seconds
        self._changed = threading.Condition()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._started = 0
        self._finished = 0
        self._finished_at_monotonic: float | None = None
        self._progress: tuple[int, int | None] | None = None
        self._last_result: SyncResult | None = None
        self._last_error: str | None = None
        self._generation = 0  # bumped by every sync that changed the store; keys the frame cache
        self._thread = threading.Thread(target=self._run, name="alma-ops-sync", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stopping.is_set():
            self._attempt()
            # Cleared only after waking, so a request made during an attempt still gets its own attempt.
            if self._wake.wait(self._interval):
                self._wake.clear()

    def _attempt(self) -> None:
        with self._changed:
            self._started += 1
        result: SyncResult | None = None
        error: str | None = None
        try:
            result = self._sync.sync_once(progress=self._record_progress)
        except GatewayError as exc:
            error = str(exc)
        except Exception as exc:  # one bad sync must not end syncing for every viewer
            log.exception("sync attempt failed")
            error = f"{type(exc).__name__}: the sync failed; see the server log."
        with self._changed:
            self._finished += 1
            self._finished_at_monotonic = time.monotonic()
            self._progress = None
            if result is not None:
                self._last_result, self._last_error = result, None
                if result.intents_written or result.events_applied or self._generation == 0:
                    self._generation += 1
            else:
                self._last_error = error
            self._changed.notify_all()

    def _record_progress(self, done: int, total: int | None) -> None:
        with self._changed:
            self._progress = (done, total)

    @property
    def generation(self) -> int:
        with self._changed:
            return self._generation

    def status(self) -> SyncLoopStatus:
        with self._changed:
            return SyncLoopStatus(self._finished, self._progress, self._last_result, self._last_error)

    def sync_now(self, timeout: float = SYNC_WAIT_SECONDS) -> bool:
        """Wait for a sync that starts after this call; False if it has not finished within `timeout`."""
        with self._changed:
            target = self._started + 1
            self._wake.set()
            return self._changed.wait_for(lambda: self._finished >= target, timeout)

    def refresh(self, max_age_seconds: float) -> None:
        """sync_now unless a sync finished less than `max_age_seconds` ago: many viewers polling the same
        page cost Stripe one refresh per interval, not one each."""
        with self._changed:
            finished_at = self._finished_at_monotonic
        if finished_at is None or time.monotonic() - finished_at >= max_age_seconds:
            self.sync_now()

    def wait_first(self, timeout: float) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: self._finished >= 1, timeout)

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        self._thread.join(timeout=SYNC_WAIT_SECONDS)


# --- services -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Services:
    settings: Settings
    gateway: StripeGateway
    store: IntentStore
    clock: Clock
    sync_loop: SyncLoop
    sandbox: LocalSandbox | None  # local mode only; its process is ours unless attached by URL


def _release(services: Services) -> None:
    services.sync_loop.stop()
    if services.sandbox is not None:
        services.sandbox.stop()  # a sandbox attached by URL is left running (LocalSandbox.attach)


def _sandbox_state_file(settings: Settings) -> Path:
    # JSON Lines; an older ".json" beside it was a pickle, which the sandbox now refuses: not reused.
    return settings.db_path.with_name(settings.db_path.name + ".sandbox.jsonl")


def _forget_store_without_sandbox(settings: Settings) -> None:
    """The embedded sandbox keeps its account in a file next to the store, so the two survive a restart
    together. A store found without that file mirrors a sandbox that is gone: it starts over."""
    if settings.sandbox_url or _sandbox_state_file(settings).exists():
        return
    for suffix in ("", "-wal", "-shm"):
        settings.db_path.with_name(settings.db_path.name + suffix).unlink(missing_ok=True)


def _sandbox_for(settings: Settings) -> LocalSandbox:
    if settings.sandbox_url:
        return LocalSandbox.attach(settings.sandbox_url)
    return LocalSandbox.start(
        port=settings.sandbox_port or free_port(SANDBOX_PORT),
        seed_demo=settings.demo_intents,
        state_file=_sandbox_state_file(settings),
    )


@st.cache_resource(show_spinner="Starting Alma Ops…", on_release=_release)
def services() -> Services:
    """Built once per process and shared by every session: one gateway, one store, one sync thread.
    The store opens before the sandbox starts: a store that cannot open leaves no sandbox process behind."""
    settings = app_settings()
    settings.db_path.parent.mkdir(parents=True, exist_ok=True)
    local = settings.mode is Mode.LOCAL
    if local:
        _forget_store_without_sandbox(settings)
    store = IntentStore(settings.db_path, settings.auth_window_seconds)
    sandbox = _sandbox_for(settings) if local else None
    gateway = StripeGateway(settings, api_base=sandbox.base_url if sandbox else settings.api_base)
    clock: Clock = SandboxClock(sandbox) if sandbox else SystemClock()
    sync = AlmaSync(
        gateway,
        store,
        clock,
        lookback_days=settings.lookback_days,
    )
    return Services(settings, gateway, store, clock, SyncLoop(sync, settings.refresh_seconds), sandbox)


# What a page can meet when the services cannot be built: the sandbox would not start (SandboxStartError is a
# RuntimeError), the store's schema is newer than this code (RuntimeError), the store file is locked or not a
# database (sqlite3.Error), or its folder cannot be made (OSError).
STARTUP_ERRORS = (RuntimeError, sqlite3.Error, OSError)


_TRACEBACK = "Traceback (most recent call last):"
_CAUSE_MAX_CHARS = 300


def startup_problem(error: BaseException) -> str:
    """One line for the page; the whole story (a sandbox's stderr can be a long traceback) goes to the log.
    From a traceback the page keeps its last line, the exception itself."""
    log.error("Alma Ops could not start", exc_info=error)
    head, _, traceback = str(error).partition(_TRACEBACK)
    lines = head.strip().splitlines() or [type(error).__name__]
    cause = lines[0].rstrip(": ")
    if traceback.strip():
        cause += f": {traceback.strip().splitlines()[-1]}"
    what = "The local sandbox did not start" if isinstance(error, SandboxStartError) else "Alma Ops could not start"
    return f"{what} — {cause[:_CAUSE_MAX_CHARS]} (details in the server log)."


def sandbox_unreachable_text(error: OSError) -> str:
    cause = getattr(error, "reason", None) or error  # URLError keeps the socket's error in .reason
    return f"The local sandbox is not answering ({cause}). Restart it, or the app, and reload the page."


def now(app: Services) -> int:
    """The services' clock, or a clear message and the end of this run when the sandbox it reads is down."""
    try:
        return app.clock.now()
    except OSError as error:
        st.error(sandbox_unreachable_text(error))
        st.stop()


@st.cache_data(show_spinner=False, max_entries=4)
def _stored_frame(db_path: str, generation: int) -> pd.DataFrame:
    return services().store.intents_frame()


def intents_frame() -> pd.DataFrame:
    """Every stored intent (the sync keeps the lookback window); pages narrow it with analytics. Read from
    SQLite once per store change, not once per rerun: the key is the sync loop's generation."""
    app = services()
    return _stored_frame(str(app.settings.db_path), app.sync_loop.generation)


def sync_after_write() -> None:
    """A write went out through the gateway; bring its effect into the store before drawing."""
    services().sync_loop.sync_now()


# --- chrome: banner, sidebar, first sync --------------------------------------------------------------

_BANNERS: dict[Mode, tuple[Callable[..., object], str]] = {
    Mode.LOCAL: (st.info, "Local sandbox — no real money. Intents live in the embedded Alma sandbox."),
    Mode.TEST: (st.warning, "Stripe test mode — test intents only, no real money."),
    Mode.LIVE: (st.error, "Live mode — read-only. Nothing can be created, canceled or captured here."),
}


def mode_banner(settings: Settings) -> None:
    show, text = _BANNERS[settings.mode]
    show(text)


def sidebar(app: Services) -> None:
    with st.sidebar:
        key = "embedded sandbox, no Stripe key" if app.settings.mode is Mode.LOCAL else f"`{app.settings.masked_key}`"
        st.caption(f"Mode: **{app.settings.mode.value}** · key: {key}")
        if st.button("Sync now", key="sync_now", width="stretch") and app.sync_loop.sync_now():
            st.toast("Synced." if app.sync_loop.status().last_error is None else "Sync failed.")
        sync_status(app)


@st.fragment(run_every=SYNC_STATUS_SECONDS)
def sync_status(app: Services) -> None:
    """Redrawn on its own: the pages' self-refreshing blocks and the background loop sync without a full
    rerun, and the sidebar must not lag behind the "as of" time they show."""
    synced_at = app.store.last_synced_at()
    st.caption(f"Last sync: {local_datetime(synced_at, app.settings) if synced_at else 'never'}")
    if error := app.sync_loop.status().last_error:
        st.error(f"Sync failed — {error}")


def wait_for_first_sync(app: Services) -> None:
    """On an empty store the pages would show nothing; show the first sync's progress until it ends."""
    if app.store.last_synced_at() is not None or app.sync_loop.status().attempts_finished:
        return
    bar = st.progress(0.0, text="First sync: listing Alma intents…")
    while not app.sync_loop.wait_first(timeout=0.25):
        done, total = app.sync_loop.status().progress or (0, None)
        if total:
            bar.progress(min(done / total, 1.0), text=f"First sync: {done:,} of about {total:,} intents…")
        else:
            bar.progress(0.0, text=f"First sync: {done:,} intents so far…")
    bar.empty()


# --- display helpers ----------------------------------------------------------------------------------


# Streamlit's badge colours nearest to charts.STATUS_COLOURS, so a status reads the same in text and charts.
_STATUS_BADGE_COLOURS = {
    "requires_payment_method": "red",
    "requires_confirmation": "violet",
    "requires_action": "orange",
    "processing": "blue",
    "requires_capture": "blue",
    "canceled": "gray",
    "succeeded": "green",
}


def status_badge(status: str) -> str:
    """Markdown for a status as a coloured badge (its text stays the plain status)."""
    return f":{_STATUS_BADGE_COLOURS.get(status, 'gray')}-badge[{status}]"


def local_datetime(seconds: int | None, settings: Settings) -> str:
    if seconds is None:
        return "—"
    return datetime.fromtimestamp(int(seconds), ZoneInfo(settings.timezone)).strftime("%Y-%m-%d %H:%M:%S %Z")


def local_date(seconds: int, settings: Settings) -> date:
    return datetime.fromtimestamp(int(seconds), ZoneInfo(settings.timezone)).date()


def duration_text(seconds: int | None) -> str:
    """'1 h 05 min', '12 min 30 s', '45 s': precise enough for a countdown, short enough for a table."""
    if seconds is None or pd.isna(seconds):
        return "—"
    seconds = max(0, int(seconds))
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min {secs:02d} s"
    return f"{secs} s"


# A relative link resolves next to whichever page shows it, so it survives a server.baseUrlPath.
INTENT_DETAIL_LINK = "intents?intent="
INTENT_LINK_COLUMN = st.column_config.LinkColumn(
    "Intent",
    display_text=rf"{re.escape(INTENT_DETAIL_LINK)}(.+)",
    help="Opens the intent's detail in a new tab",
)

_FAILURE_COLUMNS = {
    "updated_at": st.column_config.DatetimeColumn("When", format="YYYY-MM-DD HH:mm:ss"),
    "id": INTENT_LINK_COLUMN,
    "status": "Status",
    "failure_kind": st.column_config.TextColumn("Kind", width="small"),
    "amount": st.column_config.TextColumn("Amount", width="small"),
    "waited": st.column_config.TextColumn("Waited", help="From the Alma redirect to the end", width="small"),
    # No fixed width: the column fits its text (a "large" one cut Stripe's expiry message mid-word).
    "reason": st.column_config.TextColumn("Reason"),
    "error_code": st.column_config.TextColumn("Code", width="medium"),
}


def failures_table(failures: pd.DataFrame, columns: Sequence[str], settings: Settings) -> None:
    """Expired or declined intents (analytics.recent_failures / recently_expired / recent_declines rows):
    EUR amounts, local times, how long the customer waited when known, and each id linking to its detail.
    The frame keeps the plain `id`; the link column is drawn in its place."""
    shown = failures.assign(
        amount=failures["amount"].map(format_eur),
        updated_at=analytics.to_local(failures["updated_at"], settings.timezone),
        detail=INTENT_DETAIL_LINK + failures["id"],
    )
    if "waited_seconds" in failures:
        shown = shown.assign(waited=failures["waited_seconds"].map(duration_text))
    drawn = {"detail" if column == "id" else column: _FAILURE_COLUMNS[column] for column in columns}
    st.dataframe(shown, hide_index=True, placeholder="—", column_order=list(drawn), column_config=drawn)


_CAPTURE_COLUMNS = {
    "detail": INTENT_LINK_COLUMN,
    "capturable": st.column_config.TextColumn("Capturable", width="small"),
    "installments": st.column_config.NumberColumn("Installments", width="small"),
    "authorized_at": st.column_config.DatetimeColumn("Authorised", format="YYYY-MM-DD HH:mm"),
    "capture_deadline": st.column_config.DatetimeColumn("Capture by", format="YYYY-MM-DD HH:mm"),
    "left": st.column_config.TextColumn(
        "Time left", width="small", help="Not captured by then, Stripe cancels it and the customer is not charged"
    ),
}


def capture_table(held: pd.DataFrame, settings: Settings) -> None:
    """analytics.awaiting_capture rows: what is held, and until when it can still be captured."""
    shown = held.assign(
        detail=INTENT_DETAIL_LINK + held["id"],
        capturable=held["amount_capturable"].map(format_eur),
        authorized_at=analytics.to_local(held["authorized_at"], settings.timezone),
        capture_deadline=analytics.to_local(held["capture_deadline"], settings.timezone),
        left=held["seconds_to_deadline"].map(duration_text),
    )
    st.dataframe(
        shown, hide_index=True, placeholder="—", column_order=list(_CAPTURE_COLUMNS), column_config=_CAPTURE_COLUMNS
    )


def gateway_error_text(error: GatewayError, doing: str) -> str:
    """Stripe's code and message for the user, never a traceback."""
    code = f" ({error.code})" if error.code else ""
    return f"Could not {doing}{code}: {error.message}"


def show_gateway_error(error: GatewayError, doing: str) -> None:
    st.error(gateway_error_text(error, doing))


def period_picker(key: str, default: str, app: Services) -> Callable[[int], analytics.Period] | None:
    """The period widgets (24 h … 90 d, Custom dates). Returns bounds as a function of "now", so a
    self-refreshing fragment moves a rolling period forward; None while a custom range is half picked."""
    choice = st.segmented_control(
        "Period", analytics.PERIOD_CHOICES, default=default, required=True, key=f"{key}_period"
    )
    custom = None
    if choice == "Custom":
        today = local_date(now(app), app.settings)
        picked = st.date_input("From – to", value=(today - timedelta(days=6), today), key=f"{key}_custom")
        if len(picked) != 2:
            st.caption("Pick a start and an end date.")
            return None
        custom = (picked[0], picked[1])
    return partial(analytics.period_bounds, choice, custom=custom, tz=app.settings.timezone)


# --- submissions ---------------------------------------------------------------------------------------


def submission_id(name: str) -> str:
    """A nonce per form and session: replays of one submission (double click, rerun) share it, so they share
    the idempotency key and Stripe creates one object. Only renew_submission() starts a new submission."""
    key = f"submission:{name}"
    if key not in st.session_state:
        st.session_state[key] = secrets.token_hex(16)
    return st.session_state[key]


def renew_submission(name: str) -> None:
    st.session_state[f"submission:{name}"] = secrets.token_hex(16)
