"""Overview: how Alma payments are doing over a period — KPIs, intents by status, daily volume, time to
authorise, recent failures. The data block refreshes itself from the store without rerunning the page."""

from __future__ import annotations

from dataclasses import replace

import pandas as pd
import streamlit as st

from dashboard import analytics, charts, ui, ui_access, ui_widgets
from dashboard.access import Permission
from dashboard.money import format_eur
from dashboard.store import IntentFilter

ui_access.require(Permission.VIEW)  # again here: the navigation alone is not the guard
app = ui.services()
settings = app.settings
MEASURES = {"count": "Count", "amount": "EUR"}
FAILURE_KINDS = ("expired", "declined")
RECENT_FAILURES = 10

period_of = ui_widgets.period_picker("overview", "30 d", app)
include_test = ui_widgets.include_test_toggle()

if period_of is None:
    st.stop()


MONEY_TILES = (  # label, MoneyTotals field, help, whether a rise is bad news
    (
        "Gross volume",
        "gross",
        "Charges made in the period (by the date the money moved: succeeded or captured).",
        False,
    ),
    ("Refunded", "refunded", "Refunds made in the period (by the date refunded), less failed refunds.", True),
    ("Fees", "fees", "Alma fees on the period's charges (by the date the money moved).", True),
    ("Net volume", "net", "Gross volume − refunded − fees, by the date the money moved.", False),
)


def money_tiles(period: analytics.Period) -> None:
    """The finance row: each figure against the previous period of the same length."""
    before = analytics.previous_period(period)
    now_totals = analytics.money_totals(ui.money_moves(period.start, period.end, include_test=include_test))
    then_totals = analytics.money_totals(ui.money_moves(before.start, before.end, include_test=include_test))
    # Two by two: four in a row cut "€24,083.50" short on a 1280 px screen.
    tiles = [*st.columns(2), *st.columns(2)]
    for tile, (label, field, help_text, rise_is_bad) in zip(tiles, MONEY_TILES, strict=True):
        value, change = getattr(now_totals, field), getattr(now_totals, field) - getattr(then_totals, field)
        tile.metric(
            label,
            format_eur(value),
            delta=("+" if change > 0 else "") + format_eur(change),
            delta_color="inverse" if rise_is_bad else "normal",
            border=True,
            help=f"{help_text} Change: against the previous period of the same length.",
        )


@st.fragment(run_every=settings.refresh_seconds)
def data_block() -> None:
    period = period_of(ui.now(app))
    where = IntentFilter(created_gte=period.start, created_lt=period.end, include_test=include_test)
    figures = ui.overview_figures(where)
    kpis = figures.kpis
    if not include_test:
        ui_widgets.left_out_caption(ui.count_intents(replace(where, include_test=True)) - kpis.intents)
    tiles = [*st.columns(3), *st.columns(3)]  # six in one row would cut the EUR figures
    tiles[0].metric("Intents", f"{kpis.intents:,}", border=True, help="Alma intents created in the period.")
    tiles[1].metric(
        "Volume succeeded",
        format_eur(kpis.succeeded_cents),
        border=True,
        help="Amount received on succeeded intents created in the period (by creation date, like the funnel).",
    )
    tiles[2].metric(
        "Conversion",
        "—" if kpis.conversion is None else f"{kpis.conversion:.1%}",
        border=True,
        help="Succeeded ÷ intents whose customer was sent to Alma.",
    )
    tiles[3].metric(
        "Awaiting customer", f"{kpis.awaiting_customer:,}", border=True, help="On Alma's page now (requires_action)."
    )
    tiles[4].metric(
        "Expired",
        f"{kpis.expired:,}",
        border=True,
        help="Back to requires_payment_method because the 1-hour window ran out.",
    )
    tiles[5].metric("Declined", f"{kpis.declined:,}", border=True, help="Refused by the customer or Alma.")
    money_tiles(period)
    if not kpis.intents:
        st.info("No Alma intents in this period.")
        return

    left, right = st.columns([2, 3], gap="large")
    with left:
        st.subheader("Intents by status")
        st.altair_chart(charts.status_bar_chart(figures.status_counts), width="stretch")
    with right:
        st.subheader("Per day")
        # Left-aligned under the heading: Streamlit's chart toolbar sits on the chart's right edge.
        measure = st.segmented_control(
            "Daily chart",
            list(MEASURES),
            format_func=MEASURES.get,
            default="count",
            required=True,
            key="overview_measure",
            label_visibility="collapsed",
        )
        if measure == "amount":
            st.altair_chart(charts.daily_money_chart(figures.daily_money), width="stretch")
            st.caption("Money received on intents created that day; below the line, what expired or was declined.")
        else:
            st.altair_chart(charts.daily_status_chart(figures.daily_by_status), width="stretch")

    buckets = figures.time_to_authorise
    if not buckets.empty:
        st.subheader("Time to authorise")
        st.caption("From the redirect to Alma until Alma authorised the payment.")
        st.altair_chart(charts.time_to_authorise_chart(buckets), width="stretch")

    st.subheader("Recent failures")
    # One list per kind, each the newest few along its (failure_kind, updated_at) index, merged by analytics.
    failed = pd.concat(
        [
            ui.intents_frame(replace(where, failure_kinds=(kind,)), newest="updated_at", limit=RECENT_FAILURES)
            for kind in FAILURE_KINDS
        ]
    )
    if failed.empty:
        st.caption("No expired or declined intents in this period.")
        return
    columns = ("updated_at", "id", "amount", "outcome", "reason")
    ui_widgets.failures_table(analytics.recent_failures(failed, RECENT_FAILURES), columns, settings, "failures_table")


data_block()
