"""Page chrome drawn by the entry script around every page: the mode banner, the sidebar (mode, masked key,
Sync now, last sync), and the first sync's progress on an empty store."""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from dashboard.plain_text import literal
from dashboard.settings import Mode, Settings
from dashboard.ui import AppServices
from dashboard.ui_widgets import local_datetime

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
