"""Altair chart builders for the pages. Pure: analytics frames in, `alt.Chart` out (no streamlit).

Every chart colours status with the same `status_scale()`, so a status has one colour everywhere.
Amounts arrive as int cents; charts derive EUR in the Vega spec (`datum.amount_cents / 100`) purely
for the axis and tooltips.

Public API:
- `STATUS_COLOURS: dict[str, StatusColour]` (one per domain.STATUSES, in that order; charts and badges),
  `status_scale() -> alt.Scale`
- `status_bar_chart(counts)`: counts = analytics.status_counts(...)
- `daily_status_chart(daily, measure="count" | "amount")`: daily = analytics.daily_by_status(...)
- `time_to_authorise_chart(durations, bucket_seconds=60)`: durations = analytics.time_to_authorise(...)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, TypeVar

import altair as alt
import numpy as np
import pandas as pd

from dashboard.analytics import time_to_authorise_buckets
from dashboard.domain import STATUSES


@dataclass(frozen=True)
class StatusColour:
    chart: str  # hex, for altair
    badge: str  # the nearest of Streamlit's named colours, for a status written as a badge in text


# Okabe–Ito colours (distinguishable with the common colour-vision deficiencies), plus a neutral grey
# for canceled. Green = money in, orange = waiting on the customer, vermillion = back to no method.
STATUS_COLOURS: dict[str, StatusColour] = {
    "requires_payment_method": StatusColour("#D55E00", "red"),
    "requires_confirmation": StatusColour("#CC79A7", "violet"),
    "requires_action": StatusColour("#E69F00", "orange"),
    "processing": StatusColour("#56B4E9", "blue"),
    "requires_capture": StatusColour("#0072B2", "blue"),
    "canceled": StatusColour("#8C8C8C", "gray"),
    "succeeded": StatusColour("#009E73", "green"),
}

# Expiry watch's urgency (analytics.Urgency): a calm countdown is blue (the theme's own colour is a red, which
# would cry wolf); it turns orange, then vermillion, as the customer's window runs out. Captures due soon get the
# vermillion as a light row tint.
URGENCY_COLOURS: dict[str, str] = {
    "calm": STATUS_COLOURS["requires_capture"].chart,
    "soon": STATUS_COLOURS["requires_action"].chart,
    "ending": STATUS_COLOURS["requires_payment_method"].chart,
}
DUE_SOON_TINT = "rgba(213, 94, 0, 0.14)"  # the vermillion, light enough to read black text on

Measure = Literal["count", "amount"]
AnyChart = TypeVar("AnyChart", alt.Chart, alt.LayerChart)
_EUR_FORMAT = ",.2f"


# Full status names: Vega's default label limit (160 px) cut "requires_payment_method". Kept on the right,
# where it takes a fixed width whatever the container's, and the plot fits what is left.
_STATUS_LEGEND = alt.Legend(labelLimit=0)
_TEXT_COLOUR = "#31333F"  # Streamlit's body text, readable on white and on the dark theme's grey alike


def status_scale() -> alt.Scale:
    return alt.Scale(domain=list(STATUSES), range=[STATUS_COLOURS[s].chart for s in STATUSES])


def _status_colour(legend: alt.Legend | None = _STATUS_LEGEND) -> alt.Color:
    return alt.Color("status:N", title="Status", scale=status_scale(), legend=legend)


def _with_status_rank(frame: pd.DataFrame) -> pd.DataFrame:
    """Adds status_rank (position in STATUSES) so stacks are drawn in the same order as the legend."""
    rank = pd.Categorical(frame["status"], categories=list(STATUSES)).codes
    return frame.assign(status_rank=rank.astype("int64"))


def _with_amount_eur(chart: AnyChart) -> AnyChart:
    return chart.transform_calculate(amount_eur="datum.amount_cents / 100")


def status_bar_chart(counts: pd.DataFrame) -> alt.LayerChart:
    """One horizontal bar per status present, labelled with its count: the status names read level on the
    axis (no legend needed), and the width follows the container. The tooltip adds the EUR amount."""
    bars = alt.Chart().mark_bar()
    labels = alt.Chart().mark_text(align="left", dx=4).encode(text="count:Q", color=alt.value(_TEXT_COLOUR))
    chart = alt.LayerChart(layer=[bars, labels], data=_with_status_rank(counts))
    return (
        _with_amount_eur(chart)
        .encode(
            y=alt.Y("status:N", title=None, sort=list(STATUSES), axis=alt.Axis(labelLimit=0)),
            x=alt.X("count:Q", title="Intents"),
            color=_status_colour(legend=None),
            tooltip=[
                alt.Tooltip("status:N", title="Status"),
                alt.Tooltip("count:Q", title="Intents"),
                alt.Tooltip("amount_eur:Q", title="Amount (EUR)", format=_EUR_FORMAT),
            ],
        )
        .properties(width="container", height=alt.Step(28))
    )


def _every_day(days: np.ndarray) -> list[str]:
    """Each "YYYY-MM-DD" from the first day shown to the last, so a day without intents keeps its gap."""
    if len(days) == 0:
        return []
    first, last = days.min(), days.max()
    return list(np.datetime_as_string(np.arange(first, last + np.timedelta64(1, "D")), unit="D"))


def daily_status_chart(daily: pd.DataFrame, measure: Measure = "count") -> alt.Chart:
    """Stacked bars per local day: intents, or EUR amount, by status.

    Days are a band axis (one bar-wide slot per calendar day, empty days included), travelling as
    "YYYY-MM-DD" and formatted as UTC dates, so the browser's own timezone cannot shift a bar to the
    neighbouring day (the day itself was already cut in the dashboard's timezone)."""
    if measure not in ("count", "amount"):
        raise ValueError(f"measure must be 'count' or 'amount', not {measure!r}")
    day_values = daily["day"].dt.tz_localize(None).to_numpy().astype("datetime64[D]")
    data = _with_status_rank(daily).assign(day=np.datetime_as_string(day_values, unit="D"))
    y = (
        alt.Y("count:Q", title="Intents", stack="zero")
        if measure == "count"
        else alt.Y("amount_eur:Q", title="Amount (EUR)", stack="zero", axis=alt.Axis(format=",.0f"))
    )
    day_axis = alt.Axis(
        labelExpr="utcFormat(toDate(datum.value), '%d %b')", labelAngle=0, labelOverlap="greedy", labelSeparation=6
    )
    # Any temporal use of `day` (a tooltip timeUnit, say) would make Vega-Lite parse the column into dates,
    # which no longer match the band domain's strings: the label is derived text instead.
    chart: alt.Chart = _with_amount_eur(alt.Chart(data).mark_bar()).transform_calculate(
        day_label="utcFormat(toDate(datum.day), '%a %d %b %Y')"
    )
    return chart.encode(
        x=alt.X("day:O", title=None, axis=day_axis, scale=alt.Scale(domain=_every_day(day_values), paddingInner=0.15)),
        y=y,
        color=_status_colour(),
        order=alt.Order("status_rank:Q"),
        tooltip=[
            alt.Tooltip("day_label:N", title="Day"),
            alt.Tooltip("status:N", title="Status"),
            alt.Tooltip("count:Q", title="Intents"),
            alt.Tooltip("amount_eur:Q", title="Amount (EUR)", format=_EUR_FORMAT),
        ],
    ).properties(width="container", height=300)


def time_to_authorise_chart(durations: pd.DataFrame, bucket_seconds: int = 60) -> alt.Chart:
    """Histogram (minutes from the Alma redirect to authorisation), stacked by status.
    Binned in pandas first: the browser gets one row per bucket and status, not one per intent."""
    buckets = _with_status_rank(time_to_authorise_buckets(durations, bucket_seconds))
    chart: alt.Chart = (
        alt.Chart(buckets)
        .mark_bar()
        .transform_calculate(minutes_from="datum.bucket_start / 60", minutes_to="datum.bucket_end / 60")
    )
    return chart.encode(
        x=alt.X("minutes_from:Q", bin="binned", title="Minutes from redirect to authorisation"),
        x2="minutes_to:Q",
        y=alt.Y("count:Q", title="Intents", stack="zero", axis=alt.Axis(tickMinStep=1, format="d")),
        color=_status_colour(),
        order=alt.Order("status_rank:Q"),
        tooltip=[
            alt.Tooltip("minutes_from:Q", title="From (min)", format=".1f"),
            alt.Tooltip("minutes_to:Q", title="To (min)", format=".1f"),
            alt.Tooltip("status:N", title="Status"),
            alt.Tooltip("count:Q", title="Intents"),
        ],
    )
