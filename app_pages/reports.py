"""Reports: the finance view of a period — per month or week, by the date money moved: gross, refunded, fees,
net, payments, average basket and the split by installment plan; as a table, a chart and a CSV."""

from __future__ import annotations

import streamlit as st

from dashboard import analytics, charts, ui, ui_access, ui_widgets
from dashboard.access import Permission

ui_access.require(Permission.VIEW)  # again here: the navigation alone is not the guard
app = ui.services()
settings = app.settings
GRAINS = {"month": "Per month", "week": "Per week"}

period_of = ui_widgets.period_picker("reports", "90 d", app)
grain = st.segmented_control(
    "Group by", list(GRAINS), format_func=GRAINS.get, default="month", required=True, key="reports_grain"
)
include_test = ui_widgets.include_test_toggle()
if period_of is None:
    st.stop()

period = period_of(ui.now(app))
report = analytics.finance_report(
    ui.money_moves(period.start, period.end, include_test=include_test), grain, tz=settings.timezone
)
st.caption(
    "Money counts by the date it moved: a payment when it succeeded (or was captured), a refund when it was "
    "made. Weeks start on Monday; a first or last month or week may be cut by the period."
)
if report.empty:
    st.info("No money moved in this period.")
    st.stop()

st.altair_chart(charts.finance_chart(report), width="stretch")
euro = {"format": "euro", "width": "small"}
table = report.copy()
for column in analytics.REPORT_COLUMNS:
    if column.endswith("_cents"):
        table[column] = table[column].map(analytics.exact_eur)
st.dataframe(
    table,
    hide_index=True,
    column_config={
        "period": st.column_config.TextColumn("Period starting"),
        "gross_cents": st.column_config.NumberColumn("Gross", **euro),
        "refunded_cents": st.column_config.NumberColumn("Refunded", **euro),
        "fees_cents": st.column_config.NumberColumn("Fees", **euro),
        "net_cents": st.column_config.NumberColumn("Net", **euro),
        "payments": st.column_config.NumberColumn("Payments", format="%d"),
        "average_basket_cents": st.column_config.NumberColumn("Average basket", **euro),
        **{
            f"gross_{n}x_cents": st.column_config.NumberColumn(f"Gross in {n}", **euro)
            for n in analytics.INSTALLMENT_PLANS
        },
        **{
            f"payments_{n}x": st.column_config.NumberColumn(f"Payments in {n}", format="%d")
            for n in analytics.INSTALLMENT_PLANS
        },
    },
)
first, last = analytics.local_days(period, settings.timezone)
st.download_button(
    "Download CSV",
    data=lambda: analytics.report_csv(report),  # built only when clicked
    file_name=analytics.download_name(f"finance by {grain}", first, last),
    mime="text/csv",
    on_click="ignore",
)
