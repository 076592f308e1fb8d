"""Altair chart builders for the pages. Pure: analytics frames in, `alt.Chart` out (no streamlit).

Every chart colours status with the same `status_scale()`, so a status has one colour everywhere.
Amounts arrive as int cents; charts derive EUR in the Vega spec (`datum.amount_cents / 100`) purely
for the axis and tooltips.

Public API:
- `STATUS_COLOURS: dict[str, str]` (one per domain.STATUSES, in that order), `status_scale() -> alt.Scale`
- `status_bar_chart(counts)`: counts = analytics.status_counts(...)
- `daily_status_chart(daily, measure="count" | "amount")`: daily = analytics.daily_by_status(...)
- `time_to_authorise_chart(durations, bucket_seconds=60)`: durations = analytics.time_to_authorise(...)
"""
from __future__ import annotations

from typing import Literal

import altair as alt
import numpy as np
import pandas as pd

from dashboard.analytics import time_to_authorise_buckets
from dashboard.domain import STATUSES

# Okabe–Ito colours (distinguishable with the common colour-vision deficiencies), plus a neutral grey
# for canceled. Green = money in, orange = waiting on the customer, vermillion = back to no method.
STATUS_COLOURS: dict[str, str] = {
    "requires_payment_method": "#D55E00",
    "requires_confirmation": "#CC79A7",
    "requires_action": "#E69F00",
    "processing": "#56B4E9",
    "requires_capture": "#0072B2",
    "canceled": "#8C8C8C",
    "succeeded": "#009E73",
}

Measure = Literal["count", "amount"]
_EUR_FORMAT = ",.2f"


def status_scale() -> alt.Scale:
    return alt.Scale(domain=list(STATUSES), range=[STATUS_COLOURS[s] for s in STATUSES])


def _status_colour() -> alt.Color:
    return alt.Color("status:N", title="Status", scale=status_scale())


def _with_status_rank(frame: pd.DataFrame) -> pd.DataFrame:
    """Adds status_rank (position in STATUSES) so stacks are drawn in the same order as the legend."""
    rank = pd.Categorical(frame["status"], categories=list(STATUSES)).codes
    return frame.assign(status_rank=rank.astype("int64"))


def _with_amount_eur(chart: alt.Chart) -> alt.Chart:
    return chart.transform_calculate(amount_eur="datum.amount_cents / 100")


def status_bar_chart(counts: pd.DataFrame) -> alt.Chart:
    """One bar per status present: height = number of intents; tooltip adds the EUR amount."""
    chart = alt.Chart(_with_status_rank(counts)).mark_bar()
    return _with_amount_eur(chart).encode(
        x=alt.X("status:N", title="Status", sort=list(STATUSES)),
        y=alt.Y("count:Q", title="Intents"),
        color=_status_colour(),
        tooltip=[
            alt.Tooltip("status:N", title="Status"),
            alt.Tooltip("count:Q", title="Intents"),
            alt.Tooltip("amount_eur:Q", title="Amount (EUR)", format=_EUR_FORMAT),
        ],
    )


def daily_status_chart(daily: pd.DataFrame, measure: Measure = "count") -> alt.Chart:
    """Stacked bars per local day: intents, or EUR amount, by status.

    Days travel as "YYYY-MM-DD" read as UTC dates, so the browser's own timezone cannot shift a bar
    to the neighbouring day (the day itself was already cut in the dashboard's timezone)."""
    if measure not in ("count", "amount"):
        raise ValueError(f"measure must be 'count' or 'amount', not {measure!r}")
    days = np.datetime_as_string(daily["day"].dt.tz_localize(None).to_numpy(), unit="D")
    data = _with_status_rank(daily).assign(day=days)
    y = (
        alt.Y("count:Q", title="Intents", stack="zero")
        if measure == "count"
        else alt.Y("amount_eur:Q", title="Amount (EUR)", stack="zero", axis=alt.Axis(format=",.0f"))
    )
    return _with_amount_eur(alt.Chart(data).mark_bar()).encode(
        x=alt.X("utcyearmonthdate(day):T", title="Day", axis=alt.Axis(format="%d %b")),
        y=y,
        color=_status_colour(),
        order=alt.Order("status_rank:Q"),
        tooltip=[
            alt.Tooltip("utcyearmonthdate(day):T", title="Day", format="%a %d %b %Y"),
            alt.Tooltip("status:N", title="Status"),
            alt.Tooltip("count:Q", title="Intents"),
            alt.Tooltip("amount_eur:Q", title="Amount (EUR)", format=_EUR_FORMAT),
        ],
    )


def time_to_authorise_chart(durations: pd.DataFrame, bucket_seconds: int = 60) -> alt.Chart:
    """Histogram (minutes from the Alma redirect to authorisation), stacked by status.
    Binned in pandas first: the browser gets one row per bucket and status, not one per intent."""
    buckets = _with_status_rank(time_to_authorise_buckets(durations, bucket_seconds))
    chart = alt.Chart(buckets).mark_bar().transform_calculate(
        minutes_from="datum.bucket_start / 60", minutes_to="datum.bucket_end / 60"
    )
    return chart.encode(
        x=alt.X("minutes_from:Q", bin="binned", title="Minutes from redirect to authorisation"),
        x2="minutes_to:Q",
        y=alt.Y("count:Q", title="Intents", stack="zero"),
        color=_status_colour(),
        order=alt.Order("status_rank:Q"),
        tooltip=[
            alt.Tooltip("minutes_from:Q", title="From (min)", format=".1f"),
            alt.Tooltip("minutes_to:Q", title="To (min)", format=".1f"),
            alt.Tooltip("status:N", title="Status"),
            alt.Tooltip("count:Q", title="Intents"),
        ],
    )
