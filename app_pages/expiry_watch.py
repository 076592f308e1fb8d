"""Expiry watch: intents on Alma's page with the time they have left, authorised intents with their 7-day
capture deadline, and the ones whose one-hour window ran out (back to requires_payment_method), apart from
declines. Refreshes itself every few seconds."""

from __future__ import annotations

from dataclasses import replace

import pandas as pd
import streamlit as st

from dashboard import analytics, ui, ui_access, ui_widgets
from dashboard.access import Permission
from dashboard.money import format_eur
from dashboard.plain_text import literal
from dashboard.store import IntentFilter

ui_access.require(Permission.VIEW)  # again here: the navigation alone is not the guard
app = ui.services()
settings = app.settings
REFRESH_SECONDS = 3
SHOWN_WAITING = 25  # progress bars beyond this many would bury the expiries below
SHOWN_HELD = 200  # the nearest capture deadlines; a longer table helps nobody act today
LOOKBACK = {"1 h": 3_600, "24 h": 86_400, "7 d": 7 * 86_400}


@st.fragment(run_every=REFRESH_SECONDS)
def watch() -> None:
    app.sync_loop.refresh(max_age_seconds=REFRESH_SECONDS - 1)
    now = ui.now(app)
    synced_at = app.store.last_synced_at()  # the data's time, not the clock's
    st.caption(
        f"As of {ui_widgets.local_datetime(synced_at, settings)} (last sync) · countdowns at "
        f"{ui_widgets.local_datetime(now, settings)}"
    )

    # Soonest first, as many as are drawn; the headings count them all.
    on_alma_page = IntentFilter(statuses=("requires_action",))
    waiting = analytics.awaiting_customer(
        ui.intents_frame(on_alma_page, soonest="expires_at", limit=SHOWN_WAITING), now
    )
    waiting_count = ui.count_intents(on_alma_page)
    st.subheader(f"Awaiting customer ({waiting_count:,})")
    if waiting.empty:
        st.caption("Nobody is on Alma's page right now.")
    ui_widgets.countdown_styles()
    for row in waiting.itertuples(index=False):
        with ui_widgets.countdown_card(None if pd.isna(row.urgency) else row.urgency, row.id):
            st.markdown(
                f"{literal(row.id)} · {format_eur(row.amount)}"
                + (f" · {literal(row.description)}" if isinstance(row.description, str) else "")
            )
            if pd.isna(row.expires_at):
                st.progress(0.0, text="Expiry unknown until the redirect event is synced")
            else:
                st.progress(
                    float(row.fraction_elapsed),
                    text=f"{ui_widgets.duration_text(row.seconds_left)} left · "
                    f"expires {ui_widgets.local_datetime(row.expires_at, settings)}",
                )
    if waiting_count > len(waiting):
        st.caption(f"…and {waiting_count - len(waiting):,} more; the Intents page lists them all.")

    authorised = IntentFilter(statuses=("requires_capture",))
    due_within = settings.alerts.captures_due_seconds
    held = analytics.awaiting_capture(
        ui.intents_frame(authorised, soonest="capture_deadline", limit=SHOWN_HELD), now, due_within
    )
    held_count = ui.count_intents(authorised)
    st.subheader(f"Awaiting capture ({held_count:,})")
    if held.empty:
        st.caption("No authorised payment is waiting to be captured.")
    else:
        # A minute's granularity keeps one cached count a minute.
        if due := ui.count_intents(replace(authorised, capture_deadline_lte=(now + due_within) // 60 * 60 + 59)):
            st.warning(
                f"{due:,} authorised payment{'s' if due > 1 else ''} must be captured within {due_within // 3600} h,"
                " or the authorisation is released and the money is lost."
            )
        ui_widgets.capture_table(held, settings)
        if held_count > len(held):
            st.caption(f"The {len(held):,} nearest deadlines of {held_count:,}; the Intents page lists them all.")

    st.divider()
    # Here rather than at the top: it narrows only the lists below, not who is waiting now.
    lookback = st.segmented_control(
        "Expired and declined in the last", list(LOOKBACK), default="24 h", required=True, key="expiry_lookback"
    )
    within = LOOKBACK[lookback]
    # From the start of the minute: one cached answer a minute, narrowed to the second by the rule itself.
    since = (now - within) // 60 * 60
    for title, kind, recent, nothing in (
        ("Recently expired", "expired", analytics.recently_expired, "No intent expired"),
        ("Declined", "declined", analytics.recent_declines, "No decline"),
    ):
        failures = recent(ui.intents_frame(IntentFilter(failure_kinds=(kind,), updated_gte=since)), now, within)
        st.subheader(f"{title} ({len(failures)})")
        if failures.empty:
            st.caption(f"{nothing} in the last {lookback}.")
        else:
            columns = ("updated_at", "id", "outcome", "amount", "waited", "reason")
            ui_widgets.failures_table(failures, columns, settings, key=f"{kind}_table")


watch()
