"""Page chrome drawn by the entry script around every page: the mode banner, the sidebar (mode, masked key,
who syncs, Sync now, last sync, lost-cursor and quarantine notes), and the first sync's progress on an empty store."""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from dashboard import freshness
from dashboard.freshness import Freshness
from dashboard.plain_text import literal, visible
from dashboard.settings import Mode, Settings
from dashboard.ui import AppServices
from dashboard.ui_widgets import duration_text, local_datetime
from dashboard.wiring import demo_seed_note

# How often the sidebar re-reads the last sync time: as often as the fastest self-refreshing page.
SYNC_STATUS_SECONDS = 3

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
        if app.worker_syncs:
            st.caption("Syncing: a worker (`python -m dashboard.sync`); this dashboard only reads the store.")
        else:
            st.caption("Syncing: this process.")
            if st.button("Sync now", key="sync_now", width="stretch") and app.sync_loop.sync_now():
                st.toast("Synced." if app.sync_loop.status().last_error is None else "Sync failed.")
        sync_status(app)
        if note := demo_seed_note(app.settings):
            st.warning(note)


@st.fragment(run_every=SYNC_STATUS_SECONDS)
def sync_status(app: AppServices) -> None:
    """Redrawn on its own: the pages' self-refreshing blocks and the background loop sync without a full
    rerun, and the sidebar must not lag behind the "as of" time they show."""
    writer = app.store.writer_status()  # from the store: true whichever process synced
    app.sync_loop.check_data_stale(
        app.alerts, app.clock
    )  # worker mode: a dead worker's silence is raised by a dashboard
    synced_at = writer.last_success_at or app.store.last_synced_at()
    st.caption(f"Last sync: {local_datetime(synced_at, app.settings) if synced_at else 'never'}")
    if error := app.sync_loop.status().last_error:
        st.error(f"Sync failed — {literal(error)}")
    if writer.cursor_lost_at is not None and writer.cursor_lost_at >= (writer.last_attempt_at or 0):
        st.warning(
            "The last sync found its event cursor gone at Stripe (events are kept 30 days; an account reset)"
            " and relisted the lookback window."
        )
    if quarantined := app.store.quarantine_count():
        st.warning(f"{quarantined:,} intent(s) quarantined: the sync could not store them (see the server log).")


def data_freshness(app: AppServices) -> Freshness:
    """The store's sync record and the clock, read without waiting on any sync."""
    status = app.store.writer_status()
    try:
        now, clock_error = app.clock.now(), None
    except OSError as error:  # the sandbox's clock: the sandbox is down
        now, clock_error = None, f"{type(error).__name__}: {error}"
    return freshness.assess(
        # The record's success, or the sync state's time when the record predates it (a first listing).
        last_success_at=max((t for t in (status.last_success_at, app.store.last_synced_at()) if t), default=None),
        last_error=status.last_error or app.sync_loop.status().last_error,
        now=now,
        refresh_seconds=app.settings.refresh_seconds,
        local=app.settings.mode is Mode.LOCAL,
        worker=app.settings.sync_mode == "worker",
        clock_error=clock_error,
    )


@st.fragment(run_every=SYNC_STATUS_SECONDS)
def freshness_banner(app: AppServices) -> None:
    """On every page, above its content, while the data is stale: how old it is, why, and what to do. Redrawn on
    its own, so it appears and goes away without a rerun of the page."""
    state = data_freshness(app)
    if not state.stale:
        return
    if state.as_of is None:
        when = "No data has been synced yet"
    else:
        age = "" if state.age_seconds is None else f", {duration_text(state.age_seconds)} ago"
        when = f"The data is from the last successful sync, {local_datetime(state.as_of, app.settings)}{age}"
    with st.container(key="freshness_banner"):
        st.warning(f"**{when}: {state.reason}.** {state.advice}")
        if state.cause == "failed" and (
            error := app.store.writer_status().last_error or app.sync_loop.status().last_error
        ):
            st.code(visible(error), language=None)


def wait_for_first_sync(app: AppServices) -> None:
    """On an empty store the pages would show nothing; show the first sync's progress until it ends. In worker
    mode that sync is the worker's: say so instead of waiting for it."""
    if app.store.last_synced_at() is not None or app.sync_loop.status().attempts_finished:
        return
    if app.worker_syncs:  # drawn once, not waited on: the worker's listing goes on in another process
        st.info("The sync worker has not finished its first sync yet: pages fill in once it has.")
        st.progress(*first_sync_progress(app))
        return
    bar = st.progress(0.0, text="First sync: listing Alma intents…")
    while not app.sync_loop.wait_first(timeout=0.25):
        bar.progress(*first_sync_progress(app))
    bar.empty()


def first_sync_progress(app: AppServices) -> tuple[float, str]:
    """How far back in time the listing (newest first) has got: no one knows how many intents are left, so
    the bar is the share of the lookback window covered and the text says the count so far and the date."""
    saved = app.store.listing_progress()
    if saved is None or saved.oldest_created is None:
        return 0.0, "First sync: listing Alma intents…"
    reached = local_datetime(saved.oldest_created, app.settings)[:10]
    return saved.covered_fraction, (
        f"First sync: {saved.listed:,} intents so far, back to {reached} "
        f"({saved.covered_fraction:.0%} of the last {app.settings.lookback_days} days)…"
    )
