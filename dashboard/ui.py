"""Streamlit glue shared by the entry script and every page: cached services, banner, sidebar, widgets.

The only module under dashboard/ that imports streamlit. It holds no business rules: it keeps the services
(dashboard.wiring) and one sync loop (dashboard.sync_loop) per process (st.cache_resource), and offers pages
small helpers so they stay "read state, call a service, draw".
"""

from __future__ import annotations

import logging
import os
import re
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from datetime import date, datetime, timedelta
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from dashboard import analytics
from dashboard.charts import DUE_SOON_TINT, STATUS_COLOURS, URGENCY_COLOURS
from dashboard.gateway import GatewayError
from dashboard.local_sandbox import SandboxStartError
from dashboard.money import format_eur
from dashboard.plain_text import literal, visible
from dashboard.settings import Mode, Settings, load_settings
from dashboard.sync import AlmaSync
from dashboard.sync_loop import SyncLoop
from dashboard.wiring import Services, build_services

log = logging.getLogger(__name__)

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


# --- services -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AppServices(Services):
    """What pages use: the mode's services (dashboard.wiring) and this process's sync loop."""

    sync_loop: SyncLoop


def _release(services: AppServices) -> None:
    services.sync_loop.stop()
    services.close()


@st.cache_resource(show_spinner="Starting Alma Ops…", on_release=_release)
def services() -> AppServices:
    """Built once per process and shared by every session: one gateway, one store, one sync thread."""
    core = build_services(app_settings(), may_start_sandbox=True)
    parts = {field.name: getattr(core, field.name) for field in fields(core)}
    return AppServices(**parts, sync_loop=SyncLoop(AlmaSync.for_services(core), core.settings.refresh_seconds))


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


def now(app: AppServices) -> int:
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


def sidebar(app: AppServices) -> None:
    with st.sidebar:
        key = "embedded sandbox, no Stripe key" if app.settings.mode is Mode.LOCAL else f"`{app.settings.masked_key}`"
        st.caption(f"Mode: **{app.settings.mode.value}** · key: {key}")
        if st.button("Sync now", key="sync_now", width="stretch") and app.sync_loop.sync_now():
            st.toast("Synced." if app.sync_loop.status().last_error is None else "Sync failed.")
        sync_status(app)


@st.fragment(run_every=SYNC_STATUS_SECONDS)
def sync_status(app: AppServices) -> None:
    """Redrawn on its own: the pages' self-refreshing blocks and the background loop sync without a full
    rerun, and the sidebar must not lag behind the "as of" time they show."""
    synced_at = app.store.last_synced_at()
    st.caption(f"Last sync: {local_datetime(synced_at, app.settings) if synced_at else 'never'}")
    if error := app.sync_loop.status().last_error:
        st.error(f"Sync failed — {literal(error)}")


def wait_for_first_sync(app: AppServices) -> None:
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


def status_badge(status: str) -> str:
    """Markdown for a status as a coloured badge (its text stays the plain status). A status Stripe may add
    later is not put inside the badge's Markdown: it is shown as text."""
    if status not in STATUS_COLOURS:
        return literal(status)
    return f":{STATUS_COLOURS[status].badge}-badge[{status}]"


def plain_cells(frame: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """`frame` with outside text in `columns` made visible (no bidi trick, one line) for a dataframe's cells."""
    return frame.assign(**{column: frame[column].map(visible, na_action="ignore") for column in columns})


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

_FAILURE_COLUMNS: dict[str, Any] = {  # st.column_config objects, or a plain label
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
    shown = plain_cells(failures, [c for c in ("reason", "error_code") if c in failures]).assign(
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


DUE_SOON_MARK = "⚠ "  # the time left of a capture due soon: said in text too, not by colour alone


def capture_table(held: pd.DataFrame, settings: Settings) -> None:
    """analytics.awaiting_capture rows: what is held, and until when it can still be captured; the ones due
    soon (first, as the rows come soonest deadline first) tinted and marked."""
    left = held["seconds_to_deadline"].map(duration_text)
    shown = held.assign(
        detail=INTENT_DETAIL_LINK + held["id"],
        capturable=held["amount_capturable"].map(format_eur),
        authorized_at=analytics.to_local(held["authorized_at"], settings.timezone),
        capture_deadline=analytics.to_local(held["capture_deadline"], settings.timezone),
        left=left.where(~held["due_soon"], DUE_SOON_MARK + left),
    )
    tinted = shown.style.apply(
        lambda row: [f"background-color: {DUE_SOON_TINT}" if row["due_soon"] else ""] * len(row), axis=1
    )
    st.dataframe(
        tinted, hide_index=True, placeholder="—", column_order=list(_CAPTURE_COLUMNS), column_config=_CAPTURE_COLUMNS
    )


def countdown_styles() -> None:
    """st.progress has no colour of its own: CSS gives a countdown bar its urgency's colour through the key
    of the container around it (see countdown_card). Our own constant CSS, no outside text."""
    rules = "".join(
        f'div[class*="st-key-countdown-{urgency}-"] [data-testid="stProgressBarTrack"] > div'
        f" {{ background-color: {colour}; }}"
        for urgency, colour in URGENCY_COLOURS.items()
    )
    st.html(f"<style>{rules}</style>")


def countdown_card(urgency: str | None, intent_id: str) -> DeltaGenerator:
    """A bordered card whose countdown bar takes `urgency`'s colour (countdown_styles)."""
    return st.container(border=True, key=f"countdown-{urgency or 'unknown'}-{intent_id}")


def gateway_error_text(error: GatewayError, doing: str) -> str:
    """Stripe's code and message for the user, never a traceback."""
    code = f" ({literal(error.code)})" if error.code else ""
    return f"Could not {doing}{code}: {literal(error.message)}"


def show_gateway_error(error: GatewayError, doing: str) -> None:
    st.error(gateway_error_text(error, doing))


def period_picker(key: str, default: str, app: AppServices) -> Callable[[int], analytics.Period] | None:
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
