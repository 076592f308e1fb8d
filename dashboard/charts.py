"""Altair chart builders for the pages. Pure: analytics frames in, `alt.Chart` out (no streamlit).

Every chart draws an intent's status in words (domain.outcome: "Succeeded", "Expired"…) coloured by
`outcome_scale()`, so an outcome has one label and one colour everywhere; a scale lists only the outcomes
drawn, so a legend never names what has no data. Amounts arrive as int cents; charts derive EUR in the Vega
spec (`datum.amount_cents / 100`) purely for the axis and tooltips. No chart offers Vega's action menu: its
button covered the controls above the chart.

Public API:
- `STATUS_COLOURS: dict[str, StatusColour]` (one per domain.OUTCOMES, in that order; charts and badges),
  `outcome_scale(drawn) -> alt.Scale`
- `status_bar_chart(counts)`: counts = analytics.status_counts(...)
- `daily_status_chart(daily)`: daily = analytics.daily_by_status(...) (intents per day)
- `daily_money_chart(money)`: money = analytics.daily_money(...) (EUR received, and apart EUR lost)
- `time_to_authorise_chart(histogram)`: histogram = analytics.time_to_authorise_buckets(...) or the store's
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

import altair as alt
import numpy as np
import pandas as pd

from dashboard.domain import OUTCOMES


@dataclass(frozen=True)
class StatusColour:
    chart: str  # hex, for altair
    badge: str  # the nearest of Streamlit's named colours, for a status written as a badge in text


# Okabe–Ito colours (distinguishable with the common colour-vision deficiencies), plus Tol's wine and greys.
# Green = money in, blues = authorised, orange = waiting on the customer, vermillion/wine = lost, greys = never
# went anywhere.
STATUS_COLOURS: dict[str, StatusColour] = {
    "Succeeded": StatusColour("#009E73", "green"),
    "Awaiting capture": StatusColour("#0072B2", "blue"),
    "Processing": StatusColour("#56B4E9", "blue"),
    "Awaiting customer": StatusColour("#E69F00", "orange"),
    "Awaiting confirmation": StatusColour("#CC79A7", "violet"),
    "Not started": StatusColour("#BBBBBB", "gray"),
    "Expired": StatusColour("#D55E00", "red"),
    "Declined": StatusColour("#882255", "red"),
    "Canceled": StatusColour("#777777", "gray"),
    "Other": StatusColour("#000000", "gray"),
}

# Expiry watch's urgency (analytics.Urgency): a calm countdown is blue (the theme's own colour is a red, which
# would cry wolf); it turns orange, then vermillion, as the customer's window runs out. Captures due soon get the
# vermillion as a light row tint.
URGENCY_COLOURS: dict[str, str] = {
    "calm": STATUS_COLOURS["Awaiting capture"].chart,
    "soon": STATUS_COLOURS["Awaiting customer"].chart,
    "ending": STATUS_COLOURS["Expired"].chart,
}
DUE_SOON_TINT = "rgba(213, 94, 0, 0.14)"  # the vermillion, light enough to read black text on

AnyChart = TypeVar("AnyChart", alt.Chart, alt.LayerChart)
_EUR_FORMAT = ",.2f"


_LEGEND = alt.Legend(labelLimit=0, orient="bottom", direction="horizontal", title=None)
_TEXT_COLOUR = "#31333F"  # Streamlit's body text, readable on white and on the dark theme's grey alike
# Vega's action menu ("…": export, view source) sat on top of the Count/EUR control; Streamlit's own toolbar stays.
_NO_ACTIONS = {"embedOptions": {"actions": False}}


def outcome_scale(drawn: pd.Series | None = None) -> alt.Scale:
    """Each outcome's colour; with `drawn`, only the outcomes in it (a legend lists what the chart shows)."""
    present = set(drawn) if drawn is not None else set(OUTCOMES)
    domain = [o for o in OUTCOMES if o in present]
    return alt.Scale(domain=domain, range=[STATUS_COLOURS[o].chart for o in domain])


def _outcome_colour(drawn: pd.Series, legend: alt.Legend | None = _LEGEND) -> alt.Color:
    return alt.Color("outcome:N", title="Status", scale=outcome_scale(drawn), legend=legend)


def _with_outcome_rank(frame: pd.DataFrame) -> pd.DataFrame:
    """Adds outcome_rank (position in OUTCOMES) so stacks are drawn in the same order as the legend."""
    rank = pd.Categorical(frame["outcome"], categories=list(OUTCOMES)).codes
    return frame.assign(outcome_rank=rank.astype("int64"))


def _with_amount_eur(chart: AnyChart) -> AnyChart:
    return chart.transform_calculate(amount_eur="datum.amount_cents / 100")


def status_bar_chart(counts: pd.DataFrame) -> alt.LayerChart:
    """One horizontal bar per outcome present, labelled with its count: the words read level on the axis (no
    legend needed), and the width follows the container. The tooltip adds the EUR amount."""
    bars = alt.Chart().mark_bar()
    labels = alt.Chart().mark_text(align="left", dx=4).encode(text="count:Q", color=alt.value(_TEXT_COLOUR))
    chart = alt.LayerChart(layer=[bars, labels], data=_with_outcome_rank(counts))
    return (
        _with_amount_eur(chart)
        .encode(
            y=alt.Y("outcome:N", title=None, sort=list(OUTCOMES), axis=alt.Axis(labelLimit=0)),
            x=alt.X("count:Q", title="Intents"),
            color=_outcome_colour(counts["outcome"], legend=None),
            tooltip=[
                alt.Tooltip("outcome:N", title="Status"),
                alt.Tooltip("count:Q", title="Intents"),
                alt.Tooltip("amount_eur:Q", title="Amount (EUR)", format=_EUR_FORMAT),
            ],
        )
        .properties(width="container", height=alt.Step(28), usermeta=_NO_ACTIONS)
    )


def _every_day(days: np.ndarray) -> list[str]:
    """Each "YYYY-MM-DD" from the first day shown to the last, so a day without intents keeps its gap."""
    if len(days) == 0:
        return []
    first, last = days.min(), days.max()
    return list(np.datetime_as_string(np.arange(first, last + np.timedelta64(1, "D")), unit="D"))


def _day_chart(frame: pd.DataFrame) -> tuple[alt.Chart, alt.X]:
    """A bar chart over local days, and its x: a band axis (one bar-wide slot per calendar day, empty days
    included), days travelling as "YYYY-MM-DD" and formatted as UTC dates, so the browser's own timezone cannot
    shift a bar to the neighbouring day (the day itself was already cut in the dashboard's timezone)."""
    day_values = frame["day"].dt.tz_localize(None).to_numpy().astype("datetime64[D]")
    data = _with_outcome_rank(frame).assign(day=np.datetime_as_string(day_values, unit="D"))
    day_axis = alt.Axis(
        labelExpr="utcFormat(toDate(datum.value), '%d %b')", labelAngle=0, labelOverlap="greedy", labelSeparation=6
    )
    # Any temporal use of `day` (a tooltip timeUnit, say) would make Vega-Lite parse the column into dates,
    # which no longer match the band domain's strings: the label is derived text instead.
    chart: alt.Chart = _with_amount_eur(alt.Chart(data).mark_bar()).transform_calculate(
        day_label="utcFormat(toDate(datum.day), '%a %d %b %Y')"
    )
    x = alt.X("day:O", title=None, axis=day_axis, scale=alt.Scale(domain=_every_day(day_values), paddingInner=0.15))
    return chart, x


def daily_status_chart(daily: pd.DataFrame) -> alt.Chart:
    """Stacked bars per local day: intents by outcome."""
    chart, x = _day_chart(daily)
    return chart.encode(
        x=x,
        y=alt.Y("count:Q", title="Intents", stack="zero", axis=alt.Axis(tickMinStep=1, format="d")),
        color=_outcome_colour(daily["outcome"]),
        order=alt.Order("outcome_rank:Q"),
        tooltip=[
            alt.Tooltip("day_label:N", title="Day"),
            alt.Tooltip("outcome:N", title="Status"),
            alt.Tooltip("count:Q", title="Intents"),
            alt.Tooltip("amount_eur:Q", title="Amount (EUR)", format=_EUR_FORMAT),
        ],
    ).properties(width="container", height=300, usermeta=_NO_ACTIONS)


def daily_money_chart(money: pd.DataFrame) -> alt.Chart:
    """Per local day, EUR received above the axis and, apart below it, EUR lost to expiry and declines: a lost
    amount is never stacked on money that came in."""
    signed = money.assign(
        signed_cents=money["amount_cents"].where(money["outcome"] == "Succeeded", -money["amount_cents"])
    )
    chart, x = _day_chart(signed)
    chart = chart.transform_calculate(signed_eur="datum.signed_cents / 100")
    return chart.encode(
        x=x,
        y=alt.Y(
            "signed_eur:Q",
            title="EUR received (above) · lost (below)",
            stack="zero",
            axis=alt.Axis(format=",.0f", labelExpr="format(abs(datum.value), ',.0f')"),
        ),
        color=_outcome_colour(money["outcome"]),
        order=alt.Order("outcome_rank:Q"),
        tooltip=[
            alt.Tooltip("day_label:N", title="Day"),
            alt.Tooltip("outcome:N", title="Status"),
            alt.Tooltip("amount_eur:Q", title="Amount (EUR)", format=_EUR_FORMAT),
        ],
    ).properties(width="container", height=300, usermeta=_NO_ACTIONS)


def time_to_authorise_chart(histogram: pd.DataFrame) -> alt.Chart:
    """Histogram (minutes from the Alma redirect to authorisation), stacked by status, of a binned frame
    (analytics.time_to_authorise_buckets, or the store's): one row per bucket and status, not one per intent."""
    buckets = _with_outcome_rank(histogram)
    chart: alt.Chart = (
        alt.Chart(buckets)
        .mark_bar()
        .transform_calculate(minutes_from="datum.bucket_start / 60", minutes_to="datum.bucket_end / 60")
    )
    return chart.encode(
        x=alt.X("minutes_from:Q", bin="binned", title="Minutes from redirect to authorisation"),
        x2="minutes_to:Q",
        y=alt.Y("count:Q", title="Intents", stack="zero", axis=alt.Axis(tickMinStep=1, format="d")),
        color=_outcome_colour(buckets["outcome"]),
        order=alt.Order("outcome_rank:Q"),
        tooltip=[
            alt.Tooltip("minutes_from:Q", title="From (min)", format=".1f"),
            alt.Tooltip("minutes_to:Q", title="To (min)", format=".1f"),
            alt.Tooltip("outcome:N", title="Status"),
            alt.Tooltip("count:Q", title="Intents"),
        ],
    ).properties(usermeta=_NO_ACTIONS)


# One colour per finance figure: money in green, money out vermillion, fees orange, what stays blue.
FINANCE_FIGURES = {"Gross": "#009E73", "Refunded": "#D55E00", "Fees": "#E69F00", "Net": "#0072B2"}


def finance_chart(report: pd.DataFrame) -> alt.Chart:
    """report = analytics.finance_report(...): per period, gross, refunded, fees and net side by side."""
    long = pd.DataFrame(
        {
            "period": report["period"].repeat(len(FINANCE_FIGURES)).to_numpy(),
            "figure": list(FINANCE_FIGURES) * len(report),
            "cents": report[[f"{name.lower()}_cents" for name in FINANCE_FIGURES]].to_numpy().ravel(),
        }
    )
    chart: alt.Chart = (
        alt.Chart(long)
        .transform_calculate(eur="datum.cents / 100")
        .mark_bar()
        .encode(
            x=alt.X("period:N", title="Period starting", axis=alt.Axis(labelAngle=0)),
            xOffset=alt.XOffset("figure:N", sort=list(FINANCE_FIGURES)),
            y=alt.Y("eur:Q", title="EUR", axis=alt.Axis(format=",.0f")),
            color=alt.Color(
                "figure:N",
                title=None,
                sort=list(FINANCE_FIGURES),
                scale=alt.Scale(domain=list(FINANCE_FIGURES), range=list(FINANCE_FIGURES.values())),
                legend=alt.Legend(orient="top"),
            ),
            tooltip=[
                alt.Tooltip("period:N", title="Period starting"),
                alt.Tooltip("figure:N", title="Figure"),
                alt.Tooltip("eur:Q", title="EUR", format=_EUR_FORMAT),
            ],
        )
        .properties(width="container", height=300, usermeta=_NO_ACTIONS)
    )
    return chart
