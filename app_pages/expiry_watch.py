"""Expiry watch: intents on Alma's page with the time they have left, and the ones whose one-hour window
ran out (back to requires_payment_method), apart from declines. Refreshes itself every few seconds."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import analytics, ui
from dashboard.money import format_eur

app = ui.services()
settings = app.settings
REFRESH_SECONDS = 3
SHOWN_WAITING = 25  # progress bars beyond this many would bury the expiries below
LOOKBACK = {"1 h": 3_600, "24 h": 86_400, "7 d": 7 * 86_400}

lookback = st.segmented_control("Expired and declined in the last", list(LOOKBACK), default="24 h", required=True,
                                key="expiry_lookback")


def failures_table(failures: pd.DataFrame, frame: pd.DataFrame) -> None:
    """Expired or declined rows with the status the store holds for each."""
    status = frame.set_index("id")["status"]
    st.dataframe(
        failures.assign(
            status=failures["id"].map(status),
            amount=failures["amount"].map(format_eur),
            updated_at=analytics.to_local(failures["updated_at"], settings.timezone),
            waited=failures["waited_seconds"].map(ui.duration_text),
        ),
        hide_index=True,
        column_order=("updated_at", "id", "status", "amount", "waited", "reason"),
        column_config={
            "updated_at": st.column_config.DatetimeColumn("At", format="YYYY-MM-DD HH:mm:ss"),
            "id": "Intent",
            "status": "Status",
            "amount": "Amount",
            "waited": st.column_config.TextColumn("Waited", help="From the Alma redirect to the end"),
            "reason": st.column_config.TextColumn("Reason", width="large"),
        },
    )


@st.fragment(run_every=REFRESH_SECONDS)
def watch() -> None:
    app.sync_loop.refresh(max_age_seconds=REFRESH_SECONDS - 1)
    now = app.clock.now()
    frame = ui.intents_frame()
    st.caption(f"As of {ui.local_datetime(now, settings)}")

    waiting = analytics.awaiting_customer(frame, now)
    st.subheader(f"Awaiting customer ({len(waiting)})")
    if waiting.empty:
        st.caption("Nobody is on Alma's page right now.")
    for row in waiting.head(SHOWN_WAITING).itertuples(index=False):
        with st.container(border=True):
            st.markdown(f"`{row.id}` · {format_eur(row.amount)}"
                        + (f" · {row.description}" if isinstance(row.description, str) else ""))
            if pd.isna(row.expires_at):
                st.progress(0.0, text="Expiry unknown until the redirect event is synced")
            else:
                st.progress(float(row.fraction_elapsed), text=f"{ui.duration_text(row.seconds_left)} left · "
                                                              f"expires {ui.local_datetime(row.expires_at, settings)}")
    if len(waiting) > SHOWN_WAITING:
        st.caption(f"…and {len(waiting) - SHOWN_WAITING} more; the Intents page lists them all.")

    within = LOOKBACK[lookback]
    st.subheader("Recently expired")
    expired = analytics.recently_expired(frame, now, within)
    if expired.empty:
        st.caption(f"No intent expired in the last {lookback}.")
    else:
        failures_table(expired, frame)

    st.subheader("Declined")
    declined = analytics.recent_declines(frame, now, within)
    if declined.empty:
        st.caption(f"No decline in the last {lookback}.")
    else:
        failures_table(declined, frame)


watch()
